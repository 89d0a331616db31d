"""The training web app (gunicorn: 'services.training.app:create_app()')."""
from __future__ import annotations

from flask import Flask
from sqlalchemy.engine import Engine
from werkzeug.middleware.proxy_fix import ProxyFix

from services.common.config import Settings
from services.common.http import audit_api
from services.common.http.web import create_service_app
from services.training.api import blp
from services.training.config import load_settings, training_settings
from services.training.store import metadata


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> Flask:
    """Build the app; nothing happens at import time."""
    typed = training_settings(settings) if settings is not None else load_settings()
    app, api = create_service_app("training", typed, metadata, "BBI Training", engine)
    proxies = typed.trusted_proxies
    if proxies:  # the certificate check's limit keys on the client, not on the Ingress
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies)  # type: ignore[method-assign]
    api.register_blueprint(blp)
    api.register_blueprint(audit_api.blueprint("training"))  # GET /v1/audit/training (admin)
    return app
