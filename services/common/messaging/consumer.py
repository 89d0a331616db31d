"""Consumer runner: at-least-once delivery, exactly-once effect.

Each polled batch is applied in one database transaction together with the processed event
ids and the next offset of every partition; Kafka offsets are committed after that, and on
assignment the consumer seeks to the offsets stored in the database. Events that cannot be
processed go to the dead-letter topic with the reason, and the consumer moves on."""
from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from kafka import ConsumerRebalanceListener, TopicPartition
from kafka.structs import OffsetAndMetadata
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection, Engine

from services.common.db.engine import utcnow
from services.common.messaging.contracts import TOPIC_DEADLETTER
from services.common.messaging.events import Event, EventError, parse_event
from services.common.observability import correlation_id, worker_metrics

log = logging.getLogger(__name__)
Handler = Callable[[Connection, Event], None]
# Bounds on the blocking calls besides poll(): kafka-python's default is request_timeout_ms
# (30 s), which with the brokers down kept a runner deaf to a stop for that long, per call.
KAFKA_CALL_TIMEOUT_MS = 5_000
# Offsets in Kafka are advisory (the DB holds the truth), so closing never waits long for them.
CLOSE_TIMEOUT_MS = 2_000


class RejectEvent(Exception):
    """A handler's verdict that an event can never be applied (e.g. an unknown business)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


class RetryLater(Exception):
    """A transient failure: the batch is rolled back and polled again after a pause."""


@dataclass
class DeadLetter:
    reason: str
    detail: str
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None

    def to_bytes(self, consumer: str) -> bytes:
        return json.dumps({
            "consumer": consumer, "reason": self.reason, "detail": self.detail[:2000],
            "topic": self.topic, "partition": self.partition, "offset": self.offset,
            "original_base64": base64.b64encode(self.value or b"").decode(),
            "deadlettered_at": utcnow().isoformat(),
        }).encode()


@dataclass
class Consumer:
    """What one consumer group does: its name (also the group id), topics and handlers."""

    name: str
    topics: list[str]
    handlers: dict[str, Handler]
    # Optional fast path: apply many events at once (e.g. aggregates). Must be all-or-nothing;
    # on any error the runner falls back to one event at a time to isolate the poison.
    batch_handler: Callable[[Connection, list[Event]], None] | None = None
    # A BatchApplier subclass when a consumer needs more in the batch transaction (metrics
    # counts its dead letters and guards its offsets there).
    applier_class: Any = None
    service: str = ""
    stats: dict[str, int] = field(default_factory=lambda: {"applied": 0, "deadlettered": 0,
                                                           "duplicates": 0})


class BatchApplier:
    """The database half of consuming: dedupe, apply, record ids and offsets, atomically."""

    def __init__(self, engine: Engine, md: sa.MetaData, consumer: Consumer) -> None:
        self.engine, self.md, self.c = engine, md, consumer
        self.processed = md.tables["processed_events"]
        self.offsets = md.tables["consumer_offsets"]

    def stored_offsets(self, partitions: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        o = self.offsets
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(o.c.topic, o.c.partition, o.c.next_offset)
                                .where(o.c.consumer == self.c.name)).all()
        wanted = set(partitions)
        return {(r.topic, r.partition): r.next_offset for r in rows
                if (r.topic, r.partition) in wanted}

    def apply(self, records: list[Any],
              before_commit: Callable[[list[DeadLetter]], None]) -> list[DeadLetter]:
        """Apply Kafka records (in partition order); returns the dead letters sent."""
        dead: list[DeadLetter] = []
        events: list[tuple[Any, Event]] = []
        for rec in records:
            try:
                events.append((rec, parse_event(rec.value)))
            except EventError as exc:
                dead.append(_dead(rec, exc.reason, str(exc.detail)))
        with self.engine.begin() as conn:
            fresh = self._drop_seen(conn, events)
            wanted = [(r, e) for r, e in fresh if e.type in self.c.handlers]
            applied = self._apply_events(conn, wanted, dead)
            if applied:
                self._record_processed(conn, [e.id for e in applied])
            self._store_offsets(conn, records)
            # Dead letters are confirmed before the offsets commit: none is ever lost.
            before_commit(dead)
        m = worker_metrics()
        for e in applied:
            m.events_consumed.labels(self.c.service, self.c.name, e.type).inc()
        if applied:
            m.last_applied.labels(self.c.service, self.c.name).set(time.time())
        self.c.stats["applied"] += len(applied)
        self.c.stats["deadlettered"] += len(dead)
        return dead

    def _drop_seen(self, conn: Connection,
                   events: list[tuple[Any, Event]]) -> list[tuple[Any, Event]]:
        if not events:
            return []
        p = self.processed
        ids = [e.id for _, e in events]
        if conn.dialect.name == "postgresql":  # one array parameter, not 500 bound values
            match = p.c.event_id == sa.any_(sa.bindparam("ids", ids, type_=ARRAY(sa.String)))
        else:
            match = p.c.event_id.in_(ids)
        seen = set(conn.execute(sa.select(p.c.event_id).where(
            p.c.consumer == self.c.name, match)).scalars())
        out = []
        for rec, ev in events:
            if ev.id in seen:
                self.c.stats["duplicates"] += 1
                continue
            seen.add(ev.id)
            out.append((rec, ev))
        return out

    def _apply_events(self, conn: Connection, items: list[tuple[Any, Event]],
                      dead: list[DeadLetter]) -> list[Event]:
        if not items:
            return []
        if self.c.batch_handler is not None:
            try:
                with conn.begin_nested():
                    self.c.batch_handler(conn, [e for _, e in items])
                return [e for _, e in items]
            except RetryLater:
                raise
            except sa.exc.OperationalError:
                raise
            except Exception:  # noqa: BLE001 - isolate the poison event one by one below
                log.warning("batch apply failed; applying one event at a time")
        applied = []
        for rec, ev in items:
            token = correlation_id.set(ev.correlationid)
            try:
                with conn.begin_nested():
                    if self.c.batch_handler is not None:
                        self.c.batch_handler(conn, [ev])
                    else:
                        self.c.handlers[ev.type](conn, ev)
                applied.append(ev)
            except (RetryLater, sa.exc.OperationalError):
                raise
            except RejectEvent as exc:
                dead.append(_dead(rec, exc.reason, str(exc)))
            except Exception as exc:  # noqa: BLE001 - a bug must not stop the stream
                log.exception("handler failed", extra={"event_type": ev.type, "event_id": ev.id})
                dead.append(_dead(rec, "handler_error", f"{type(exc).__name__}: {exc}"))
            finally:
                correlation_id.reset(token)
        return applied

    def _record_processed(self, conn: Connection, ids: list[str]) -> None:
        p = self.processed
        if conn.dialect.name == "postgresql":
            # One INSERT ... SELECT unnest(array) instead of a row-by-row executemany.
            rows = sa.select(sa.func.unnest(sa.bindparam("ids", ids, type_=ARRAY(sa.String))),
                             sa.literal(self.c.name), sa.literal(utcnow(), p.c.processed_at.type))
            conn.execute(p.insert().from_select(["event_id", "consumer", "processed_at"], rows))
            return
        conn.execute(p.insert(), [
            {"event_id": i, "consumer": self.c.name, "processed_at": utcnow()} for i in ids])

    def _store_offsets(self, conn: Connection, records: list[Any]) -> None:
        o = self.offsets
        for (topic, part), off in _last_offsets(records).items():
            done = conn.execute(o.update().where(
                o.c.consumer == self.c.name, o.c.topic == topic, o.c.partition == part
            ).values(next_offset=off + 1)).rowcount
            if not done:
                conn.execute(o.insert().values(consumer=self.c.name, topic=topic,
                                               partition=part, next_offset=off + 1))


def _dead(rec: Any, reason: str, detail: str) -> DeadLetter:
    return DeadLetter(reason=reason, detail=detail, topic=rec.topic, partition=rec.partition,
                      offset=rec.offset, key=rec.key, value=rec.value)


class _SeekToStored(ConsumerRebalanceListener):
    def __init__(self, runner: ConsumerRunner) -> None:
        self.runner = runner

    def on_partitions_revoked(self, revoked: Any) -> None:
        pass

    def on_partitions_assigned(self, assigned: Any) -> None:
        # The database, not Kafka's committed offset, is the truth about what was applied.
        stored = self.runner.applier.stored_offsets([(tp.topic, tp.partition) for tp in assigned])
        for tp in assigned:
            if (tp.topic, tp.partition) in stored:
                self.runner.kafka.seek(tp, stored[(tp.topic, tp.partition)])


class ConsumerRunner:
    """Polls one consumer group and applies batches until told to stop."""

    def __init__(self, engine: Engine, md: sa.MetaData, consumer: Consumer,
                 kafka_factory: Callable[[], Any], producer_factory: Callable[[], Any],
                 topic_prefix: str = "") -> None:
        self.prefix = topic_prefix
        self.applier = (consumer.applier_class or BatchApplier)(engine, md, consumer)
        self.c = consumer
        self._kafka_factory, self._producer_factory = kafka_factory, producer_factory
        self.kafka: Any = None
        self._producer: Any = None
        self._last_lag = 0.0

    def start(self) -> None:
        self.kafka = self._kafka_factory()
        self.kafka.subscribe([self.prefix + t for t in self.c.topics], listener=_SeekToStored(self))

    def poll_once(self, timeout_ms: int = 500) -> int:
        """One poll -> one transaction -> one offset commit. Returns records handled."""
        if self.kafka is None:
            self.start()
        batches = self.kafka.poll(timeout_ms=timeout_ms)
        records = [r for tp in sorted(batches, key=lambda t: (t.topic, t.partition))
                   for r in batches[tp]]
        if records:
            try:
                self.applier.apply(records, self._send_dead_letters)
            except Exception:
                # Nothing of this batch was committed: read it again from the last good point.
                self._rewind({(r.topic, r.partition) for r in records})
                raise
            self.kafka.commit({TopicPartition(t, p): OffsetAndMetadata(o + 1, "", -1)
                               for (t, p), o in _last_offsets(records).items()},
                              timeout_ms=KAFKA_CALL_TIMEOUT_MS)
        self._report_lag()
        worker_metrics().kafka_up.labels(self.c.service).set(1)
        return len(records)

    def _rewind(self, partitions: set[tuple[str, int]]) -> None:
        stored = self.applier.stored_offsets(list(partitions))
        for t, p in partitions:
            tp = TopicPartition(t, p)
            if (t, p) in stored:
                self.kafka.seek(tp, stored[(t, p)])
            else:
                committed = self.kafka.committed(tp, timeout_ms=KAFKA_CALL_TIMEOUT_MS)
                if committed is not None:
                    self.kafka.seek(tp, committed)
                else:
                    self.kafka.seek_to_beginning(tp)

    def _send_dead_letters(self, dead: list[DeadLetter]) -> None:
        if not dead:
            return
        if self._producer is None:
            self._producer = self._producer_factory()
        topic = self.prefix + TOPIC_DEADLETTER
        futures = [self._producer.send(topic, key=d.key, value=d.to_bytes(self.c.name))
                   for d in dead]
        self._producer.flush(timeout=30)
        for fut in futures:
            fut.get(timeout=30)  # raises: the batch rolls back and is retried
        m = worker_metrics()
        for d in dead:
            m.events_deadlettered.labels(self.c.service, self.c.name, d.reason).inc()
            log.warning("event dead-lettered", extra={
                "reason": d.reason, "topic": d.topic, "partition": d.partition,
                "offset": d.offset})

    def _report_lag(self) -> None:
        if time.monotonic() - self._last_lag < 5:
            return
        self._last_lag = time.monotonic()
        assigned = list(self.kafka.assignment())
        if not assigned:
            return
        ends = self.kafka.end_offsets(assigned, timeout_ms=KAFKA_CALL_TIMEOUT_MS)
        for tp in assigned:
            lag = max(0, ends.get(tp, 0) - self.kafka.position(
                tp, timeout_ms=KAFKA_CALL_TIMEOUT_MS))
            worker_metrics().consumer_lag.labels(self.c.service, self.c.name, tp.topic,
                                                 str(tp.partition)).set(lag)

    def run_forever(self, should_stop: Callable[[], bool]) -> None:
        backoff = 0.0
        while not should_stop():
            try:
                self.poll_once()
                backoff = 0.0
            except Exception as exc:  # noqa: BLE001 - transient: DB or Kafka down; retry
                worker_metrics().kafka_up.labels(self.c.service).set(0)
                backoff = min(5.0, max(0.2, backoff * 2))
                log.warning("consumer batch failed; retrying",
                            extra={"consumer": self.c.name, "error": type(exc).__name__})
                pause(backoff, should_stop)
        self.close()

    def close(self) -> None:
        if self.kafka is not None:
            self.kafka.close(autocommit=False, timeout_ms=CLOSE_TIMEOUT_MS)
            self.kafka = None
        if self._producer is not None:
            self._producer.close(timeout=CLOSE_TIMEOUT_MS / 1000)
            self._producer = None


def pause(seconds: float, should_stop: Callable[[], bool], step: float = 0.1) -> None:
    """Sleep up to `seconds`, returning early once `should_stop()` (a backoff must not delay
    a SIGTERM)."""
    deadline = time.monotonic() + seconds
    while not should_stop() and (left := deadline - time.monotonic()) > 0:
        time.sleep(min(step, left))


def _last_offsets(records: list[Any]) -> dict[tuple[str, int], int]:
    last: dict[tuple[str, int], int] = {}
    for r in records:
        last[(r.topic, r.partition)] = max(last.get((r.topic, r.partition), -1), r.offset)
    return last
