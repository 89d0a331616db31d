"""Shared web plumbing on a tiny app: problem details, auth, idempotency, health, limits."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from flask import Flask
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from devtools.dev_tokens import issue_token
from services.common.config import Settings
from services.common.http.auth import require_role
from services.common.http.errors import ApiError
from services.common.http.web import create_service_app, get_engine
from tests.integration.common_helpers import demo_items, demo_md


class ItemIn(Schema):
    id = fields.String(required=True)
    n = fields.Integer(required=True)


def build(tmp_path: Path) -> tuple[Flask, Settings]:
    settings = Settings.from_env("demo", database_url=f"sqlite:///{tmp_path/'d.db'}",
                                 max_body_bytes=2048)
    app, api = create_service_app("demo", settings, demo_md, "Demo")
    demo_md.create_all(app.extensions["bbi_engine"])
    blp = Blueprint("items", __name__, url_prefix="/v1/items")

    @blp.route("")
    class Items(MethodView):
        @blp.arguments(ItemIn)
        @blp.response(201, ItemIn)
        def post(self, body: dict[str, Any]) -> dict[str, Any]:
            with get_engine().begin() as conn:
                conn.execute(demo_items.insert().values(**body))
            return body

    @blp.route("/secret")
    class Secret(MethodView):
        @require_role("operator")
        def get(self) -> dict[str, str]:
            return {"ok": "yes"}

    @blp.route("/boom")
    class Boom(MethodView):
        def get(self) -> None:
            raise RuntimeError("secret internals")

    @blp.route("/conflict")
    class Conflict(MethodView):
        def get(self) -> None:
            raise ApiError(409, "already_there", "Sudah ada.", "Already there.", id="x")

    api.register_blueprint(blp)
    return app, settings


@pytest.fixture
def client_settings(tmp_path: Path):  # type: ignore[no-untyped-def]
    app, settings = build(tmp_path)
    return app.test_client(), settings


def test_validation_errors_are_problem_details_with_codes(client_settings) -> None:  # type: ignore[no-untyped-def]
    client, _ = client_settings
    r = client.post("/v1/items", json={"id": "a", "n": "x", "extra": 1})
    assert r.status_code == 422 and r.mimetype == "application/problem+json"
    body = r.get_json()
    assert body["code"] == "validation_failed" and body["status"] == 422
    assert body["errors"]["json"]["n"][0]["code"] == "not_integer"
    assert body["errors"]["json"]["extra"][0]["code"] == "unknown_field"
    assert body["errors"]["json"]["n"][0]["message_id"]


def test_unexpected_errors_never_leak_a_stack_trace(client_settings) -> None:  # type: ignore[no-untyped-def]
    client, _ = client_settings
    r = client.get("/v1/items/boom")
    assert r.status_code == 500 and "secret internals" not in r.get_data(as_text=True)
    assert r.get_json()["code"] == "internal_error"
    r = client.get("/nowhere")
    assert r.status_code == 404 and r.get_json()["code"] == "not_found"
    r = client.get("/v1/items/conflict")
    assert r.status_code == 409 and r.get_json()["id"] == "x"


def test_oversized_body_is_413(client_settings) -> None:  # type: ignore[no-untyped-def]
    client, _ = client_settings
    r = client.post("/v1/items", data="x" * 5000, content_type="application/json")
    assert r.status_code == 413 and r.get_json()["code"] == "payload_too_large"


def test_auth_matrix(client_settings) -> None:  # type: ignore[no-untyped-def]
    client, s = client_settings
    now = int(time.time())
    good = issue_token(s, "op-1", "operator")
    claims = {"sub": "op-1", "realm_access": {"roles": ["operator"]}, "iss": s.jwt_issuer,
              "aud": s.jwt_audience, "iat": now}
    other_key = "wrong-secret-" + "y" * 32
    cases = {  # header: (status, code)
        None: (401, "token_missing"), "Basic abc": (401, "token_missing"),
        "Bearer not.a.jwt": (401, "token_malformed"),
        "Bearer " + issue_token(s, "u", "umkm"): (403, "forbidden"),
        "Bearer " + jwt.encode(claims | {"exp": now - 3600}, s.jwt_secret, "HS256"):
            (401, "token_expired"),
        "Bearer " + jwt.encode(claims | {"exp": now + 60}, other_key, "HS256"):
            (401, "token_bad_signature"),
        "Bearer " + jwt.encode(claims | {"exp": now + 60}, None, "none"): (401, "token_unsigned"),
        "Bearer " + jwt.encode(claims | {"exp": now + 60, "aud": "other"}, s.jwt_secret):
            (401, "token_wrong_audience"),
        "Bearer " + good: (200, None),
    }
    for header, (status, code) in cases.items():
        r = client.get("/v1/items/secret", headers={"Authorization": header} if header else {})
        assert r.status_code == status, header
        if status != 200:
            assert r.mimetype == "application/problem+json"
            assert r.get_json()["code"] == code, header


def test_idempotency_key_replays_the_first_answer(client_settings) -> None:  # type: ignore[no-untyped-def]
    client, _ = client_settings
    h = {"Idempotency-Key": "k1"}
    first = client.post("/v1/items", json={"id": "a", "n": 1}, headers=h)
    again = client.post("/v1/items", json={"id": "a", "n": 1}, headers=h)
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true" and again.json == first.json
    other = client.post("/v1/items", json={"id": "b", "n": 1}, headers=h)
    assert other.status_code == 422 and other.json["code"] == "idempotency_key_reused"


def test_health_ready_metrics_and_correlation_id(client_settings) -> None:  # type: ignore[no-untyped-def]
    client, _ = client_settings
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").json == {"status": "ready"}
    r = client.get("/healthz", headers={"X-Correlation-ID": "abc-123"})
    assert r.headers["X-Correlation-ID"] == "abc-123"
    text = client.get("/metrics").get_data(as_text=True)
    assert ('bbi_http_requests_total{method="GET",route="/healthz",service="demo",status="200"}'
            in text)
    assert client.get("/openapi.json").json["info"]["title"] == "Demo"


def test_readyz_is_503_when_the_database_is_unreachable(tmp_path: Path) -> None:
    settings = Settings.from_env("demo", database_url="postgresql+psycopg://x@127.0.0.1:1/none")
    app, _ = create_service_app("demo", settings, demo_md, "Demo")
    r = app.test_client().get("/readyz")
    assert r.status_code == 503 and r.headers["Retry-After"] == "5"
    assert r.get_json()["code"] == "database_unavailable"

