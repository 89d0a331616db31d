"""Attendance (JSON and CSV), self-paced completion and the withdrawn cascade on SQLite."""
from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from services.common.config import Settings
from services.common.messaging.outbox import outbox_table
from services.training import consumer
from services.training.store import completions, enrolments, metadata
from tests.unit.training_helpers import (
    auth,
    build,
    course_body,
    events,
    new_session,
    owner_of,
    start_now,
    withdrawn,
)


@pytest.fixture
def env(tmp_path: Path):  # type: ignore[no-untyped-def]
    settings = Settings.from_env("training", database_url=f"sqlite:///{tmp_path / 't.db'}")
    app, engine = build(settings)
    return app.test_client(), settings, engine, auth(settings, "operator")


def _seated(env, n: int, capacity: int = 200):  # type: ignore[no-untyped-def]
    """A session with n enrolled businesses; returns (session, [(umkm id, headers)])."""
    client, settings, engine, op = env
    s = new_session(client, op, capacity=capacity)
    out = []
    for _ in range(n):
        uid, h = owner_of(settings, engine)
        client.post(f"/v1/sessions/{s['id']}/enrolments", json={"umkm_id": uid}, headers=h)
        out.append((uid, h))
    return s, out


def _states(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.execute(sa.select(enrolments.c.state)).scalars())


def test_attendance_json_completes_and_certifies_idempotently(env) -> None:  # type: ignore[no-untyped-def]
    client, _, engine, op = env
    s, who = _seated(env, 3)
    start_now(engine, s["id"])
    url = f"/v1/sessions/{s['id']}/attendance"
    resp = client.post(url, json=[who[0][0], who[1][0]], headers=op)
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["recorded"] == 2 and body["already_recorded"] == 0
    numbers = {c["umkm_id"]: c["certificate_number"] for c in body["certificates"]}
    assert all(n.startswith("BBI-W-") for n in numbers.values())
    assert _states(engine) == ["attended", "attended", "enrolled"]
    done = events(engine, "bbi.training.completed.v1")
    assert [d["data"]["kind"] for d in done] == ["webinar", "webinar"]
    assert done[0]["data"]["key_id"] == s["id"] and done[0]["subject"] == s["id"]
    assert len(events(engine, "bbi.training.attended.v1")) == 2
    mine = client.get("/v1/me/completions", headers=who[0][1]).get_json()
    assert mine[0]["certificate_number"] == numbers[who[0][0]]
    assert mine[0]["umkm_id"] == who[0][0]
    assert client.get("/v1/me/enrolments", headers=who[0][1]).get_json()[0]["state"] == "attended"

    again = client.post(url, json={"umkm_ids": [who[0][0], who[2][0]]}, headers=op).get_json()
    assert again["recorded"] == 1 and again["already_recorded"] == 1
    assert again["certificates"][0]["certificate_number"] == numbers[who[0][0]]
    assert len(events(engine, "bbi.training.completed.v1")) == 3


def test_attendance_csv_with_unknown_and_malformed_rows_changes_nothing(env) -> None:  # type: ignore[no-untyped-def]
    client, _, engine, op = env
    s, who = _seated(env, 2, capacity=1)  # the second is waitlisted
    start_now(engine, s["id"])
    csv = (f"umkm_id\n{who[0][0]}\n{uuid.uuid4()}\nnot-an-id\n{who[0][0]}\n"
           f"{who[1][0]}\n\"a\",\"b\"\n")
    resp = client.post(f"/v1/sessions/{s['id']}/attendance", data=csv.encode(),
                       content_type="text/csv", headers=op)
    assert resp.status_code == 422
    body = resp.get_json()
    assert body["code"] == "attendance_invalid" and "5" in body["message_en"]
    rows = {r: [e["code"] for e in errs] for r, errs in body["errors"]["rows"].items()}
    assert rows == {"3": ["not_enrolled"], "4": ["not_uuid"], "5": ["duplicate_row"],
                    "6": ["not_enrolled"], "7": ["csv_row_malformed"]}
    assert _states(engine) == ["enrolled", "waitlisted"]
    assert events(engine, "bbi.training.attended.v1") == []
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(completions)).scalar() == 0

    ok = client.post(f"/v1/sessions/{s['id']}/attendance", content_type="text/csv",
                     data=f"umkm_id\r\n{who[0][0]}\r\n".encode(), headers=op)
    assert ok.status_code == 200 and ok.get_json()["recorded"] == 1


@pytest.mark.parametrize(("body", "ctype", "status", "code"), [
    (b"id\nx\n", "text/csv", 422, "attendance_invalid"),
    (b"\xff\xfe", "text/csv", 422, "csv_not_utf8"),
    (b"[]", "application/json", 422, "attendance_invalid"),
    (b"{\"ids\": []}", "application/json", 422, "attendance_invalid"),
    (b"umkm_id", "text/plain", 415, "unsupported_media_type"),
])
def test_attendance_body_errors(env, body: bytes, ctype: str, status: int, code: str) -> None:  # type: ignore[no-untyped-def]
    client, _, engine, op = env
    s, _ = _seated(env, 1)
    start_now(engine, s["id"])
    resp = client.post(f"/v1/sessions/{s['id']}/attendance", data=body, content_type=ctype,
                       headers=op)
    assert resp.status_code == status and resp.get_json()["code"] == code


def test_attendance_session_state_errors(env) -> None:  # type: ignore[no-untyped-def]
    client, _, _, op = env
    s, who = _seated(env, 1)
    url = f"/v1/sessions/{s['id']}/attendance"
    early = client.post(url, json=[who[0][0]], headers=op)
    assert early.status_code == 409 and early.get_json()["code"] == "session_not_started"
    client.post(f"/v1/sessions/{s['id']}/cancel", headers=op)
    gone = client.post(url, json=[who[0][0]], headers=op)
    assert gone.status_code == 409 and gone.get_json()["code"] == "session_cancelled"
    assert client.post(f"/v1/sessions/{uuid.uuid4()}/attendance", json=[who[0][0]],
                       headers=op).status_code == 404


