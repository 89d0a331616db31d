"""The registration web app (gunicorn: 'services.registration.app:create_app()')."""
from __future__ import annotations

from flask import Flask, request
from sqlalchemy.engine import Engine
from werkzeug.middleware.proxy_fix import ProxyFix

from services.common.config import Settings
from services.common.http import audit_api
from services.common.http.web import create_service_app
from services.registration.api import blp, reference_blp
from services.registration.config import load_settings, registration_settings
from services.registration.partner.api import PARTNER_PATH, partner_blp
from services.registration.store import metadata


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> Flask:
    """Build the app; nothing happens at import time."""
    # Shared settings built elsewhere (tests, tools) get this service's knobs added.
    reg = registration_settings(settings or load_settings())
    app, api = create_service_app("registration", reg, metadata, "BBI Registration", engine)
    proxies = reg.trusted_proxies
    if proxies:  # the rate limit keys on the client, not on the ingress
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies)  # type: ignore[method-assign]

    def partner_body_limit() -> None:
        # Must run before the shared Idempotency-Key hook reads the body.
        if request.path == PARTNER_PATH:
            request.max_content_length = reg.partner_max_body_bytes

    app.before_request_funcs.setdefault(None, []).insert(0, partner_body_limit)
    for b in (blp, partner_blp, reference_blp, audit_api.blueprint("registration")):
        api.register_blueprint(b)
    return app
