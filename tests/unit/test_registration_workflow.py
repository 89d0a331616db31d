"""Operator transitions (verification, platforms, curation) and the owner's withdrawal."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from services.registration.store import umkm, umkm_platforms
from tests.unit.registration_helpers import (
    assert_no_pii,
    bearer,
    make_app,
    outbox_events,
    owner,
    payload,
    sqlite_url,
)


@pytest.fixture
def env(tmp_path: Path) -> Any:
    app, settings = make_app(sqlite_url(tmp_path))
    client = app.test_client()
    created = client.post("/v1/umkm", json=payload(), headers=owner(settings)).get_json()
    return client, settings, app, created


def _op(settings: Any) -> dict[str, str]:
    return bearer(settings, "operator")


@pytest.mark.parametrize("path,body", [("verification", {}),
                                       ("platforms", {"platform": "tokopedia",
                                                      "store_url": "https://toko.id/sri"}),
                                       ("curation", {"decision": "approved"})])
def test_operator_endpoints_need_an_operator_token(env: Any, path: str, body: dict) -> None:
    client, settings, _, created = env
    url = f"/v1/umkm/{created['id']}/{path}"
    assert client.post(url, json=body).status_code == 401
    assert client.post(url, json=body, headers=owner(settings)).status_code == 403
    assert client.post(url, json=body, headers=bearer(settings, "official")).status_code == 403
    unknown = "/v1/umkm/3f0c5b8e-1111-4222-8333-444455556666/" + path
    assert client.post(unknown, json=body, headers=_op(settings)).status_code == 404


def test_verify_then_refuse_a_second_verification_with_current_state(env: Any) -> None:
    client, settings, app, created = env
    url = f"/v1/umkm/{created['id']}/verification"
    r = client.post(url, json={}, headers=_op(settings))
    assert r.status_code == 200 and r.get_json()["status"] == "verified"
    again = client.post(url, json={}, headers=_op(settings))
    assert again.status_code == 409
    body = again.get_json()
    assert body["code"] == "invalid_transition" and body["current_status"] == "verified"
    assert body["message_id"] != body["message_en"]
    assert [e["type"] for e in outbox_events(app)][-1] == "bbi.umkm.verified.v1"


def test_platforms_need_verification_then_count_the_first_platform(env: Any) -> None:
    client, settings, app, created = env
    base = f"/v1/umkm/{created['id']}"
    tp = {"platform": "tokopedia", "store_url": "https://tokopedia.com/sri"}
    early = client.post(base + "/platforms", json=tp, headers=_op(settings))
    assert early.status_code == 409 and early.get_json()["current_status"] == "registered"
    client.post(base + "/verification", json={}, headers=_op(settings))
    assert client.post(base + "/platforms", json=tp, headers=_op(settings)).status_code == 200
    dup = client.post(base + "/platforms", json=tp, headers=_op(settings))
    assert dup.status_code == 409 and dup.get_json()["code"] == "already_onboarded"
    sh = {"platform": "shopee", "store_url": "https://shopee.co.id/sri"}
    r = client.post(base + "/platforms", json=sh, headers=_op(settings))
    assert r.status_code == 200 and r.get_json()["status"] == "onboarded"
    onboarded = [e["data"] for e in outbox_events(app) if e["type"].endswith("onboarded.v1")]
    assert [(d["platform"], d["first_platform"]) for d in onboarded] == [
        ("tokopedia", True), ("shopee", False)]
    bad = client.post(base + "/platforms", json={"platform": "x", "store_url": "nope"},
                      headers=_op(settings))
    assert bad.status_code == 422
    assert set(bad.get_json()["errors"]["json"]) == {"platform", "store_url"}
    view = client.get(base, headers=_op(settings)).get_json()
    assert [p["platform"] for p in view["platforms"]] == ["tokopedia", "shopee"]


def test_curation_rules_and_previous_decision(env: Any) -> None:
    client, settings, app, created = env
    base = f"/v1/umkm/{created['id']}"
    early = client.post(base + "/curation", json={"decision": "approved"}, headers=_op(settings))
    assert early.status_code == 409 and early.get_json()["current_status"] == "registered"
    client.post(base + "/verification", json={}, headers=_op(settings))
    no_reason = client.post(base + "/curation", json={"decision": "rejected"},
                            headers=_op(settings))
    assert no_reason.status_code == 422
    assert no_reason.get_json()["errors"]["json"]["reason"][0]["code"] == "reason_required"
    ok = client.post(base + "/curation", json={"decision": "approved"}, headers=_op(settings))
    assert ok.status_code == 200 and ok.get_json()["curation"] == "approved"
    same = client.post(base + "/curation", json={"decision": "approved"}, headers=_op(settings))
    assert same.status_code == 409 and same.get_json()["current_curation"] == "approved"
    rej = client.post(base + "/curation", json={"decision": "rejected", "reason": "Foto buram"},
                      headers=_op(settings))
    assert rej.status_code == 200
    curated = [e["data"] for e in outbox_events(app) if e["type"].endswith("curated.v1")]
    assert [(d["decision"], d["previous_decision"]) for d in curated] == [
        ("approved", None), ("rejected", "approved")]


def test_withdrawal_by_owner_erases_personal_data_and_keeps_counts(env: Any) -> None:
    client, settings, app, created = env
    base = f"/v1/umkm/{created['id']}"
    client.post(base + "/verification", json={}, headers=_op(settings))
    client.post(base + "/platforms", json={"platform": "shopee",
                                           "store_url": "https://shopee.co.id/sri"},
                headers=_op(settings))
    assert client.delete(base).status_code == 401
    assert client.delete(base, headers=_op(settings)).status_code == 403
    not_mine = client.delete(base, headers=owner(settings, "kc-someone-else"))
    assert not_mine.status_code == 403 and not_mine.get_json()["code"] == "not_owner"
    mine = owner(settings)
    r = client.delete(base, headers=mine)
    assert r.status_code == 200 and r.get_json()["status"] == "withdrawn"
    with app.extensions["bbi_engine"].connect() as conn:
        row = conn.execute(sa.select(umkm)).one()
        store = conn.execute(sa.select(umkm_platforms.c.store_url)).scalar_one()
    for col in ("business_name", "business_name_norm", "owner_name", "nik_hash", "nik_last4",
                "nib", "phone", "email", "address", "postal_code", "npwp", "mentor_org",
                "owner_subject"):
        assert getattr(row, col) is None, col
    assert store is None
    assert (row.status, row.province_code, row.scale) == ("withdrawn", "31", "mikro")
    assert_no_pii([str(tuple(row))])
    assert outbox_events(app)[-1]["type"] == "bbi.umkm.withdrawn.v1"
    again = client.delete(base, headers=_admin(settings))
    assert again.status_code == 409 and again.get_json()["current_status"] == "withdrawn"
    # The link to the person's account went with the rest: it is no longer listed as theirs.
    assert client.get("/v1/umkm/mine", headers=mine).get_json()["items"] == []
    # The person may register again: nothing identifying is left to match.
    assert client.post("/v1/umkm", json=payload(), headers=mine).status_code == 201


def _admin(settings: Any) -> dict[str, str]:
    return bearer(settings, "admin")


def test_admin_may_withdraw(env: Any) -> None:
    client, settings, _, created = env
    r = client.delete(f"/v1/umkm/{created['id']}", headers=bearer(settings, "admin"))
    assert r.status_code == 200
    other = owner(settings, "3f0c5b8e-1111-4222-8333-444455556666")
    assert client.delete(f"/v1/umkm/{created['id']}", headers=other).status_code == 403
