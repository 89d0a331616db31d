"""The training API on SQLite: auth, courses, sessions, enrolment rules and their events."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from services.common.config import Settings
from services.training import consumer
from services.training.store import enrolments
from tests.unit.training_helpers import (
    auth,
    build,
    course_body,
    events,
    new_session,
    owner_of,
    session_body,
    start_now,
    withdrawn,
)


@pytest.fixture
def env(tmp_path: Path):  # type: ignore[no-untyped-def]
    settings = Settings.from_env("training", database_url=f"sqlite:///{tmp_path / 't.db'}")
    app, engine = build(settings)
    return app.test_client(), settings, engine, auth(settings, "operator")


def _umkm(env, province: str = "32") -> tuple[str, dict[str, str]]:  # type: ignore[no-untyped-def]
    """A business and its owner's token."""
    _, settings, engine, _ = env
    return owner_of(settings, engine, province)


def _enrol(client, url: str, who: tuple[str, dict[str, str]]):  # type: ignore[no-untyped-def]
    return client.post(url, json={"umkm_id": who[0]}, headers=who[1])


def _mine(client, who: tuple[str, dict[str, str]]) -> list:  # type: ignore[no-untyped-def,type-arg]
    return client.get("/v1/me/enrolments", headers=who[1]).get_json()  # type: ignore[no-any-return]


SID = str(uuid.uuid4())
PROTECTED = [
    ("post", "/v1/courses", "operator"), ("patch", f"/v1/courses/{SID}", "operator"),
    ("post", "/v1/sessions", "operator"), ("patch", f"/v1/sessions/{SID}", "operator"),
    ("post", f"/v1/sessions/{SID}/cancel", "operator"),
    ("post", f"/v1/sessions/{SID}/attendance", "operator"),
    ("post", f"/v1/sessions/{SID}/enrolments", "umkm"),
    ("delete", f"/v1/sessions/{SID}/enrolments/{SID}", "umkm"),
    ("get", "/v1/me/enrolments", "umkm"), ("get", "/v1/me/completions", "umkm"),
    ("get", f"/v1/me/courses/{SID}/progress", "umkm"),
    ("post", f"/v1/me/courses/{SID}/modules/m1/done", "umkm"),
]


@pytest.mark.parametrize(("method", "path", "role"), PROTECTED)
def test_protected_endpoints_401_without_token_403_with_wrong_role(env, method: str,  # type: ignore[no-untyped-def]
                                                                   path: str, role: str) -> None:
    client, settings, _, _ = env
    resp = getattr(client, method)(path, json={})
    assert resp.status_code == 401 and resp.get_json()["code"] == "token_missing"
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    bad = getattr(client, method)(path, json={}, headers={"Authorization": "Bearer x.y.z"})
    assert bad.status_code == 401 and bad.get_json()["code"] == "token_malformed"
    other = "umkm" if role == "operator" else "operator"
    wrong = getattr(client, method)(path, json={}, headers=auth(settings, other, str(uuid.uuid4())))
    assert wrong.status_code == 403 and wrong.get_json()["code"] == "forbidden"


def test_an_owner_acts_only_for_their_own_businesses(env) -> None:  # type: ignore[no-untyped-def]
    client, settings, engine, op = env
    s = new_session(client, op)
    url = f"/v1/sessions/{s['id']}/enrolments"
    mine, theirs = _umkm(env), _umkm(env)
    stolen = client.post(url, json={"umkm_id": theirs[0]}, headers=mine[1])
    assert stolen.status_code == 403 and stolen.get_json()["code"] == "not_owner"
    assert stolen.mimetype == "application/problem+json" and stolen.get_json()["message_id"]
    # A token whose subject is the business id is not its owner: subjects are people.
    as_id = client.post(url, json={"umkm_id": theirs[0]}, headers=auth(settings, "umkm",
                                                                       theirs[0]))
    assert as_id.status_code == 403
    assert events(engine, "bbi.training.enrolled.v1") == []
    assert _enrol(client, url, theirs).status_code == 201
    for resp in (client.delete(f"{url}/{theirs[0]}", headers=mine[1]),
                 client.get(f"/v1/me/enrolments?umkm_id={theirs[0]}", headers=mine[1]),
                 client.get(f"/v1/me/completions?umkm_id={theirs[0]}", headers=mine[1])):
        assert resp.status_code == 403 and resp.get_json()["code"] == "not_owner"
    assert _mine(client, mine) == []
    assert client.post(url, json={}, headers=mine[1]).status_code == 422  # name the business


