"""The public certificate check (issue 14): anyone holding a number sees the course, kind,
completion time and the business's trade name, on SQLite and PostgreSQL; an unknown number is
a 404; nothing about the owner is shown; each client address has its own quota."""
from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from services.common.config import Settings
from services.training import consumer
from services.training.store import rate_limits
from tests.unit.training_helpers import (
    auth,
    build,
    course_body,
    new_session,
    registered,
    start_now,
    withdrawn,
)

FIELDS = {"certificate_number", "course_title", "kind", "completed_at", "trade_name"}


@pytest.fixture
def env(db_url: str) -> Any:
    settings = Settings.from_env("training", database_url=db_url)
    app, engine = build(settings)
    yield app.test_client(), settings, engine
    engine.dispose()


def known(engine: sa.Engine, owner: str, trade_name: str) -> str:
    ev = registered(province="94", owner=owner, trade_name=trade_name, nib="9120000000042")
    with engine.begin() as conn:
        consumer.on_registered(conn, ev)
    return str(ev.data["umkm_id"])


def test_anyone_checks_a_certificate_by_its_number(env: Any) -> None:
    client, settings, engine = env
    op = auth(settings, "operator")
    uid = known(engine, "kc-owner-9", "Keripik Sagu Mama Yuli")
    me = auth(settings, "umkm", "kc-owner-9")
    course = client.post("/v1/courses", json=course_body(title="Foto Produk"), headers=op)
    cid = course.get_json()["id"]
    for key in ("toko-daring", "foto-produk"):
        last = client.post(f"/v1/me/courses/{cid}/modules/{key}/done", json={"umkm_id": uid},
                           headers=me).get_json()
    number = last["certificate_number"]

    resp = client.get(f"/v1/certificates/{number}")  # no token
    assert resp.status_code == 200, resp.get_data(as_text=True)
    cert = resp.get_json()
    assert set(cert) == FIELDS  # no business id, owner, province or personal data
    assert cert | {"completed_at": None} == {
        "certificate_number": number, "course_title": "Foto Produk", "kind": "elearning",
        "completed_at": None, "trade_name": "Keripik Sagu Mama Yuli"}
    assert cert["completed_at"].endswith("+07:00")  # WIB, like every time the API shows
    # As people type it: lower case is the same certificate.
    assert client.get(f"/v1/certificates/{number.lower()}").get_json() == cert

    # A webinar's certificate says so.
    s = new_session(client, op)
    client.post(f"/v1/sessions/{s['id']}/enrolments", json={"umkm_id": uid}, headers=me)
    start_now(engine, s["id"])
    attended = client.post(f"/v1/sessions/{s['id']}/attendance", json=[uid], headers=op)
    webinar = attended.get_json()["certificates"][0]["certificate_number"]
    assert client.get(f"/v1/certificates/{webinar}").get_json()["kind"] == "webinar"

    # After the business withdrew (UU 27/2022) its certificates stay valid, without its name.
    with engine.begin() as conn:
        consumer.on_withdrawn_handler("")(conn, withdrawn(uid))
    after = client.get(f"/v1/certificates/{number}").get_json()
    assert after == cert | {"trade_name": None}


@pytest.mark.parametrize("number", ["BBI-E-2026-0000000000", "BBI-X-2026-7F3A9C21D0",
                                    "nomor-palsu", "BBI-E-2026-7F3A9C21D0' OR '1'='1"])
def test_an_unknown_or_malformed_number_is_a_404(env: Any, number: str) -> None:
    client, _, _ = env
    resp = client.get(f"/v1/certificates/{number}")
    assert resp.status_code == 404 and resp.mimetype == "application/problem+json"
    problem = resp.get_json()
    assert problem["code"] == "certificate_not_found"
    assert problem["message_id"] and problem["message_en"]


def test_each_client_has_its_own_quota(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Knobs are read once, when the app is built.
    monkeypatch.setenv("TRAINING_CERTIFICATE_RATE_LIMIT", "3")
    monkeypatch.setenv("TRAINING_RATE_WINDOW_SECONDS", "3600")
    app, engine = build(Settings.from_env("training", database_url=db_url))
    client = app.test_client()
    url = "/v1/certificates/BBI-E-2026-0000000000"

    def check(addr: str) -> Any:
        return client.get(url, environ_base={"REMOTE_ADDR": addr})

    assert [check("10.1.0.1").status_code for _ in range(3)] == [404] * 3
    over = check("10.1.0.1")
    assert over.status_code == 429 and over.get_json()["code"] == "rate_limited"
    assert 0 < int(over.headers["Retry-After"]) <= 3600
    assert check("10.1.0.2").status_code == 404  # another client
    with engine.connect() as conn:
        keys = conn.execute(sa.select(rate_limits.c.client_key)).scalars().all()
    assert keys and not [k for k in keys if "10.1.0" in k]  # addresses are stored hashed
    engine.dispose()


def test_behind_one_trusted_hop_the_forwarded_client_counts(
        db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The Ingress (or the portal, for its visitors) puts the client's address last.
    monkeypatch.setenv("TRAINING_TRUSTED_PROXIES", "1")
    monkeypatch.setenv("TRAINING_CERTIFICATE_RATE_LIMIT", "2")
    monkeypatch.setenv("TRAINING_RATE_WINDOW_SECONDS", "3600")
    app, engine = build(Settings.from_env("training", database_url=db_url))
    client = app.test_client()

    def check(forwarded: str) -> int:
        return client.get("/v1/certificates/BBI-E-2026-0000000000",
                          headers={"X-Forwarded-For": forwarded},
                          environ_base={"REMOTE_ADDR": "10.0.0.9"}).status_code

    assert [check("203.0.113.7") for _ in range(3)] == [404, 404, 429]
    assert check("1.2.3.4, 203.0.113.7") == 429  # a forged prefix changes nothing
    assert check("203.0.113.8") == 404  # another visitor behind the same proxy
    engine.dispose()
