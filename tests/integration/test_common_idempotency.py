"""Idempotency-Key under real concurrency (issue 15, finding 7): two retries with one key
on PostgreSQL, made deterministic by a gate the test holds, never by sleeping. The first
request is stopped inside its unit of work; the second one is let in and must wait for it
(or answer 409 in_progress), and the use case must have run exactly once."""
from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from services.common.config import Settings
from services.common.db.engine import make_engine, utcnow
from services.common.http.errors import ApiError
from services.common.http.web import create_service_app, get_engine
from services.common.messaging import housekeeping
from services.common.messaging.uow import UnitOfWork
from tests.integration.common_helpers import demo_items, demo_md, wait_until

GENEROUS = 30.0


class ItemIn(Schema):
    id = fields.String(required=True)
    n = fields.Integer(required=True)


class Gate:
    """Where the use case stops until the test lets it go, and how often it ran."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.runs = 0
        self.hold = True
        self.fail_first = False


def build(url: str, gate: Gate, wait_seconds: float = 30.0) -> Flask:
    settings = Settings.from_env("demo", database_url=url, idempotency_wait_seconds=wait_seconds)
    app, api = create_service_app("demo", settings, demo_md, "Demo")
    demo_md.create_all(app.extensions["bbi_engine"])
    blp = Blueprint("items", __name__, url_prefix="/v1/items")

    @blp.route("")
    class Items(MethodView):
        @blp.arguments(ItemIn)
        @blp.response(201, ItemIn)
        def post(self, body: dict[str, Any]) -> dict[str, Any]:
            with UnitOfWork(get_engine(), demo_md, "demo") as uow:
                gate.runs += 1
                run = gate.runs
                uow.conn.execute(demo_items.insert().values(**body))
                if gate.hold:
                    gate.entered.set()
                    assert gate.release.wait(GENEROUS), "the test never released the gate"
            if gate.fail_first and run == 1:  # e.g. the answer could not be built
                raise ApiError(503, "down", "Turun.", "Down.")
            return body

    api.register_blueprint(blp)
    return app


def post(app: Flask, key: str, body: dict[str, Any] | None = None) -> Any:
    resp = app.test_client().post("/v1/items", json=body or {"id": "a", "n": 1},
                                  headers={"Idempotency-Key": key})
    resp.get_data()
    return resp


def waiting_on_a_lock(url: str) -> Callable[[], bool]:
    """True once some session of this database waits for a lock (the second request's
    claim, blocked on the first request's uncommitted key row)."""
    engine = make_engine(url)
    name = url.rsplit("/", 1)[-1]

    def check() -> bool:
        with engine.connect() as conn:
            return bool(conn.execute(sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = :d "
                "AND wait_event_type = 'Lock'"), {"d": name}).scalar())
    return check


@pytest.mark.postgres
def test_a_concurrent_retry_waits_for_the_first_and_replays_it_never_running_twice(
        pg_url: str) -> None:
    gate = Gate()
    app = build(pg_url, gate)
    with ThreadPoolExecutor(2) as pool:
        first: Future[Any] = pool.submit(post, app, "k-1")
        assert gate.entered.wait(GENEROUS), "the first request never reached its use case"
        second: Future[Any] = pool.submit(post, app, "k-1")
        assert wait_until(waiting_on_a_lock(pg_url), GENEROUS), "the retry did not wait"
        assert gate.runs == 1 and not second.done()
        gate.release.set()
        a, b = first.result(GENEROUS), second.result(GENEROUS)
    assert a.status_code == b.status_code == 201, (a.get_json(), b.get_json())
    assert "Idempotent-Replayed" not in a.headers and b.headers["Idempotent-Replayed"] == "true"
    assert a.get_json() == b.get_json()
    assert gate.runs == 1
    with make_engine(pg_url).connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(demo_items)).scalar() == 1


@pytest.mark.postgres
def test_a_concurrent_retry_that_must_not_wait_gets_409_in_progress(pg_url: str) -> None:
    gate = Gate()
    app = build(pg_url, gate, wait_seconds=0)
    with ThreadPoolExecutor(1) as pool:
        first: Future[Any] = pool.submit(post, app, "k-2")
        assert gate.entered.wait(GENEROUS)
        b = post(app, "k-2")  # the first still holds its transaction: the test holds the gate
        assert b.status_code == 409 and b.mimetype == "application/problem+json"
        assert b.get_json()["code"] == "in_progress" and b.headers["Retry-After"]
        gate.release.set()
        a = first.result(GENEROUS)
    assert a.status_code == 201 and gate.runs == 1
    gate.hold = False
    again = post(app, "k-2")  # once the first committed, the key replays its answer
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert gate.runs == 1


@pytest.mark.postgres
def test_a_failed_first_request_releases_the_key_so_the_waiting_retry_runs(
        pg_url: str) -> None:
    gate = Gate()
    gate.fail_first = True
    app = build(pg_url, gate)
    with ThreadPoolExecutor(2) as pool:
        first: Future[Any] = pool.submit(post, app, "k-3")
        assert gate.entered.wait(GENEROUS)
        gate.hold = False
        second: Future[Any] = pool.submit(post, app, "k-3")
        assert wait_until(waiting_on_a_lock(pg_url), GENEROUS)
        gate.release.set()
        a, b = first.result(GENEROUS), second.result(GENEROUS)
    # The first answered 503 after its unit of work: its row, key and answer rolled back.
    assert a.status_code == 503 and b.status_code == 201
    assert "Idempotent-Replayed" not in b.headers and gate.runs == 2
    with make_engine(pg_url).connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(demo_items)).scalar() == 1


def test_keys_expire_after_the_ttl_and_the_worker_deletes_them(db_url: str) -> None:
    url = db_url
    gate = Gate()
    gate.hold = False
    app = build(url, gate)
    assert post(app, "old", {"id": "x", "n": 1}).status_code == 201
    assert post(app, "new", {"id": "y", "n": 1}).status_code == 201
    engine = make_engine(url)
    keys = demo_md.tables["idempotency_keys"]
    with engine.begin() as conn:  # "old" was answered two days ago
        conn.execute(keys.update().where(keys.c.key == "old")
                     .values(created_at=utcnow() - timedelta(days=2)))
    # An expired key counts as new: the same key with another body runs (no 422 reused).
    assert post(app, "old", {"id": "z", "n": 1}).status_code == 201 and gate.runs == 3
    with engine.begin() as conn:
        conn.execute(keys.update().where(keys.c.key == "old")
                     .values(created_at=utcnow() - timedelta(days=2)))
    settings = Settings.from_env("demo", database_url=url)
    done = housekeeping.run_once(engine, demo_md, settings)
    assert done["idempotency_keys"] == 1
    with engine.connect() as conn:
        assert set(conn.execute(sa.select(keys.c.key)).scalars()) == {"new"}