def test_one_owner_enrols_each_of_their_businesses(env) -> None:  # type: ignore[no-untyped-def]
    client, settings, engine, op = env
    s = new_session(client, op)
    url = f"/v1/sessions/{s['id']}/enrolments"
    a, _ = owner_of(settings, engine, "31", owner="kc-sri")
    b, sri = owner_of(settings, engine, "65", owner="kc-sri")
    assert _enrol(client, url, (a, sri)).status_code == 201
    assert _enrol(client, url, (b, sri)).status_code == 201
    both = client.get("/v1/me/enrolments", headers=sri).get_json()
    assert sorted(e["umkm_id"] for e in both) == sorted([a, b])
    one = client.get(f"/v1/me/enrolments?umkm_id={b}", headers=sri).get_json()
    assert [e["umkm_id"] for e in one] == [b]
    assert client.delete(f"{url}/{a}", headers=sri).get_json()["state"] == "cancelled"


def test_courses_create_list_update(env) -> None:  # type: ignore[no-untyped-def]
    client, _, _, op = env
    created = client.post("/v1/courses", json=course_body(), headers=op)
    assert created.status_code == 201
    cid = created.get_json()["id"]
    assert [c["id"] for c in client.get("/v1/courses").get_json()] == [cid]
    patched = client.patch(f"/v1/courses/{cid}", headers=op,
                           json={"level": "lanjutan", "modules": [{"key": "a", "title": "A"}]})
    assert patched.status_code == 200
    assert patched.get_json()["level"] == "lanjutan"
    assert client.get(f"/v1/courses/{cid}").get_json()["modules"] == [{"key": "a", "title": "A"}]
    missing = client.patch(f"/v1/courses/{uuid.uuid4()}", json={"level": "dasar"}, headers=op)
    assert missing.status_code == 404


def test_course_validation(env) -> None:  # type: ignore[no-untyped-def]
    client, _, _, op = env
    dup = course_body(modules=[{"key": "a", "title": "A"}, {"key": "a", "title": "B"}])
    resp = client.post("/v1/courses", json=dup, headers=op)
    assert resp.status_code == 422
    assert resp.get_json()["errors"]["json"]["modules"][0]["code"] == "module_key_duplicate"
    resp = client.post("/v1/courses", json=course_body(level="expert", modules=[]), headers=op)
    assert set(resp.get_json()["errors"]["json"]) == {"level", "modules"}


def test_session_defaults_wib_and_event(env) -> None:  # type: ignore[no-untyped-def]
    client, _, engine, op = env
    cid = client.post("/v1/courses", json=course_body(), headers=op).get_json()["id"]
    resp = client.post("/v1/sessions", headers=op,
                       json=session_body(cid, starts_at="2099-12-01T10:00:00"))
    assert resp.status_code == 201
    s = resp.get_json()
    assert s["capacity"] == 200 and s["seats_left"] == 200
    assert s["starts_at"] == "2099-12-01T10:00:00+07:00"  # shown in WIB
    assert s["enrolment_deadline"] == s["starts_at"]
    ev = events(engine, "bbi.training.session_scheduled.v1")[0]
    published = datetime.fromisoformat(ev["data"]["starts_at"].replace("Z", "+00:00"))
    assert published == datetime(2099, 12, 1, 3, tzinfo=UTC)  # stored and published in UTC
    assert published.utcoffset() == timedelta(0)
    assert ev["data"]["capacity"] == 200 and ev["subject"] == s["id"]
    public = client.get("/v1/sessions").get_json()
    assert [p["id"] for p in public] == [s["id"]] and "join_link" not in public[0]


@pytest.mark.parametrize(("kw", "code"), [
    ({"starts_at": "2001-01-01T10:00:00"}, "starts_in_past"),
    ({"starts_at": "2099-01-01T10:00:00", "enrolment_deadline": "2099-01-02T10:00:00"},
     "deadline_after_start"),
])
def test_session_schedule_errors(env, kw: dict[str, str], code: str) -> None:  # type: ignore[no-untyped-def]
    client, _, _, op = env
    cid = client.post("/v1/courses", json=course_body(), headers=op).get_json()["id"]
    resp = client.post("/v1/sessions", json=session_body(cid, **kw), headers=op)
    assert resp.status_code == 422 and resp.get_json()["code"] == code


def test_session_for_unknown_course_is_404(env) -> None:  # type: ignore[no-untyped-def]
    client, _, _, op = env
    resp = client.post("/v1/sessions", json=session_body(str(uuid.uuid4())), headers=op)
    assert resp.status_code == 404


