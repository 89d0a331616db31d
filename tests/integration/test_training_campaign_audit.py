"""Operator actions of training (courses, webinars, attendance) and campaign (create, open,
close, purchases export) land in each service's audit log, readable by admins only (issue 15,
finding 5), on SQLite and PostgreSQL."""
from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient

from services.common.config import Settings
from services.common.db.engine import new_id, utcnow
from services.training.store import enrolments
from tests.unit import campaign_helpers as ch
from tests.unit import training_helpers as th


def _audit(client: FlaskClient, service: str,
           admin: dict[str, str]) -> list[dict[str, Any]]:
    r = client.get(f"/v1/audit/{service}", headers=admin)
    assert r.status_code == 200, r.get_json()
    return list(reversed(r.get_json()["items"]))  # oldest first


def test_training_operator_actions_are_audited(db_url: str) -> None:
    settings = Settings.from_env("training", database_url=db_url)
    app, engine = th.build(settings)
    c = app.test_client()
    op = th.auth(settings, "operator", "ops-7")
    session = th.new_session(c, op)
    assert c.patch(f"/v1/sessions/{session['id']}", json={"capacity": 150},
                   headers=op).status_code == 200
    umkm_id = th.add_business(engine)
    with engine.begin() as conn:  # a seat holder (enrolment itself is not an operator action)
        now = utcnow()
        conn.execute(enrolments.insert().values(
            id=new_id(), session_id=session["id"], umkm_id=umkm_id, province_code="32",
            state="enrolled", seq=1, created_at=now, updated_at=now))
    th.start_now(engine, session["id"])
    assert c.post(f"/v1/sessions/{session['id']}/attendance", json=[umkm_id],
                  headers=op).status_code == 200
    assert c.get("/v1/audit/training", headers=op).status_code == 403
    entries = _audit(c, "training", th.auth(settings, "admin", "adm-1"))
    assert [e["action"] for e in entries] == [
        "training.course_create", "training.session_schedule", "training.session_update",
        "training.attendance"]
    assert {e["actor"] for e in entries} == {"ops-7"}
    assert entries[-1]["target"] == f"session:{session['id']}"
    assert entries[-1]["detail"] == {"rows": 1, "recorded": 1}


def test_campaign_operator_actions_and_its_export_are_audited(db_url: str) -> None:
    settings = Settings.from_env("campaign", database_url=db_url)
    app, _ = ch.build(settings)
    c = app.test_client()
    op = ch.auth(settings, "operator", "ops-9")
    assert c.post("/v1/campaigns", json=ch.campaign_body("hari-belanja"),
                  headers=op).status_code == 201
    for action in ("open", "close"):
        assert c.post(f"/v1/campaigns/hari-belanja/{action}", headers=op).status_code == 200
    export = c.get("/v1/campaigns/hari-belanja/purchases.csv", headers=op)
    assert export.status_code == 200
    export.get_data()
    entries = _audit(c, "campaign", ch.auth(settings, "admin", "adm-1"))
    assert [(e["action"], e["target"]) for e in entries] == [
        ("campaign.create", "campaign:hari-belanja"), ("campaign.open", "campaign:hari-belanja"),
        ("campaign.close", "campaign:hari-belanja"), ("campaign.export", "campaign:hari-belanja")]
    assert {e["actor"] for e in entries} == {"ops-9"}
