"""The training web app (gunicorn: 'services.training.app:create_app()')."""
from __future__ import annotations

from flask import Flask
from sqlalchemy.engine import Engine

from services.common import audit_api
from services.common.config import Settings
from services.common.web import create_service_app
from services.training.api import blp
from services.training.config import load_settings
from services.training.store import metadata


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> Flask:
    """Build the app; nothing happens at import time."""
    app, api = create_service_app("training", settings or load_settings(), metadata,
                                  "BBI Training", engine)
    api.register_blueprint(blp)
    api.register_blueprint(audit_api.blueprint("training"))  # GET /v1/audit/training (admin)
    return app
