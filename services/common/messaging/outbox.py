"""Transactional outbox: events are rows written in the state change's transaction; the relay
in the worker process publishes them to Kafka in id order and deletes each confirmed row."""
from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from services.common.db.dialect import any_of, is_postgresql
from services.common.db.engine import bulk_insert, utcnow
from services.common.messaging.consumer import pause
from services.common.messaging.events import Event
from services.common.observability import worker_metrics

log = logging.getLogger(__name__)
RELAY_LOCK_ID = 0x0BB1  # PostgreSQL advisory lock: one active relay per service database
# CloudEvents Kafka protocol binding, structured mode: every outbox payload is a whole
# CloudEvents JSON document, and this header is how a generic reader (the CloudEvents SDKs,
# Kafka Connect, Knative) tells structured from binary mode without parsing the value.
STRUCTURED_CONTENT_TYPE = b"application/cloudevents+json; charset=UTF-8"
CE_HEADERS = [("content-type", STRUCTURED_CONTENT_TYPE)]


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


def add_rows(conn: Connection, md: sa.MetaData, rows: Iterable[dict[str, Any]]) -> None:
    """Stage pre-built outbox rows (the columns add_events fills) in the caller's transaction
    with one bulk insert: for batch paths that encode thousands of payloads themselves. `rows`
    may be a generator."""
    bulk_insert(conn, outbox_table(md), rows)


class Publisher:
    """What the relay needs from Kafka; tests may subclass it with an in-memory fake."""

    def publish(self, batch: list[tuple[str, str, bytes]]) -> list[Exception | None]:
        """Send (topic, key, value) in order; return per-message error or None when acked."""
        raise NotImplementedError

    def send(self, batch: list[tuple[str, str, bytes]]) -> Callable[[], list[Exception | None]]:
        """Start sending; the returned call waits for the acks. Lets the relay read the next
        batch while this one is in flight. The default is synchronous."""
        results = self.publish(batch)
        return lambda: results

    def close(self, timeout: float = 10.0) -> None:
        """Flush and close within a bounded time."""


class KafkaPublisher(Publisher):
    def __init__(self, producer_factory: Callable[[], object], timeout_s: float = 30.0) -> None:
        self._factory = producer_factory
        self._producer: object | None = None
        self._timeout_s = timeout_s
        self._factory_failed_at = float("-inf")

    def publish(self, batch: list[tuple[str, str, bytes]]) -> list[Exception | None]:
        return self.send(batch)()

    def send(self, batch: list[tuple[str, str, bytes]]) -> Callable[[], list[Exception | None]]:
        if self._producer is None:
            if time.monotonic() - self._factory_failed_at < 1.0:
                # The relay reads ahead: do not wait out a connect timeout once per batch.
                return _failed(ConnectionError("producer unavailable (connect failed just now)"),
                               len(batch))
            try:
                self._producer = self._factory()
            except Exception as exc:  # noqa: BLE001 - broker unreachable: nothing was sent
                self._factory_failed_at = time.monotonic()
                return _failed(exc, len(batch))
        producer: Any = self._producer
        try:
            futures = [producer.send(t, key=k.encode(), value=v, headers=CE_HEADERS)
                       for t, k, v in batch]
        except Exception as exc:  # noqa: BLE001 - e.g. metadata timeout: nothing is confirmed
            self.close(timeout=1.0)
            return _failed(exc, len(batch))

        def wait() -> list[Exception | None]:
            # No flush(): it would also wait for the batches sent after this one, which is
            # exactly the overlap the relay wants. linger_ms bounds how long a batch waits.
            deadline = time.monotonic() + self._timeout_s
            results: list[Exception | None] = []
            for fut in futures:  # each future says if its record landed; flush() proves nothing
                try:
                    fut.get(timeout=max(0.0, deadline - time.monotonic()))
                    results.append(None)
                except Exception as exc:  # noqa: BLE001 - any delivery error is reported per row
                    results.append(exc)
            if any(results) and self._producer is producer:
                # A failed idempotent producer may be stuck in an error state: start afresh.
                self.close(timeout=1.0)
            return results

        return wait

    def close(self, timeout: float = 10.0) -> None:
        if self._producer is not None:
            self._producer.close(timeout=timeout)  # type: ignore[attr-defined]
            self._producer = None


def _failed(exc: Exception, n: int) -> Callable[[], list[Exception | None]]:
    """A batch that failed before anything was sent (`exc` is unbound after its except)."""
    results: list[Exception | None] = [exc] * n
    return lambda: results


@dataclass
class RelayResult:
    sent: int = 0
    failed: int = 0
    parked: int = 0


@dataclass
class _InFlight:
    rows: list[Any]
    wait: Callable[[], list[Exception | None]]


