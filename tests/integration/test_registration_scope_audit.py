"""Accountability (issue 15, finding 5), on SQLite and PostgreSQL: a regional operator sees,
exports and acts only within its province; every operator action on a business and every
read or export of personal data is in the audit log, written in the action's own
transaction, without the personal data; only admins can read the log."""
from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from services.common.audit import audit_log
from services.common.config import Settings
from services.common.db.engine import utcnow
from services.registration.store import umkm
from tests.unit.registration_helpers import issue_token, make_app

PERSONAL = ("Sri Rahayu", "sri@example.id", "+6281234567890", "Jl. Melati")


def _business(conn: sa.Connection, province: str, status: str = "registered") -> str:
    now = utcnow()
    uid = str(uuid.uuid4())
    conn.execute(umkm.insert().values(
        id=uid, status=status, channel="public", business_name=f"Warung {uid[:8]}",
        owner_name="Sri Rahayu", phone="+6281234567890", email="sri@example.id",
        address="Jl. Melati No. 1", province_code=province, regency_code=province + "71",
        kbli_code="10792", kbli_section="C", scale="mikro", qris=True,
        consent_version="2025-01", consent_at=now, registered_at=now, updated_at=now))
    return uid


def _who(s: Settings, role: str, sub: str, **claims: Any) -> dict[str, str]:
    return {"Authorization": "Bearer " + issue_token(s, sub, role, **claims),
            "X-Correlation-ID": f"cid-{sub}"}


@pytest.fixture
def env(db_url: str) -> tuple[Flask, Settings, dict[str, list[str]]]:
    app, s = make_app(db_url)
    with app.extensions["bbi_engine"].begin() as conn:
        ids = {"31": [_business(conn, "31"), _business(conn, "31", "verified")],
               "32": [_business(conn, "32")]}
    return app, s, ids


def _csv_ids(resp: Any) -> set[str]:
    return {r["id"] for r in csv.DictReader(io.StringIO(resp.get_data(as_text=True)))}


def test_a_regional_operator_sees_exports_and_acts_only_in_its_province(env) -> None:  # type: ignore[no-untyped-def]
    app, s, ids = env
    c = app.test_client()
    jakarta = _who(s, "operator", "ops-31", province_scope="31")
    listed = c.get("/v1/umkm?limit=50", headers=jakarta)
    assert listed.status_code == 200
    assert {i["id"] for i in listed.get_json()["items"]} == set(ids["31"])
    other = c.get("/v1/umkm?province_code=32", headers=jakarta)
    assert other.status_code == 403 and other.get_json()["code"] == "province_out_of_scope"
    assert _csv_ids(c.get("/v1/umkm/export.csv", headers=jakarta)) == set(ids["31"])
    assert c.get("/v1/umkm/export.csv?province_code=32", headers=jakarta).status_code == 403
    banten = ids["32"][0]
    assert c.get(f"/v1/umkm/{banten}", headers=jakarta).status_code == 404
    for path, body in (("verification", {}), ("curation", {"decision": "approved"}),
                       ("platforms", {"platform": "shopee",
                                      "store_url": "https://shopee.co.id/x"})):
        r = c.post(f"/v1/umkm/{banten}/{path}", json=body, headers=jakarta)
        assert r.status_code == 404 and r.mimetype == "application/problem+json", path
    with app.extensions["bbi_engine"].connect() as conn:
        assert conn.execute(sa.select(umkm.c.status).where(umkm.c.id == banten)).scalar() \
            == "registered"
    assert c.post(f"/v1/umkm/{ids['31'][0]}/verification", json={},
                  headers=jakarta).status_code == 200
    national = _who(s, "operator", "ops-id")
    assert len(c.get("/v1/umkm", headers=national).get_json()["items"]) == 3
    assert c.get(f"/v1/umkm/{banten}", headers=national).status_code == 200
    # A scope claim that cannot be read fails closed: nothing, never everything.
    broken = _who(s, "operator", "ops-x", province_scope="Jawa Barat")
    assert c.get("/v1/umkm", headers=broken).get_json()["items"] == []


