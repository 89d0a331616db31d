"""A portal app against fake service APIs (httpx.MockTransport) for unit tests of the
portal's own code; the browser suite runs it against the real services."""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from flask import Flask
from flask.testing import FlaskClient

from services.portal.app import create_app
from services.portal.config import PortalSettings

Handler = Callable[[httpx.Request], httpx.Response]
UMKM_ID = "0b9d7f4e-3c1a-4d2b-9e8f-1a2b3c4d5e6f"


def problem(status: int, code: str, fields: dict[str, Any] | None = None) -> httpx.Response:
    body = {"type": "about:blank", "title": code, "status": status, "detail": code,
            "code": code, "message_id": f"pesan {code}", "message_en": f"message {code}"}
    if fields:
        body["errors"] = {"json": fields}
    return httpx.Response(status, json=body, headers={"Content-Type": "application/problem+json"})


REFERENCE = {
    "/v1/reference/provinces": [{"code": "31", "name": "DKI Jakarta"},
                                {"code": "91", "name": "Papua"}],
    "/v1/reference/kbli-sections": [{"section": "C", "title": "Industri Pengolahan"}],
    "/v1/reference/platforms": [{"code": "tokopedia", "name": "Tokopedia",
                                 "category": "marketplace"}],
    "/v1/reference/consent": {"version": "2024-01", "purpose_id": "Tujuan", "purpose_en": "Aim"},
    "/v1/summary": {"national": {"registered": 1234, "verified": 10, "onboarded": 5,
                                 "training_enrolments": 2, "campaign_amount_idr": 1500000},
                    "targets": [{"metric": "umkm_onboarded_new", "year": 2020,
                                 "target": 2000000, "actual": 5, "progress": 0.0000025}],
                    "provinces": [], "last_applied_at": "2026-12-01T03:00:00+00:00"},
}


class FakeApis:
    """Routes requests to handlers by (method, path); records what the portal sent."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Handler] = {}
        self.seen: list[httpx.Request] = []
        for path, body in REFERENCE.items():
            self.on("GET", path, lambda _r, b=body: httpx.Response(200, json=b))

    def on(self, method: str, path: str, handler: Handler) -> None:
        self.routes[(method, path)] = handler

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        handler = self.routes.get((request.method, request.url.path))
        if handler is None:
            return problem(404, "not_found")
        return handler(request)

    def bodies(self, method: str, path: str) -> list[Any]:
        return [json.loads(r.content) for r in self.seen
                if r.method == method and r.url.path == path]


def portal(tmp_path: Path, fake: FakeApis) -> Flask:
    settings = PortalSettings(session_database_url=f"sqlite:///{tmp_path / 'sessions.db'}",
                              oidc_issuer="http://idp.test/realms/bbi")
    app = create_app(settings, PORTAL_API_TRANSPORT=httpx.MockTransport(fake), TESTING=True)
    app.extensions["portal_oauth"].idp.server_metadata.update({
        "_loaded_at": time.time(), "issuer": "http://idp.test/realms/bbi",
        "authorization_endpoint": "http://idp.test/realms/bbi/auth",
        "token_endpoint": "http://idp.test/realms/bbi/token",
        "end_session_endpoint": "http://idp.test/realms/bbi/logout",
        "jwks_uri": "http://idp.test/realms/bbi/certs"})
    return app


def sign_in(client: FlaskClient, *roles: str, **extra: Any) -> None:
    """A signed-in session as the callback leaves it (the OIDC dance is in the browser
    suite, against the real identity provider)."""
    with client.session_transaction() as s:
        s["tokens"] = {"access": "access-token-1", "refresh": "r", "id": "id-token-1",
                       "expires_at": int(time.time()) + 300}
        s["user"] = {"sub": "person-1", "roles": list(roles),
                     "province_scope": extra.get("province_scope"),
                     "region": extra.get("region"), "agency": None}


def csrf(client: FlaskClient, path: str) -> str:
    html = client.get(path).get_data(as_text=True)
    marker = 'name="csrf_token" value="'
    start = html.index(marker) + len(marker)
    return html[start:html.index('"', start)]
