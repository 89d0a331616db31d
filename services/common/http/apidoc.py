"""The OpenAPI side of our errors: every service answers RFC 9457 problem details
(application/problem+json), so the document must say so instead of flask-smorest's own
error shape, and a bearer-protected operation documents its 401 and 403. Also Swagger UI
at /docs, served from a packaged distribution under a strict Content-Security-Policy."""
from __future__ import annotations

import http
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from apispec import BasePlugin
from flask import Blueprint, Flask, Response, abort, send_from_directory
from flask_smorest import Api
from flask_smorest.utils import prepare_response
from markupsafe import escape
from marshmallow import INCLUDE, Schema, fields

PROBLEM_JSON = "application/problem+json"


class ProblemSchema(Schema):
    """RFC 9457 problem details as services.common.http.errors.problem builds them."""

    class Meta:
        unknown = INCLUDE  # some errors add context fields (id, current_status, ...)

    type = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String(required=True)
    code = fields.String(required=True, metadata={"description": "machine-readable code"})
    message_id = fields.String(required=True, metadata={"description": "Bahasa Indonesia"})
    message_en = fields.String(required=True)
    errors = fields.Dict(metadata={"description": "per-field errors by location and field"})


class ServiceApi(Api):
    """flask-smorest Api whose documented error responses are problem details."""

    ERROR_SCHEMA = ProblemSchema

    def _register_responses(self) -> None:
        # Same lazily registered responses as flask-smorest, under the problem media type.
        for status in http.HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            if not (100 <= status < 200) and status not in (204, 304):
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, PROBLEM_JSON)
            self.spec.components.response(status.name, response, lazy=True)
        default: dict[str, Any] = {"description": "Problem details (RFC 9457)",
                                   "schema": self.ERROR_SCHEMA}
        prepare_response(default, self.spec, PROBLEM_JSON)
        self.spec.components.response("DEFAULT_ERROR", default, lazy=True)


class SecuredResponses(BasePlugin):
    """Operations that declare bearer security also document 401 and 403, every operation
    its 422 (a NUL character, services/common/http/input_guard.py), and error responses
    documented by description only (alt_response) get the problem body."""

    def operation_helper(self, path: str | None = None,
                         operations: dict[str, Any] | None = None, **_: Any) -> None:
        for op in (operations or {}).values():
            if not isinstance(op, dict):
                continue
            responses = op.setdefault("responses", {})
            # Any request may carry U+0000 in its query string (input_guard.py): 422.
            responses.setdefault("422", "UNPROCESSABLE_ENTITY")
            if op.get("security"):
                responses.setdefault("401", "UNAUTHORIZED")
                responses.setdefault("403", "FORBIDDEN")
            for status, resp in responses.items():
                if str(status).isdigit() and int(status) >= 400 and isinstance(resp, dict) \
                        and "content" not in resp:
                    resp["content"] = {PROBLEM_JSON: {"schema": "Problem"}}


# --- Swagger UI, served by the app itself ---------------------------------------------------
# The swagger-ui distribution comes from the `swagger-ui-py` wheel (Apache-2.0; it ships
# swagger-ui's dist files), so /docs needs no CDN and works offline. Our page has no inline
# script or style: the initializer is a served .js file that reads its settings from data-*
# attributes, so the page runs under a CSP without 'unsafe-inline'.
SWAGGER_UI_ASSETS = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png",
                     "favicon-16x16.png", "LICENSE")
OWN_ASSETS = ("bbi-docs.js", "oauth2-redirect.js")
_OWN_DIR = Path(__file__).with_name("apidoc_static")
_DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} - API</title>
<link rel="stylesheet" href="{assets}/swagger-ui.css">
<link rel="icon" type="image/png" href="{assets}/favicon-32x32.png">
</head><body>
<main id="swagger-ui" data-spec-url="{spec}" data-oauth2-redirect="{redirect}"
 data-client-id="{client_id}"></main>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="{assets}/bbi-docs.js"></script>
</body></html>
"""
_REDIRECT_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Swagger UI: OAuth2 redirect</title></head>
<body><script src="{assets}/oauth2-redirect.js"></script></body></html>
"""


def swagger_ui_dir() -> Path:
    """Where the installed swagger-ui distribution keeps its dist files."""
    import swagger_ui  # the swagger-ui-py wheel

    return Path(swagger_ui.__file__).with_name("static")


def docs_csp(issuer: str = "") -> str:
    """A strict policy for the docs pages: only our own origin, plus the identity provider
    that Swagger UI's "Authorize" talks to (discovery and token endpoint)."""
    idp = ""
    if issuer.startswith(("http://", "https://")):
        parts = urlsplit(issuer)
        idp = f" {parts.scheme}://{parts.netloc}"
    return ("default-src 'none'; script-src 'self'; style-src 'self'; "
            "img-src 'self' data:; font-src 'self'; "
            f"connect-src 'self'{idp}; form-action 'self'{idp}; base-uri 'none'; "
            "frame-ancestors 'none'")


def install_swagger_ui(app: Flask, title: str, spec_url: str = "/openapi.json") -> None:
    """GET /docs (Swagger UI), /docs/assets/<file>, /docs/oauth2-redirect.html."""
    bp = Blueprint("api-docs-ui", __name__, url_prefix="/docs")
    dist = swagger_ui_dir()
    assets = "/docs/assets"

    def page(html: str) -> Response:
        issuer = getattr(app.config.get("BBI_SETTINGS"), "jwt_issuer", "")
        resp = Response(html, mimetype="text/html")
        resp.headers["Content-Security-Policy"] = docs_csp(str(issuer))
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "no-referrer"
        return resp

    @bp.get("")
    def docs() -> Response:
        client_id = os.environ.get("BBI_DOCS_OAUTH_CLIENT_ID", "")
        return page(_DOCS_PAGE.format(title=escape(title), assets=assets, spec=spec_url,
                                      redirect="/docs/oauth2-redirect.html",
                                      client_id=escape(client_id)))

    @bp.get("/oauth2-redirect.html")
    def oauth2_redirect() -> Response:
        return page(_REDIRECT_PAGE.format(assets=assets))

    @bp.get("/assets/<filename>")
    def asset(filename: str) -> Response:
        if filename in OWN_ASSETS:
            resp = send_from_directory(_OWN_DIR, filename, max_age=3600)
        elif filename in SWAGGER_UI_ASSETS:
            resp = send_from_directory(dist, filename, max_age=86400)
        else:
            abort(404)
        resp.headers["X-Content-Type-Options"] = "nosniff"
        return resp

    app.register_blueprint(bp)


def security_schemes(settings: Any) -> dict[str, Any]:
    """The bearer scheme every protected operation names (`bearerAuth`): OpenID Connect with
    the issuer's discovery document, so Swagger UI's "Authorize" signs in at the identity
    provider; a plain bearer JWT in development mode (no identity provider there)."""
    issuer = str(getattr(settings, "jwt_issuer", "") or "").rstrip("/")
    if getattr(settings, "auth_mode", "oidc") == "oidc" and issuer:
        return {"bearerAuth": {
            "type": "openIdConnect",
            "openIdConnectUrl": f"{issuer}/.well-known/openid-configuration",
            "description": "Access token of the identity provider (Keycloak realm bbi); "
                           "roles in realm_access.roles"}}
    return {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}
