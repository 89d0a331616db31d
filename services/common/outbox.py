"""Transactional outbox: events are rows written in the state change's transaction; the relay
in the worker process publishes them to Kafka in id order and deletes each confirmed row."""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from services.common.db import utcnow
from services.common.events import Event
from services.common.observability import worker_metrics

log = logging.getLogger(__name__)
RELAY_LOCK_ID = 0x0BB1  # PostgreSQL advisory lock: one active relay per service database


def outbox_table(md: sa.MetaData) -> sa.Table:
    return md.tables["outbox"]


def add_events(conn: Connection, md: sa.MetaData, events: Iterable[Event],
               topic_prefix: str = "") -> int:
    """Stage events in the caller's transaction (committed or rolled back with it)."""
    rows = [
        {"topic": topic_prefix + e.topic, "key": e.key, "event_id": e.id, "event_type": e.type,
         "payload": e.to_bytes(), "created_at": utcnow()}
        for e in events
    ]
    if rows:
        conn.execute(outbox_table(md).insert(), rows)
    return len(rows)


class Publisher:
    """What the relay needs from Kafka; tests may subclass it with an in-memory fake."""

    def publish(self, batch: list[tuple[str, str, bytes]]) -> list[Exception | None]:
        """Send (topic, key, value) in order; return per-message error or None when acked."""
        raise NotImplementedError

    def close(self, timeout: float = 10.0) -> None:
        """Flush and close within a bounded time."""


class KafkaPublisher(Publisher):
    def __init__(self, producer_factory: Callable[[], object], timeout_s: float = 30.0) -> None:
        self._factory = producer_factory
        self._producer: object | None = None
        self._timeout_s = timeout_s

    def publish(self, batch: list[tuple[str, str, bytes]]) -> list[Exception | None]:
        if self._producer is None:
            try:
                self._producer = self._factory()
            except Exception as exc:  # noqa: BLE001 - broker unreachable: nothing was sent
                return [exc] * len(batch)
        producer = self._producer
        futures = [producer.send(t, key=k.encode(), value=v) for t, k, v in batch]  # type: ignore[attr-defined]
        producer.flush(timeout=self._timeout_s)  # type: ignore[attr-defined]
        results: list[Exception | None] = []
        for fut in futures:  # flush() returning proves nothing: each future says if it landed
            try:
                fut.get(timeout=self._timeout_s)
                results.append(None)
            except Exception as exc:  # noqa: BLE001 - any delivery error is reported per row
                results.append(exc)
        if any(results):
            # A failed idempotent producer may be stuck in an error state: start afresh.
            self.close(timeout=1.0)
        return results

    def close(self, timeout: float = 10.0) -> None:
        if self._producer is not None:
            self._producer.close(timeout=timeout)  # type: ignore[attr-defined]
            self._producer = None


@dataclass
class RelayResult:
    sent: int = 0
    failed: int = 0
    parked: int = 0


class OutboxRelay:
    """Publishes pending outbox rows in id order; one active relay per service."""

    def __init__(self, engine: Engine, md: sa.MetaData, publisher: Publisher, service: str,
                 batch_size: int = 500, max_attempts: int = 10) -> None:
        self.engine, self.table, self.publisher = engine, outbox_table(md), publisher
        self.service, self.batch_size, self.max_attempts = service, batch_size, max_attempts
        self._lock_conn: Connection | None = None
        self._backlog_at = 0.0

    def acquire_leadership(self) -> bool:
        """PostgreSQL: hold an advisory lock on a dedicated connection. SQLite: one process."""
        if self.engine.dialect.name != "postgresql":
            return True
        if self._lock_conn is None:
            self._lock_conn = self.engine.connect()
        got = self._lock_conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"),
                                      {"k": RELAY_LOCK_ID}).scalar()
        self._lock_conn.commit()
        return bool(got)

    def release(self) -> None:
        if self._lock_conn is not None:
            try:
                self._lock_conn.close()  # closing the session releases the advisory lock
            except sa.exc.DBAPIError:
                pass  # the server already ended the session (and with it the lock)
            finally:
                self._lock_conn = None

    def run_once(self) -> RelayResult:
        """Publish one batch; stop at the first failure so no key's events are reordered."""
        t = self.table
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(t.c.id, t.c.topic, t.c.key, t.c.payload, t.c.attempts)
                .where(t.c.state == "pending").order_by(t.c.id).limit(self.batch_size)
            ).all()
            conn.rollback()
        result = RelayResult()
        if not rows:
            worker_metrics().outbox_backlog.labels(self.service).set(0)
            return result
        outcomes = self.publisher.publish([(r.topic, r.key, r.payload) for r in rows])
        sent_ids: list[int] = []
        first_failure: tuple[int, int, Exception] | None = None
        for row, err in zip(rows, outcomes, strict=True):
            if err is None and first_failure is None:
                sent_ids.append(row.id)
            elif err is not None and first_failure is None:
                first_failure = (row.id, row.attempts, err)
        with self.engine.begin() as conn:
            if sent_ids:
                conn.execute(t.delete().where(t.c.id.in_(sent_ids)))
            if first_failure is not None:
                row_id, attempts, err = first_failure
                state = "parked" if attempts + 1 >= self.max_attempts else "pending"
                conn.execute(t.update().where(t.c.id == row_id).values(
                    attempts=attempts + 1, last_error=str(err)[:2000], state=state))
                result.parked = int(state == "parked")
                result.failed = 1
            backlog = None
            if time.monotonic() - self._backlog_at > 5:  # a COUNT per batch would cost ~20%
                self._backlog_at = time.monotonic()
                backlog = conn.execute(sa.select(sa.func.count()).select_from(t)
                                       .where(t.c.state == "pending")).scalar_one()
        result.sent = len(sent_ids)
        m = worker_metrics()
        m.outbox_published.labels(self.service).inc(result.sent)
        if backlog is not None:
            m.outbox_backlog.labels(self.service).set(backlog)
        if result.failed:
            m.outbox_failures.labels(self.service).inc()
            log.warning("outbox publish failed", extra={"error": str(first_failure and first_failure[2])})
        if result.parked:
            m.outbox_parked.labels(self.service).inc()
            log.error("outbox row parked after %s attempts", self.max_attempts)
        return result

    def run_forever(self, should_stop: Callable[[], bool], idle_sleep: float = 0.05,
                    max_backoff: float = 5.0) -> None:
        backoff = 0.0
        while not should_stop():
            try:
                # Inside the try: after a database restart the lock connection is dead, and
                # an error here used to end the relay thread while the worker lived on.
                if not self.acquire_leadership():
                    time.sleep(1.0)
                    continue
                res = self.run_once()
            except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
                # Database down: wait and keep the rows; reconnect the lock next time.
                log.warning("outbox relay: database unavailable: %s", type(exc).__name__)
                res = RelayResult(failed=1)
                self.release()
            if res.failed:
                backoff = min(max_backoff, max(0.2, backoff * 2))
                time.sleep(backoff)
            else:
                backoff = 0.0
                if res.sent == 0:
                    time.sleep(idle_sleep)
        self.release()