def test_enrol_seat_then_waitlist_then_promotion_on_cancel(env) -> None:  # type: ignore[no-untyped-def]
    client, _, engine, op = env
    s = new_session(client, op, capacity=2)
    url = f"/v1/sessions/{s['id']}/enrolments"
    who = [_umkm(env) for _ in range(4)]
    codes = [_enrol(client, url, w).status_code for w in who]
    assert codes == [201, 201, 202, 202]
    third = _mine(client, who[2])[0]
    assert third["state"] == "waitlisted" and third["position"] == 1 and third["join_link"] is None
    first = _mine(client, who[0])[0]
    assert first["join_link"] == "https://zoom.example/j/123"
    listed = client.get("/v1/sessions").get_json()[0]
    assert (listed["enrolled"], listed["waitlisted"], listed["seats_left"]) == (2, 2, 0)

    gone = client.delete(f"{url}/{who[0][0]}", headers=who[0][1])
    assert gone.status_code == 200 and gone.get_json()["state"] == "cancelled"
    assert _mine(client, who[2])[0]["state"] == "enrolled"
    assert _mine(client, who[3])[0]["position"] == 1
    types = [e["type"].split(".")[2] for e in events(engine)]
    assert types == ["session_scheduled", "enrolled", "enrolled", "waitlisted", "waitlisted",
                     "cancelled", "promoted"]
    cancel = events(engine, "bbi.training.cancelled.v1")[0]["data"]
    assert cancel["reason"] == "umkm_cancelled" and cancel["previous_state"] == "enrolled"
    assert events(engine, "bbi.training.waitlisted.v1")[1]["data"]["position"] == 2
    # A waitlisted business leaving frees no seat: nobody is promoted.
    client.delete(f"{url}/{who[3][0]}", headers=who[3][1])
    assert len(events(engine, "bbi.training.promoted.v1")) == 1


def test_seat_events_carry_ids_and_province_only(env) -> None:  # type: ignore[no-untyped-def]
    client, _, engine, op = env
    s = new_session(client, op)
    _enrol(client, f"/v1/sessions/{s['id']}/enrolments", _umkm(env, "65"))
    data = events(engine, "bbi.training.enrolled.v1")[0]["data"]
    assert set(data) == {"session_id", "umkm_id", "course_id", "province_code"}
    assert data["province_code"] == "65"


def test_enrol_twice_is_refused_but_coming_back_after_cancelling_works(env) -> None:  # type: ignore[no-untyped-def]
    client, _, _, op = env
    s = new_session(client, op)
    url, who = f"/v1/sessions/{s['id']}/enrolments", _umkm(env)
    assert _enrol(client, url, who).status_code == 201
    again = _enrol(client, url, who)
    assert again.status_code == 409 and again.get_json()["code"] == "already_enrolled"
    assert again.get_json()["current_state"] == "enrolled"
    client.delete(f"{url}/{who[0]}", headers=who[1])
    assert _enrol(client, url, who).status_code == 201


def test_unknown_business_gets_409_with_retry_after(env) -> None:  # type: ignore[no-untyped-def]
    client, settings, _, op = env
    s = new_session(client, op)
    resp = client.post(f"/v1/sessions/{s['id']}/enrolments", json={"umkm_id": str(uuid.uuid4())},
                       headers=auth(settings, "umkm", "kc-owner-1"))
    assert resp.status_code == 409 and resp.get_json()["code"] == "umkm_not_known_yet"
    assert int(resp.headers["Retry-After"]) > 0
    assert resp.get_json()["message_id"] and resp.get_json()["message_en"]


def test_withdrawn_business_may_not_enrol(env) -> None:  # type: ignore[no-untyped-def]
    client, settings, engine, op = env
    s = new_session(client, op)
    uid, who = owner_of(settings, engine)
    with engine.begin() as conn:
        consumer.on_withdrawn_handler()(conn, withdrawn(uid))
    resp = client.post(f"/v1/sessions/{s['id']}/enrolments", json={"umkm_id": uid}, headers=who)
    assert resp.status_code == 409 and resp.get_json()["code"] == "umkm_withdrawn"


