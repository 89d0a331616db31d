"""Idempotency-Key: a retried write returns the first answer, and never runs twice.

The key is claimed inside the request's own database transaction. The first unit of work of
a keyed request opens that transaction on a connection held for the request, inserts the
key row, and runs as a SAVEPOINT in it; the web layer writes the answer into the key row
and commits at the end of the request. Claim, effects, events (outbox rows) and the stored
answer therefore commit together or not at all.

A concurrent retry with the same key blocks on the uncommitted key row (PostgreSQL's unique
index; SQLite's single writer) until the first request commits, then replays its answer;
after `idempotency_wait_seconds` it gets 409 `in_progress` instead. If the first request
fails (5xx, or its unit of work raises) everything is rolled back, the key included, so the
retry runs. Keys live `idempotency_ttl_seconds` (24 h by default): an expired key counts as
new, the worker deletes expired rows (services/common/messaging/housekeeping.py)."""
from __future__ import annotations

import hashlib
import json
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from services.common.db import dialect
from services.common.db.engine import utcnow
from services.common.http.errors import ApiError

IN_PROGRESS_RETRY_AFTER = "2"


class Replay(Exception):
    """The key was answered by a concurrent request that committed first: send its answer."""

    def __init__(self, row: Any) -> None:
        super().__init__("idempotent replay")
        self.row = row


@dataclass
class Claim:
    """One keyed write request: what it claims, and the transaction once opened."""

    engine: Engine
    table: sa.Table
    key: str
    scope: str
    fingerprint: str
    ttl_seconds: int
    wait_seconds: float
    conn: Connection | None = None
    tx: Any = None
    claimed: bool = False
    started: datetime = field(default_factory=utcnow)

    def cutoff(self) -> datetime:
        return self.started - timedelta(seconds=self.ttl_seconds)


current: ContextVar[Claim | None] = ContextVar("idempotency_claim", default=None)


def fingerprint(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def live_row(conn: Connection, t: sa.Table, key: str, scope: str, cutoff: datetime) -> Any:
    """The stored answer of this key, unless it expired."""
    return conn.execute(sa.select(t).where(t.c.key == key, t.c.scope == scope,
                                           t.c.created_at >= cutoff)).first()


def check_same_request(row: Any, fp: str) -> None:
    if row.fingerprint != fp:
        raise ApiError(422, "idempotency_key_reused",
                       "Idempotency-Key sudah dipakai untuk permintaan lain.",
                       "Idempotency-Key was already used with a different request body.")


def in_progress() -> ApiError:
    return ApiError(409, "in_progress",
                    "Permintaan dengan Idempotency-Key ini sedang diproses; coba lagi sebentar.",
                    "A request with this Idempotency-Key is still in progress; retry shortly.",
                    headers={"Retry-After": IN_PROGRESS_RETRY_AFTER})


def _upsert(c: Claim, values: dict[str, Any]) -> Any:
    """INSERT the key row, or take over an expired one; RETURNING says whether we own it."""
    t = c.table
    return dialect.upsert(c.engine, t, {"key": c.key, "scope": c.scope, **values},
                          index_elements=[t.c.key, t.c.scope], set_=list(values),
                          where=t.c.created_at < c.cutoff()).returning(t.c.key)


def join(engine: Engine) -> tuple[Connection, bool] | None:
    """For a unit of work: the request transaction's connection, and whether this call
    opened it (claiming the key); None when this is not a keyed request on this engine."""
    c = current.get()
    if c is None or c.engine is not engine:
        return None
    if c.conn is not None:
        return c.conn, False
    conn = engine.connect()
    try:
        tx = conn.begin()
        if dialect.is_postgresql(conn):
            # Bound the wait behind a concurrent request holding this key (then 409), and
            # only for this statement: the use case's own row locks keep the default.
            ms = max(1, int(c.wait_seconds * 1000))
            conn.exec_driver_sql(f"SET LOCAL lock_timeout = {ms}")
        got = conn.execute(_upsert(c, {
            "fingerprint": c.fingerprint, "status": 0, "body": b"", "headers": "{}",
            "created_at": c.started})).first()
        if dialect.is_postgresql(conn):
            conn.exec_driver_sql("SET LOCAL lock_timeout TO DEFAULT")
        # None: a request with this key committed while we waited; its answer stands.
        row = None if got is not None else live_row(conn, c.table, c.key, c.scope, c.cutoff())
    except sa.exc.OperationalError as exc:
        conn.close()  # rolls back
        if getattr(exc.orig, "sqlstate", None) != "55P03":  # not lock_timeout: a real error
            raise
        current.set(None)  # not ours to store
        raise in_progress() from None
    except BaseException:
        conn.close()
        raise
    if got is None:
        conn.close()
        current.set(None)
        if row is None:  # cannot happen short of a clock jump; never run it twice
            raise in_progress()
        check_same_request(row, c.fingerprint)
        raise Replay(row)
    c.conn, c.tx, c.claimed = conn, tx, True
    return conn, True


def abandon() -> None:
    """The first unit of work failed: nothing was done, so release the claim (and SQLite's
    write lock) now; the answer is stored by `finish` in a transaction of its own."""
    c = current.get()
    if c is not None and c.conn is not None:
        _close(c)


def finish(status: int, body: bytes, headers: dict[str, str]) -> None:
    """Store the answer (with the effects, when a unit of work claimed the key) and commit;
    5xx and 429 are not answers worth keeping: roll back so a retry runs."""
    c = current.get()
    if c is None:
        return
    keep = status < 500 and status != 429
    values = {"fingerprint": c.fingerprint, "status": status, "body": body,
              "headers": json.dumps(headers), "created_at": c.started}
    if c.conn is not None:
        if keep:
            t = c.table
            c.conn.execute(t.update().where(t.c.key == c.key, t.c.scope == c.scope)
                           .values(**values))
            c.tx.commit()
        _close(c)
        return
    if keep:  # no unit of work ran (e.g. 422 before the use case): nothing else to commit
        with c.engine.begin() as conn:
            conn.execute(_upsert(c, values))  # a live row stored in parallel wins


def discard() -> None:
    """End of request: whatever is still open is rolled back."""
    c = current.get()
    if c is not None and c.conn is not None:
        _close(c)
    current.set(None)


def _close(c: Claim) -> None:
    conn, c.conn = c.conn, None
    if conn is None:
        return
    try:
        if conn.in_transaction():
            c.tx.rollback()
    finally:
        conn.close()