def test_self_paced_course_completes_when_every_module_is_done(env) -> None:  # type: ignore[no-untyped-def]
    client, settings, engine, op = env
    cid = client.post("/v1/courses", json=course_body(), headers=op).get_json()["id"]
    uid, me = owner_of(settings, engine, "94")
    base, mine = f"/v1/me/courses/{cid}", {"umkm_id": uid}
    first = client.post(f"{base}/modules/toko-daring/done", json=mine, headers=me).get_json()
    assert first == {"course_id": cid, "modules_total": 2, "modules_done": ["toko-daring"],
                     "completed": False, "certificate_number": None}
    client.post(f"{base}/modules/toko-daring/done", json=mine, headers=me)  # idempotent
    last = client.post(f"{base}/modules/foto-produk/done", json=mine, headers=me).get_json()
    assert last["completed"] and last["certificate_number"].startswith("BBI-E-")
    again = client.post(f"{base}/modules/foto-produk/done", json=mine, headers=me).get_json()
    assert again["certificate_number"] == last["certificate_number"]
    assert client.get(f"{base}/progress?umkm_id={uid}", headers=me).get_json() == last
    done = events(engine, "bbi.training.completed.v1")
    assert len(done) == 1 and done[0]["data"] | {"certificate_number": "x"} == {
        "key_id": cid, "umkm_id": uid, "course_id": cid, "province_code": "94",
        "kind": "elearning", "certificate_number": "x"}
    kinds = [c["kind"] for c in client.get("/v1/me/completions", headers=me).get_json()]
    assert kinds == ["elearning"]


def test_self_paced_errors(env) -> None:  # type: ignore[no-untyped-def]
    client, settings, engine, op = env
    cid = client.post("/v1/courses", json=course_body(), headers=op).get_json()["id"]
    uid, me = owner_of(settings, engine)
    base, mine = "/v1/me/courses", {"umkm_id": uid}
    assert client.post(f"{base}/{cid}/modules/nope/done", json=mine,
                       headers=me).status_code == 404
    assert client.post(f"{base}/{uuid.uuid4()}/modules/a/done", json=mine,
                       headers=me).status_code == 404
    assert client.get(f"{base}/{uuid.uuid4()}/progress?umkm_id={uid}",
                      headers=me).status_code == 404
    assert client.post(f"{base}/{cid}/modules/toko-daring/done", json={},
                       headers=me).status_code == 422  # which business: required
    resp = client.post(f"{base}/{cid}/modules/toko-daring/done",
                       json={"umkm_id": str(uuid.uuid4())}, headers=me)
    assert resp.status_code == 409 and resp.get_json()["code"] == "umkm_not_known_yet"
    assert "Retry-After" in resp.headers
    stranger = auth(settings, "umkm", "kc-stranger")
    for resp in (client.post(f"{base}/{cid}/modules/toko-daring/done", json=mine,
                             headers=stranger),
                 client.get(f"{base}/{cid}/progress?umkm_id={uid}", headers=stranger)):
        assert resp.status_code == 403 and resp.get_json()["code"] == "not_owner"
    assert events(engine, "bbi.training.completed.v1") == []


def test_withdrawn_event_cancels_seats_and_promotes(env) -> None:  # type: ignore[no-untyped-def]
    client, _, engine, op = env
    s, who = _seated(env, 3, capacity=1)
    other, _ = _seated(env, 0)
    client.post(f"/v1/sessions/{other['id']}/enrolments", json={"umkm_id": who[0][0]},
                headers=who[0][1])
    with engine.begin() as conn:
        consumer.on_withdrawn_handler("p.")(conn, withdrawn(who[0][0]))
    cancelled = [e["data"] for e in events(engine, "bbi.training.cancelled.v1")]
    assert {c["session_id"] for c in cancelled} == {s["id"], other["id"]}
    assert {c["reason"] for c in cancelled} == {"withdrawn"}
    promoted = events(engine, "bbi.training.promoted.v1")
    assert [p["data"]["umkm_id"] for p in promoted] == [who[1][0]]  # the waitlist head
    enrolled = client.get("/v1/me/enrolments", headers=who[2][1]).get_json()[0]
    assert enrolled["state"] == "waitlisted" and enrolled["position"] == 1
    with engine.connect() as conn:
        topics = set(conn.execute(sa.select(outbox_table(metadata).c.topic).where(
            outbox_table(metadata).c.event_type == "bbi.training.promoted.v1")).scalars())
    assert topics == {"p.bbi.training"}  # the consumer's events honour the topic prefix


def test_withdrawal_after_the_start_keeps_the_seat_but_refuses_attendance(env) -> None:  # type: ignore[no-untyped-def]
    client, _, engine, op = env
    s, who = _seated(env, 2)
    start_now(engine, s["id"])
    with engine.begin() as conn:
        consumer.on_withdrawn_handler()(conn, withdrawn(who[0][0]))
    assert events(engine, "bbi.training.cancelled.v1") == []  # history is not rewritten
    resp = client.post(f"/v1/sessions/{s['id']}/attendance", json=[who[1][0], who[0][0]],
                       headers=op)
    assert resp.status_code == 422
    assert resp.get_json()["errors"]["rows"] == {"1": [{
        "code": "umkm_withdrawn", "message_id": "UMKM ini telah menarik pendaftarannya.",
        "message_en": "This business has withdrawn its registration."}]}
