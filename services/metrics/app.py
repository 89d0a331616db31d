"""The metrics web process: /metrics with business aggregates, and the progress JSON."""

from __future__ import annotations

from flask import Flask
from sqlalchemy.engine import Engine

from services.common.config import Settings
from services.common.http.web import create_service_app
from services.metrics.api import blp
from services.metrics.config import load_settings
from services.metrics.exposition import metrics_payload
from services.metrics.store import metadata


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> Flask:
    """Application factory (gunicorn: 'services.metrics.app:create_app()')."""
    app, api = create_service_app(
        "metrics", settings or load_settings(), metadata, "BBI Metrics", engine
    )
    api.register_blueprint(blp)
    # Business aggregates: a separate registry read from the DB, never the multiprocess files.
    app.extensions["bbi_extra_metrics"] = metrics_payload(app.extensions["bbi_engine"])
    return app
