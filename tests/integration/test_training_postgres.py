"""Training on a real database: capacity under concurrency (PostgreSQL row lock), waitlist
promotion under parallel cancellations, and all-or-nothing attendance reports (both backends)."""
from __future__ import annotations

import json
import threading
import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from services.common.config import Settings
from services.common.db.engine import make_engine
from services.common.messaging.outbox import outbox_table
from services.training.store import completions, enrolments, metadata
from tests.unit.training_helpers import auth, build, new_session, owner_of, start_now


def _app(url: str) -> tuple[Flask, sa.Engine, Settings]:
    settings = Settings.from_env("training", database_url=url)
    # Enough connections that every request thread really waits on the row lock, not the pool.
    engine = make_engine(url, pool_size=60, max_overflow=0, pool_timeout=30)
    app, engine = build(settings, engine)
    return app, engine, settings


Call = tuple[str, str, dict[str, str], dict[str, str] | None]


def _parallel(app: Flask, calls: list[Call]) -> list[int]:
    """Run (method, path, headers, json) requests at once from threads; returns the status
    codes."""
    barrier = threading.Barrier(len(calls))
    codes: list[int] = [0] * len(calls)

    def run(i: int) -> None:
        method, path, headers, body = calls[i]
        client = app.test_client()
        barrier.wait()
        codes[i] = getattr(client, method)(path, headers=headers, json=body).status_code

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return codes


def _seats(engine: sa.Engine, session_id: str) -> list[Any]:
    e = enrolments
    with engine.connect() as conn:
        return conn.execute(sa.select(e.c.umkm_id, e.c.state, e.c.seq)
                            .where(e.c.session_id == session_id).order_by(e.c.seq)).all()


def _outbox(engine: sa.Engine, type_: str) -> list[dict[str, Any]]:
    t = outbox_table(metadata)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(t.c.payload).where(t.c.event_type == type_)
                            .order_by(t.c.id)).scalars()
        return [json.loads(r)["data"] for r in rows]


@pytest.mark.postgres
def test_fifty_parallel_enrolments_for_ten_seats(pg_url: str) -> None:
    app, engine, settings = _app(pg_url)
    op = auth(settings, "operator")
    s = new_session(app.test_client(), op, capacity=10)
    who = [owner_of(settings, engine) for _ in range(50)]
    codes = _parallel(app, [("post", f"/v1/sessions/{s['id']}/enrolments", h, {"umkm_id": u})
                            for u, h in who])
    assert sorted(codes) == [201] * 10 + [202] * 40
    seats = _seats(engine, s["id"])
    # Arrival order = order of taking the session lock: the first ten hold the seats and the
    # waitlist follows the arrival counter without gaps or repeats.
    assert [r.seq for r in seats] == list(range(1, 51))
    assert [r.state for r in seats] == ["enrolled"] * 10 + ["waitlisted"] * 40
    positions = [d["position"] for d in _outbox(engine, "bbi.training.waitlisted.v1")]
    assert positions == list(range(1, 41))
    waitlisted = [d["umkm_id"] for d in _outbox(engine, "bbi.training.waitlisted.v1")]
    assert waitlisted == [r.umkm_id for r in seats[10:]]
    assert len(_outbox(engine, "bbi.training.enrolled.v1")) == 10
    listed = app.test_client().get(f"/v1/sessions/{s['id']}").get_json()
    assert (listed["enrolled"], listed["waitlisted"], listed["seats_left"]) == (10, 40, 0)


@pytest.mark.postgres
def test_parallel_double_enrolment_of_one_business_gives_one_seat(pg_url: str) -> None:
    app, engine, settings = _app(pg_url)
    s = new_session(app.test_client(), auth(settings, "operator"), capacity=3)
    uid, me = owner_of(settings, engine)
    codes = _parallel(app, [("post", f"/v1/sessions/{s['id']}/enrolments", me,
                             {"umkm_id": uid})] * 8)
    assert sorted(codes) == [201] + [409] * 7
    assert len(_seats(engine, s["id"])) == 1


@pytest.mark.postgres
def test_parallel_cancellations_promote_the_waitlist_head_exactly(pg_url: str) -> None:
    app, engine, settings = _app(pg_url)
    s = new_session(app.test_client(), auth(settings, "operator"), capacity=5)
    url = f"/v1/sessions/{s['id']}/enrolments"
    owners = [owner_of(settings, engine) for _ in range(15)]
    ids, heads = [u for u, _ in owners], dict(owners)
    client = app.test_client()
    for uid in ids:  # sequential: a known arrival order
        client.post(url, json={"umkm_id": uid}, headers=heads[uid])
    leaving: list[Call] = [("delete", f"{url}/{uid}", heads[uid], None) for uid in ids[:5]]
    assert _parallel(app, leaving) == [200] * 5
    states = {r.umkm_id: r.state for r in _seats(engine, s["id"])}
    assert [states[u] for u in ids] == ["cancelled"] * 5 + ["enrolled"] * 5 + ["waitlisted"] * 5
    promoted = [d["umkm_id"] for d in _outbox(engine, "bbi.training.promoted.v1")]
    assert promoted == ids[5:10]  # in waitlist order
    positions = [client.get("/v1/me/enrolments", headers=heads[u]).get_json()[0]["position"]
                 for u in ids[10:]]
    assert positions == [1, 2, 3, 4, 5]


def test_attendance_csv_is_all_or_nothing(db_url: str) -> None:
    settings = Settings.from_env("training", database_url=db_url)
    app, engine = build(settings)
    client, op = app.test_client(), auth(settings, "operator")
    s = new_session(client, op, capacity=2)
    owners = [owner_of(settings, engine) for _ in range(3)]
    ids = [u for u, _ in owners]
    for uid, h in owners:
        client.post(f"/v1/sessions/{s['id']}/enrolments", json={"umkm_id": uid}, headers=h)
    start_now(engine, s["id"])
    bad = "\n".join(["umkm_id", ids[0], str(uuid.uuid4()), ids[1], "12345", ids[2],
                     f"{ids[1]},extra", ""])
    resp = client.post(f"/v1/sessions/{s['id']}/attendance", data=bad.encode(),
                       content_type="text/csv", headers=op)
    assert resp.status_code == 422
    rows = {r: [e["code"] for e in errs] for r, errs in resp.get_json()["errors"]["rows"].items()}
    assert rows == {"3": ["not_enrolled"], "5": ["not_uuid"], "6": ["not_enrolled"],
                    "7": ["csv_row_malformed"]}
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(completions)).scalar() == 0
    assert [r.state for r in _seats(engine, s["id"])] == ["enrolled", "enrolled", "waitlisted"]
    assert _outbox(engine, "bbi.training.attended.v1") == []

    good = "umkm_id\n" + "\n".join(ids[:2]) + "\n"
    ok = client.post(f"/v1/sessions/{s['id']}/attendance", data=good.encode(),
                     content_type="text/csv", headers=op)
    assert ok.status_code == 200 and ok.get_json()["recorded"] == 2
    numbers = {c["certificate_number"] for c in ok.get_json()["certificates"]}
    assert len(numbers) == 2
    done = _outbox(engine, "bbi.training.completed.v1")
    assert {d["certificate_number"] for d in done} == numbers