class OutboxRelay:
    """Publishes pending outbox rows in id order; one active relay per service.

    Pipelined: while one batch's acks are outstanding the next batch is read and sent
    (`depth` batches in flight at most). The guarantees do not change: a row is deleted only
    after its own ack; the idempotent producer keeps per-partition (so per-key) order across
    the in-flight batches; at the first failure nothing after it is deleted, so every later
    row is sent again (consumers dedupe by event id) and no key's events are skipped."""

    def __init__(self, engine: Engine, md: sa.MetaData, publisher: Publisher, service: str,
                 batch_size: int = 500, max_attempts: int = 10, depth: int = 3,
                 max_batches: int = 40) -> None:
        self.engine, self.table, self.publisher = engine, outbox_table(md), publisher
        self.service, self.batch_size, self.max_attempts = service, batch_size, max_attempts
        # max_batches bounds one run_once, so leadership and stop are checked between runs.
        self.depth, self.max_batches = max(1, depth), max(1, max_batches)
        self._lock_conn: Connection | None = None
        self._backlog_at = 0.0

    def acquire_leadership(self) -> bool:
        """PostgreSQL: hold an advisory lock on a dedicated connection. SQLite: one process."""
        if not is_postgresql(self.engine):
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
        """Publish up to max_batches batches; stop at the first failure."""
        result = RelayResult()
        inflight: deque[_InFlight] = deque()
        after, batches, more = 0, 0, True
        with self.engine.connect() as conn:
            try:
                while more or inflight:
                    if more:
                        rows = self._next_rows(conn, after)
                        batches += 1
                        # A short batch means the backlog is read: settle what is in flight.
                        more = len(rows) == self.batch_size and batches < self.max_batches
                        if rows:
                            after = rows[-1].id
                            inflight.append(_InFlight(rows, self.publisher.send(
                                [(r.topic, r.key, r.payload) for r in rows])))
                    if inflight and (len(inflight) >= self.depth or not more):
                        self._settle(conn, inflight.popleft(), result)
                        if result.failed:
                            break
            finally:
                for rest in inflight:  # after a failure or an error: wait, delete nothing
                    rest.wait()
            self._report_backlog(conn, result)
        return result

    def _next_rows(self, conn: Connection, after: int) -> list[Any]:
        t = self.table
        rows = conn.execute(
            sa.select(t.c.id, t.c.topic, t.c.key, t.c.payload, t.c.attempts)
            .where(t.c.state == "pending", t.c.id > after).order_by(t.c.id).limit(self.batch_size)
        ).all()
        conn.rollback()  # a short read: never hold a snapshot (or SQLite's lock) across sends
        return list(rows)

    def _settle(self, conn: Connection, batch: _InFlight, result: RelayResult) -> None:
        """Wait for one batch's acks; delete its acked prefix; record the first failure."""
        t = self.table
        outcomes = batch.wait()
        sent_ids: list[int] = []
        first_failure: tuple[Any, Exception] | None = None
        for row, err in zip(batch.rows, outcomes, strict=True):
            if err is not None:
                first_failure = (row, err)
                break
            sent_ids.append(row.id)
        with conn.begin():
            if sent_ids:
                conn.execute(self._delete_ids(conn), {"ids": sent_ids})
            if first_failure is not None:
                row, err = first_failure
                state = "parked" if row.attempts + 1 >= self.max_attempts else "pending"
                conn.execute(t.update().where(t.c.id == row.id).values(
                    attempts=row.attempts + 1, last_error=str(err)[:2000], state=state))
        result.sent += len(sent_ids)
        m = worker_metrics()
        m.outbox_published.labels(self.service).inc(len(sent_ids))
        if first_failure is not None:
            result.failed = 1
            result.parked = int(state == "parked")
            m.outbox_failures.labels(self.service).inc()
            log.warning("outbox publish failed", extra={"error": str(first_failure[1])})
            if result.parked:
                m.outbox_parked.labels(self.service).inc()
                log.error("outbox row parked after %s attempts", self.max_attempts)

    def _delete_ids(self, conn: Connection) -> Any:
        t = self.table
        return t.delete().where(any_of(conn, t.c.id, name="ids"))

    def _report_backlog(self, conn: Connection, result: RelayResult) -> None:
        if result.sent == 0 and result.failed == 0:
            worker_metrics().outbox_backlog.labels(self.service).set(0)
            return
        if time.monotonic() - self._backlog_at <= 5:  # a COUNT per batch would cost ~20%
            return
        self._backlog_at = time.monotonic()
        t = self.table
        backlog = conn.execute(sa.select(sa.func.count()).select_from(t)
                               .where(t.c.state == "pending")).scalar_one()
        conn.rollback()
        worker_metrics().outbox_backlog.labels(self.service).set(backlog)

    def run_forever(self, should_stop: Callable[[], bool], idle_sleep: float = 0.05,
                    max_backoff: float = 5.0) -> None:
        backoff = 0.0
        while not should_stop():
            try:
                # Inside the try: after a database restart the lock connection is dead, and
                # an error here used to end the relay thread while the worker lived on.
                if not self.acquire_leadership():
                    pause(1.0, should_stop)
                    continue
                res = self.run_once()
            except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
                # Database down: wait and keep the rows; reconnect the lock next time.
                log.warning("outbox relay: database unavailable: %s", type(exc).__name__)
                res = RelayResult(failed=1)
                self.release()
            if res.failed:
                backoff = min(max_backoff, max(0.2, backoff * 2))
                pause(backoff, should_stop)
            else:
                backoff = 0.0
                if res.sent == 0:
                    time.sleep(idle_sleep)
        self.release()
        self.publisher.close(timeout=2.0)  # whatever is unacked stays pending: sent again later
