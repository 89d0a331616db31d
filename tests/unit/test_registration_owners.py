"""Owners are people (issue 13 §3): one account owns several businesses, sees them with their
lifecycle, and claims a business reported without an owner by proving its NIK and NIB."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from services.registration.partner.handlers import create_partner
from services.registration.store import audit_log, umkm
from tests.unit.registration_helpers import (
    bearer,
    make_app,
    nik,
    outbox_events,
    owner,
    payload,
    sqlite_url,
    with_knobs,
)

PARTNER_URL = "/v1/partner/onboardings"


@pytest.fixture
def env(tmp_path: Path) -> Any:
    app, settings = make_app(sqlite_url(tmp_path))
    return app.test_client(), settings, app


def _partner_reports(client: Any, app: Any, settings: Any, n: int) -> str:
    key = create_partner(app.extensions["bbi_engine"], settings, "tokopedia", "tokopedia",
                         "Tokopedia")
    r = client.post(PARTNER_URL, json=[payload(n, merchant_ref=f"TP-{n}")],
                    headers={"X-API-Key": key})
    assert r.status_code == 200, r.get_json()
    return str(r.get_json()["items"][0]["id"])


def test_one_person_owns_several_businesses_and_lists_them_with_their_lifecycle(
        env: Any) -> None:
    client, settings, _ = env
    sri, other = owner(settings), owner(settings, "kc-owner-2")
    a = client.post("/v1/umkm", json=payload(1), headers=sri).get_json()
    b = client.post("/v1/umkm", json=payload(2, business_name="Katering Sri"),
                    headers=sri).get_json()
    client.post("/v1/umkm", json=payload(3), headers=other)
    op = bearer(settings, "operator")
    client.post(f"/v1/umkm/{a['id']}/verification", json={}, headers=op)
    client.post(f"/v1/umkm/{a['id']}/platforms", headers=op,
                json={"platform": "shopee", "store_url": "https://shopee.co.id/sri"})
    client.post(f"/v1/umkm/{a['id']}/curation", headers=op,
                json={"decision": "rejected", "reason": "Foto produk buram"})
    r = client.get("/v1/umkm/mine", headers=sri)
    assert r.status_code == 200
    items = r.get_json()["items"]
    assert [i["id"] for i in items] == [a["id"], b["id"]]  # not the other owner's
    first = items[0]
    assert (first["status"], first["curation"], first["curation_reason"]) == (
        "onboarded", "rejected", "Foto produk buram")
    assert first["verified_at"] and [p["platform"] for p in first["platforms"]] == ["shopee"]
    assert items[1]["status"] == "registered" and items[1]["business_name"] == "Katering Sri"
    assert "phone" not in first and "nik_masked" not in first  # the owner's view
    assert client.get("/v1/umkm/mine").status_code == 401
    assert client.get("/v1/umkm/mine", headers=op).status_code == 403


def test_each_owner_reads_and_withdraws_only_their_own(env: Any) -> None:
    client, settings, _ = env
    a = client.post("/v1/umkm", json=payload(1), headers=owner(settings)).get_json()
    intruder = owner(settings, "kc-owner-2")
    for method in ("get", "delete"):
        r = getattr(client, method)(f"/v1/umkm/{a['id']}", headers=intruder)
        assert r.status_code == 403 and r.get_json()["code"] == "not_owner"
    assert client.get(f"/v1/umkm/{a['id']}", headers=owner(settings)).status_code == 200


def test_claiming_a_partner_reported_merchant_with_its_nik_and_nib(env: Any) -> None:
    client, settings, app = env
    uid = _partner_reports(client, app, settings, 5)
    sri = owner(settings)
    assert client.get("/v1/umkm/mine", headers=sri).get_json()["items"] == []
    nib = payload(5)["nib"]
    # A public registration of the same business points at it, and says it can be claimed.
    dup = client.post("/v1/umkm", json=payload(5), headers=sri)
    assert dup.status_code == 409 and dup.get_json()["id"] == uid
    assert dup.get_json()["claimable"] is True
    r = client.post("/v1/umkm/claims", json={"nik": nik(5), "nib": nib}, headers=sri)
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["id"] == uid and r.get_json()["claimed_at"]
    assert [i["id"] for i in client.get("/v1/umkm/mine", headers=sri).get_json()["items"]] == [uid]
    claimed = [e for e in outbox_events(app) if e["type"] == "bbi.umkm.claimed.v1"]
    assert [(e["data"]["umkm_id"], e["data"]["owner_subject"]) for e in claimed] == [
        (uid, "kc-owner-1")]
    # Claiming again is harmless; another account cannot take it over even with the proof.
    again = client.post("/v1/umkm/claims", json={"nik": nik(5), "nib": nib}, headers=sri)
    assert again.status_code == 200
    taken = client.post("/v1/umkm/claims", json={"nik": nik(5), "nib": nib},
                        headers=owner(settings, "kc-owner-2"))
    assert taken.status_code == 409 and taken.get_json()["code"] == "already_claimed"
    assert len([e for e in outbox_events(app) if e["type"] == "bbi.umkm.claimed.v1"]) == 1
    with app.extensions["bbi_engine"].connect() as conn:
        assert conn.execute(sa.select(umkm.c.owner_subject)).scalar_one() == "kc-owner-1"


def test_a_wrong_nik_or_unknown_nib_is_one_answer_and_changes_nothing(
        env: Any, caplog: pytest.LogCaptureFixture) -> None:
    client, settings, app = env
    _partner_reports(client, app, settings, 5)
    sri = owner(settings)
    wrong_nik = client.post("/v1/umkm/claims", json={"nik": nik(6), "nib": payload(5)["nib"]},
                            headers=sri)
    unknown_nib = client.post("/v1/umkm/claims", json={"nik": nik(5), "nib": "9999999999999"},
                              headers=sri)
    for r in (wrong_nik, unknown_nib):
        assert r.status_code == 404 and r.get_json()["code"] == "claim_no_match"
    assert wrong_nik.get_json()["detail"] == unknown_nib.get_json()["detail"]
    bad = client.post("/v1/umkm/claims", json={"nik": "123", "nib": "12"}, headers=sri)
    assert bad.status_code == 422 and set(bad.get_json()["errors"]["json"]) == {"nik", "nib"}
    with app.extensions["bbi_engine"].connect() as conn:
        assert conn.execute(sa.select(umkm.c.owner_subject)).scalar_one() is None
    assert not [e for e in outbox_events(app) if e["type"] == "bbi.umkm.claimed.v1"]


def test_claim_attempts_leave_an_audit_trace_without_the_proof(env: Any) -> None:
    client, settings, app = env
    uid = _partner_reports(client, app, settings, 5)
    other = owner(settings, "kc-owner-2")
    wrong = client.post("/v1/umkm/claims", json={"nik": nik(6), "nib": payload(5)["nib"]},
                        headers=owner(settings))
    ok = client.post("/v1/umkm/claims", json={"nik": nik(5), "nib": payload(5)["nib"]},
                     headers=owner(settings))
    taken = client.post("/v1/umkm/claims", json={"nik": nik(5), "nib": payload(5)["nib"]},
                        headers=other)
    assert (wrong.status_code, ok.status_code, taken.status_code) == (404, 200, 409)
    with app.extensions["bbi_engine"].connect() as conn:
        rows = conn.execute(sa.select(audit_log.c.actor, audit_log.c.role, audit_log.c.action,
                                      audit_log.c.target, audit_log.c.detail)
                            .order_by(audit_log.c.id)).all()
    assert [(r.actor, r.role, r.action, r.target, json.loads(r.detail)) for r in rows] == [
        ("kc-owner-1", "umkm", "umkm.claim", "umkm", {"outcome": "no_match"}),
        ("kc-owner-1", "umkm", "umkm.claim", f"umkm:{uid}", {"outcome": "claimed"}),
        ("kc-owner-2", "umkm", "umkm.claim", f"umkm:{uid}", {"outcome": "already_claimed"}),
    ]
    text = " ".join(str(tuple(r)) for r in rows)
    assert nik(5) not in text and nik(6) not in text and payload(5)["nib"] not in text


def test_claim_attempts_are_rate_limited(env: Any) -> None:
    client, settings, app = env
    _partner_reports(client, app, settings, 5)
    with_knobs(app, claim_rate_limit=3)
    guess = {"nik": nik(6), "nib": payload(5)["nib"]}
    codes = [client.post("/v1/umkm/claims", json=guess, headers=owner(settings)).status_code
             for _ in range(4)]
    assert codes == [404, 404, 404, 429]
    # Another address does not reset the count of the same account.
    r = client.post("/v1/umkm/claims", json=guess, headers=owner(settings),
                    environ_base={"REMOTE_ADDR": "10.9.9.9"})
    assert r.status_code == 429 and r.headers["Retry-After"]
    # Nor does another account from the same address.
    r = client.post("/v1/umkm/claims", json=guess, headers=owner(settings, "kc-owner-2"))
    assert r.status_code == 429


def test_only_owners_claim(env: Any) -> None:
    client, settings, _ = env
    body = {"nik": nik(5), "nib": payload(5)["nib"]}
    assert client.post("/v1/umkm/claims", json=body).status_code == 401
    r = client.post("/v1/umkm/claims", json=body, headers=bearer(settings, "operator"))
    assert r.status_code == 403