def test_every_operator_action_and_personal_data_read_is_audited_for_admins_only(env) -> None:  # type: ignore[no-untyped-def]
    app, s, ids = env
    c = app.test_client()
    op = _who(s, "operator", "ops-1")
    one, verified = ids["31"]
    assert c.get("/v1/umkm", headers=op).status_code == 200
    assert c.get("/v1/umkm/export.csv?province_code=31", headers=op).status_code == 200
    assert c.get(f"/v1/umkm/{one}", headers=op).status_code == 200
    assert c.post(f"/v1/umkm/{one}/verification", json={}, headers=op).status_code == 200
    assert c.post(f"/v1/umkm/{verified}/platforms", headers=op, json={
        "platform": "tokopedia", "store_url": "https://tokopedia.com/x"}).status_code == 200
    assert c.post(f"/v1/umkm/{verified}/curation", headers=op, json={
        "decision": "rejected", "reason": "Pemilik Sri Rahayu tidak bisa dihubungi"}
    ).status_code == 200
    # Refused actions leave no trace of having happened: the audit row rolled back with them.
    assert c.post(f"/v1/umkm/{one}/verification", json={}, headers=op).status_code == 409

    audit = "/v1/audit/registration"
    assert c.get(audit, headers=op).status_code == 403  # operators cannot read it
    admin = _who(s, "admin", "adm-1")
    page = c.get(audit + "?actor=ops-1", headers=admin)
    assert page.status_code == 200, page.get_json()
    entries = page.get_json()["items"]
    assert [e["action"] for e in entries] == ["umkm.curate", "umkm.onboard", "umkm.verify",
                                              "umkm.read", "umkm.export", "umkm.list"]
    assert {e["actor"] for e in entries} == {"ops-1"}
    assert {e["correlation_id"] for e in entries} == {"cid-ops-1"}
    assert "operator" in entries[0]["role"]
    by_action = {e["action"]: e for e in entries}
    assert by_action["umkm.verify"]["target"] == f"umkm:{one}"
    assert by_action["umkm.curate"]["detail"]["decision"] == "rejected"
    assert by_action["umkm.export"]["detail"]["province_code"] == "31"
    assert by_action["umkm.list"]["detail"]["rows"] == 3
    with app.extensions["bbi_engine"].connect() as conn:
        stored = json.dumps([list(r) for r in conn.execute(sa.select(audit_log))], default=str)
    for value in PERSONAL:  # the log names who and what, never the personal data itself
        assert value not in stored

    def actions(query: str) -> list[str]:
        r = c.get(audit + "?" + query, headers=admin)
        assert r.status_code == 200, r.get_json()
        return [e["action"] for e in r.get_json()["items"]]

    assert actions("action=umkm.verify") == ["umkm.verify"]
    assert actions(f"target=umkm:{verified}") == ["umkm.curate", "umkm.onboard"]
    assert len(actions("target=umkm")) == 6  # `kind` alone: every business and the lists
    future = (utcnow() + timedelta(hours=1)).isoformat()
    assert actions("until=" + future.replace("+", "%2B")) and not actions(
        "since=" + future.replace("+", "%2B"))
    first = c.get(audit + "?limit=4", headers=admin).get_json()
    rest = c.get(f"{audit}?limit=4&cursor={first['next_cursor']}", headers=admin).get_json()
    assert len(first["items"]) == 4 and rest["next_cursor"] is None
    assert [e["id"] for e in first["items"] + rest["items"]] == sorted(
        (e["id"] for e in first["items"] + rest["items"]), reverse=True)
    assert len(first["items"] + rest["items"]) == 6


def test_no_action_without_its_audit_row(env) -> None:  # type: ignore[no-untyped-def]
    app, s, ids = env
    c = app.test_client()
    with app.extensions["bbi_engine"].begin() as conn:  # the log cannot be written
        conn.execute(sa.text("ALTER TABLE audit_log RENAME TO audit_log_away"))
    op = _who(s, "operator", "ops-1")
    r = c.post(f"/v1/umkm/{ids['31'][0]}/verification", json={}, headers=op)
    assert r.status_code >= 500
    assert c.get(f"/v1/umkm/{ids['31'][0]}", headers=op).status_code >= 500  # no unlogged read
    with app.extensions["bbi_engine"].connect() as conn:
        assert conn.execute(sa.select(umkm.c.status).where(umkm.c.id == ids["31"][0])
                            ).scalar() == "registered"
        assert not conn.execute(sa.text("SELECT count(*) FROM outbox")).scalar()


def test_an_admin_withdrawal_is_audited_and_scoped(env) -> None:  # type: ignore[no-untyped-def]
    app, s, ids = env
    c = app.test_client()
    regional = _who(s, "admin", "adm-31", province_scope="31")
    assert c.delete(f"/v1/umkm/{ids['32'][0]}", headers=regional).status_code == 404
    r = c.delete(f"/v1/umkm/{ids['31'][0]}", headers=regional)
    assert r.status_code == 200 and r.get_json()["status"] == "withdrawn"
    entries = c.get("/v1/audit/registration?action=umkm.withdraw",
                    headers=_who(s, "admin", "adm-1")).get_json()["items"]
    assert [(e["actor"], e["target"]) for e in entries] == [("adm-31", f"umkm:{ids['31'][0]}")]