def test_enrolment_after_deadline_into_cancelled_or_past_session(env) -> None:  # type: ignore[no-untyped-def]
    client, _, engine, op = env
    soon = datetime.now(UTC) + timedelta(days=1)
    closed = new_session(client, op, starts_at=soon.isoformat(),
                         enrolment_deadline=(soon - timedelta(days=2)).isoformat())
    who = _umkm(env)
    resp = _enrol(client, f"/v1/sessions/{closed['id']}/enrolments", who)
    assert resp.status_code == 409 and resp.get_json()["code"] == "enrolment_closed"

    cancelled = new_session(client, op)
    assert client.post(f"/v1/sessions/{cancelled['id']}/cancel", headers=op).status_code == 200
    resp = _enrol(client, f"/v1/sessions/{cancelled['id']}/enrolments", who)
    assert resp.status_code == 409 and resp.get_json()["code"] == "session_cancelled"

    past = new_session(client, op)
    start_now(engine, past["id"])
    resp = _enrol(client, f"/v1/sessions/{past['id']}/enrolments", who)
    assert resp.status_code == 409 and resp.get_json()["code"] == "session_past"
    upcoming = [x["id"] for x in client.get("/v1/sessions").get_json()]
    assert upcoming == [closed["id"]]  # cancelled and started sessions are not upcoming
    resp = _enrol(client, f"/v1/sessions/{uuid.uuid4()}/enrolments", who)
    assert resp.status_code == 404


def test_cancel_session_notifies_every_seat(env) -> None:  # type: ignore[no-untyped-def]
    client, _, engine, op = env
    s = new_session(client, op, capacity=1)
    for _ in range(3):
        _enrol(client, f"/v1/sessions/{s['id']}/enrolments", _umkm(env))
    resp = client.post(f"/v1/sessions/{s['id']}/cancel", headers=op)
    assert resp.status_code == 200 and resp.get_json()["status"] == "cancelled"
    cancelled = [e["data"] for e in events(engine, "bbi.training.cancelled.v1")]
    assert [c["previous_state"] for c in cancelled] == ["enrolled", "waitlisted", "waitlisted"]
    assert {c["reason"] for c in cancelled} == {"session_cancelled"}
    assert events(engine)[-1]["type"] == "bbi.training.session_cancelled.v1"
    with engine.connect() as conn:
        states = set(conn.execute(sa.select(enrolments.c.state)).scalars())
    assert states == {"cancelled"}
    again = client.post(f"/v1/sessions/{s['id']}/cancel", headers=op)
    assert again.status_code == 409 and again.get_json()["code"] == "session_cancelled"
    upd = client.patch(f"/v1/sessions/{s['id']}", json={"capacity": 5}, headers=op)
    assert upd.status_code == 409 and upd.get_json()["code"] == "session_cancelled"


def test_cancel_enrolment_without_a_seat_is_409(env) -> None:  # type: ignore[no-untyped-def]
    client, _, _, op = env
    s = new_session(client, op)
    uid, who = _umkm(env)
    resp = client.delete(f"/v1/sessions/{s['id']}/enrolments/{uid}", headers=who)
    assert resp.status_code == 409 and resp.get_json()["code"] == "not_enrolled"


def test_update_session_capacity_promotes_and_cannot_drop_below_enrolled(env) -> None:  # type: ignore[no-untyped-def]
    client, _, engine, op = env
    s = new_session(client, op, capacity=1)
    for _ in range(3):
        _enrol(client, f"/v1/sessions/{s['id']}/enrolments", _umkm(env))
    resp = client.patch(f"/v1/sessions/{s['id']}", json={"capacity": 2}, headers=op)
    assert resp.status_code == 200
    assert (resp.get_json()["enrolled"], resp.get_json()["waitlisted"]) == (2, 1)
    assert len(events(engine, "bbi.training.promoted.v1")) == 1
    low = client.patch(f"/v1/sessions/{s['id']}", json={"capacity": 1}, headers=op)
    assert low.status_code == 409 and low.get_json()["code"] == "capacity_below_enrolled"
    moved = client.patch(f"/v1/sessions/{s['id']}", headers=op,
                         json={"starts_at": "2099-05-05T09:00:00",
                               "join_link": "https://meet.example/x"})
    assert moved.status_code == 200
    body = moved.get_json()
    assert body["starts_at"] == body["enrolment_deadline"] == "2099-05-05T09:00:00+07:00"
    assert body["join_link"] == "https://meet.example/x"
    bad = client.patch(f"/v1/sessions/{s['id']}", json={"enrolment_deadline": "2099-06-01T00:00"},
                       headers=op)
    assert bad.status_code == 422 and bad.get_json()["code"] == "deadline_after_start"


def test_idempotency_key_replays_an_enrolment(env) -> None:  # type: ignore[no-untyped-def]
    client, _, engine, op = env
    s = new_session(client, op)
    uid, h = _umkm(env)
    who = (uid, h | {"Idempotency-Key": "k1"})
    first = _enrol(client, f"/v1/sessions/{s['id']}/enrolments", who)
    second = _enrol(client, f"/v1/sessions/{s['id']}/enrolments", who)
    assert first.status_code == second.status_code == 201
    assert second.headers["Idempotent-Replayed"] == "true"
    assert len(events(engine, "bbi.training.enrolled.v1")) == 1
