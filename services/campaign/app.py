"""The campaign web application (gunicorn: 'services.campaign.app:create_app()')."""
from __future__ import annotations

from flask import Flask
from sqlalchemy.engine import Engine

from services.campaign.api import blp
from services.campaign.config import campaign_settings, load_settings
from services.campaign.store import metadata
from services.common.config import Settings
from services.common.http import audit_api
from services.common.http.web import create_service_app


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> Flask:
    """Build the app; nothing connects at import time."""
    typed = campaign_settings(settings) if settings is not None else load_settings()
    app, api = create_service_app("campaign", typed, metadata,
                                  "BBI Campaign API", engine)
    api.register_blueprint(blp)
    api.register_blueprint(audit_api.blueprint("campaign"))  # GET /v1/audit/campaign (admin)
    return app
