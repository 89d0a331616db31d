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
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from kafka import ConsumerRebalanceListener, TopicPartition
from kafka.structs import OffsetAndMetadata
from sqlalchemy.engine import Connection, Engine

from services.common.db.dialect import any_of, insert_ignore, is_postgresql, upsert
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
_JSON = json.JSONEncoder(separators=(",", ":"))


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
    """What one consumer group does -- the one extension point of consuming.

    `name` is also the group id; `types` are the event types it applies (others on its topics
    are recorded as processed and skipped); `apply(conn, events)` writes a batch of them, in
    order, inside the runner's transaction, all or nothing. It may fold the whole batch at once
    (metrics); a per-event consumer loops (`Consumer.per_event`). When a batch fails the runner
    applies its events one at a time to dead-letter only the poison ones, so `apply` must give
    the same result for a batch as for its events one by one. `count_dead`, if set, records the
    batch's dead letters in the same transaction (metrics counts them as a series)."""

    name: str
    topics: list[str]
    types: frozenset[str]
    apply: Callable[[Connection, list[Event]], None]
    count_dead: Callable[[Connection, list[DeadLetter]], None] | None = None
    service: str = ""
    stats: dict[str, int] = field(default_factory=lambda: {"applied": 0, "deadlettered": 0,
                                                           "duplicates": 0})

    @classmethod
    def per_event(cls, name: str, topics: list[str], handlers: Mapping[str, Handler],
                  service: str = "") -> Consumer:
        """A consumer whose `apply` calls one handler per event, under the event's
        correlation id (events a handler publishes carry it on)."""
        table = dict(handlers)

        def apply(conn: Connection, events: list[Event]) -> None:
            for ev in events:
                token = correlation_id.set(ev.correlationid)
                try:
                    table[ev.type](conn, ev)
                finally:
                    correlation_id.reset(token)

        return cls(name=name, topics=topics, types=frozenset(table), apply=apply,
                   service=service)


class _BatchFailed(Exception):
    """`apply` failed on a whole batch: the runner retries it one event at a time."""


class OffsetsMoved(RetryLater):
    """The batch does not start at the offsets stored in the database (another replica applied
    it after a rebalance, or a metrics rebuild moved them): re-seek, apply nothing."""


class BatchApplier:
    """The database half of consuming: dedupe, apply, record ids and offsets, atomically."""

    def __init__(self, engine: Engine, md: sa.MetaData, consumer: Consumer) -> None:
        self.engine, self.md, self.c = engine, md, consumer
        self.processed = md.tables["processed_events"]
        self.offsets = md.tables["consumer_offsets"]
        self._conn: Connection | None = None

    @contextmanager
    def _begin(self) -> Iterator[Connection]:
        """A transaction on the connection this applier keeps between batches (a checkout
        per batch cost a pool pre-ping round trip each time); dropped after any error."""
        if self._conn is None:
            self._conn = self.engine.connect()
        try:
            with self._conn.begin():
                yield self._conn
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.close()

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
        """Apply Kafka records (in partition order); returns the dead letters sent.

        First the whole batch in one transaction; if `apply` fails on it (not a transient
        error), that transaction rolls back and a second one applies the events one at a time,
        each in a savepoint, so only the poison ones are dead-lettered."""
        unparsable: list[DeadLetter] = []
        events: list[tuple[Any, Event]] = []
        for rec in records:
            try:
                events.append((rec, parse_event(rec.value)))
            except EventError as exc:
                unparsable.append(_dead(rec, exc.reason, str(exc.detail)))
        wanted = [(r, e) for r, e in events if e.type in self.c.types]
        try:
            applied, dead, seen = self._transaction(records, wanted, unparsable, before_commit,
                                                    whole=True)
        except (RetryLater, sa.exc.OperationalError):
            raise
        except _BatchFailed:
            log.warning("batch apply failed; applying one event at a time")
            applied, dead, seen = self._transaction(records, wanted, unparsable, before_commit,
                                                    whole=False)
        m = worker_metrics()
        for type_, n in Counter(e.type for e in applied).items():
            m.events_consumed.labels(self.c.service, self.c.name, type_).inc(n)
        if applied:
            m.last_applied.labels(self.c.service, self.c.name).set(time.time())
        self.c.stats["applied"] += len(applied)
        self.c.stats["deadlettered"] += len(dead)
        self.c.stats["duplicates"] += seen
        return dead

    def _transaction(self, records: list[Any], wanted: list[tuple[Any, Event]],
                     unparsable: list[DeadLetter],
                     before_commit: Callable[[list[DeadLetter]], None],
                     whole: bool) -> tuple[list[Event], list[DeadLetter], int]:
        dead = list(unparsable)
        with self._begin() as conn:
            self._check_offsets(conn, records)
            if whole:
                # One statement records the ids and says which were new.
                fresh = self._claim(conn, wanted)
                try:
                    self.c.apply(conn, [e for _, e in fresh])
                except (RetryLater, sa.exc.OperationalError):
                    raise
                except Exception as exc:  # noqa: BLE001 - isolated event by event next
                    raise _BatchFailed from exc
                applied = [e for _, e in fresh]
            else:
                fresh = self._drop_seen(conn, wanted)
                applied = self._apply_one_by_one(conn, fresh, dead)
                if applied:
                    self._record_processed(conn, [e.id for e in applied])
            if dead and self.c.count_dead is not None:
                self.c.count_dead(conn, dead)
            self._store_offsets(conn, records)
            # Dead letters are confirmed before the offsets commit: none is ever lost.
            before_commit(dead)
        return applied, dead, len(wanted) - len(fresh)

    def _claim(self, conn: Connection,
               events: list[tuple[Any, Event]]) -> list[tuple[Any, Event]]:
        """Insert the events' ids into processed_events (ON CONFLICT DO NOTHING RETURNING):
        the events whose id was not there yet, first copy only."""
        if not events:
            return []
        p = self.processed
        ids = list(dict.fromkeys(e.id for _, e in events))
        stmt = insert_ignore(conn, p)
        if is_postgresql(conn):
            stmt = stmt.from_select(["event_id", "consumer", "processed_at"], self._id_rows(ids))
            new = set(conn.execute(stmt.returning(p.c.event_id)).scalars())
        else:
            new = set(conn.execute(stmt.returning(p.c.event_id), [
                {"event_id": i, "consumer": self.c.name, "processed_at": utcnow()}
                for i in ids]).scalars())
        out = []
        for rec, ev in events:
            if ev.id in new:
                new.discard(ev.id)
                out.append((rec, ev))
        return out

    def _check_offsets(self, conn: Connection, records: list[Any]) -> None:
        """The database is the truth of what was applied: a batch must start exactly at the
        stored next offset of each of its partitions (topics keep every event, so there are
        no gaps). FOR UPDATE (PostgreSQL) on this batch's partitions only: a second replica
        holding the same partitions for a moment, or a rebuild swapping the rows, waits."""
        o = self.offsets
        first: dict[tuple[str, int], int] = {}
        for r in records:
            first.setdefault((r.topic, r.partition), r.offset)
        rows = conn.execute(
            sa.select(o.c.topic, o.c.partition, o.c.next_offset)
            .where(o.c.consumer == self.c.name,
                   sa.tuple_(o.c.topic, o.c.partition).in_(sorted(first)))
            .order_by(o.c.topic, o.c.partition)
            .with_for_update()
        ).all()
        for r in rows:
            if first[(r.topic, r.partition)] != r.next_offset:
                raise OffsetsMoved(
                    f"{r.topic}:{r.partition}: batch starts at {first[(r.topic, r.partition)]}, "
                    f"stored {r.next_offset}")

    def _drop_seen(self, conn: Connection,
                   events: list[tuple[Any, Event]]) -> list[tuple[Any, Event]]:
        if not events:
            return []
        p = self.processed
        ids = [e.id for _, e in events]
        seen = set(conn.execute(sa.select(p.c.event_id).where(
            p.c.consumer == self.c.name, any_of(conn, p.c.event_id, ids))).scalars())
        out = []
        for rec, ev in events:
            if ev.id in seen:
                continue
            seen.add(ev.id)
            out.append((rec, ev))
        return out

    def _apply_one_by_one(self, conn: Connection, items: list[tuple[Any, Event]],
                          dead: list[DeadLetter]) -> list[Event]:
        applied = []
        for rec, ev in items:
            token = correlation_id.set(ev.correlationid)
            try:
                with conn.begin_nested():
                    self.c.apply(conn, [ev])
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
        if is_postgresql(conn):
            conn.execute(p.insert().from_select(["event_id", "consumer", "processed_at"],
                                                self._id_rows(ids)))
            return
        conn.execute(p.insert(), [
            {"event_id": i, "consumer": self.c.name, "processed_at": utcnow()} for i in ids])

    def _id_rows(self, ids: list[str]) -> Any:
        """PostgreSQL: (event_id, consumer, processed_at) rows from one JSON parameter; an
        executemany costs a statement per row, an array a Python escape per element."""
        return sa.select(
            sa.func.json_array_elements_text(sa.cast(sa.bindparam("ids", _JSON.encode(ids)),
                                                     sa.JSON)),
            sa.literal(self.c.name), sa.literal(utcnow(), self.processed.c.processed_at.type))

    def _store_offsets(self, conn: Connection, records: list[Any]) -> None:
        o = self.offsets
        conn.execute(
            upsert(conn, o, index_elements=["consumer", "topic", "partition"],
                   set_=["next_offset"]),
            [{"consumer": self.c.name, "topic": t, "partition": p, "next_offset": off + 1}
             for (t, p), off in sorted(_last_offsets(records).items())])


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
        self.applier = BatchApplier(engine, md, consumer)
        self.c = consumer
        self._kafka_factory, self._producer_factory = kafka_factory, producer_factory
        self.kafka: Any = None
        self._producer: Any = None
        # Partitions read past what the database holds (a batch failed): sought back to the
        # stored offsets before the next poll, retried until that succeeds, so a rewind that
        # failed with the database down cannot leave records behind unapplied.
        self._unrewound: set[tuple[str, int]] = set()

    def start(self) -> None:
        self.kafka = self._kafka_factory()
        self.kafka.subscribe([self.prefix + t for t in self.c.topics], listener=_SeekToStored(self))

    def poll_once(self, timeout_ms: int = 500) -> int:
        """One poll -> one transaction -> one offset commit. Returns records handled."""
        if self.kafka is None:
            self.start()
        if self._unrewound:
            # Only partitions still ours: a revoked one is sought by its new owner on assignment.
            owned = {(tp.topic, tp.partition) for tp in self.kafka.assignment()}
            self._rewind(self._unrewound & owned)
            self._unrewound = set()
        batches = self.kafka.poll(timeout_ms=timeout_ms)
        records = [r for tp in sorted(batches, key=lambda t: (t.topic, t.partition))
                   for r in batches[tp]]
        if records:
            try:
                self.applier.apply(records, self._send_dead_letters)
            except Exception:
                # Nothing of this batch was committed: read it again from the last good point.
                self._unrewound |= {(r.topic, r.partition) for r in records}
                self._rewind(self._unrewound)
                self._unrewound = set()
                raise
            self.kafka.commit({TopicPartition(t, p): OffsetAndMetadata(o + 1, "", -1)
                               for (t, p), o in _last_offsets(records).items()},
                              timeout_ms=KAFKA_CALL_TIMEOUT_MS)
            # Records and a commit prove the broker answers; an empty poll proves nothing
            # (kafka-python returns {} while it cannot reach any broker).
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
        self.applier.close()
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


def consumer_lag(conn: Connection, md: sa.MetaData, consumer: Consumer, client: Any,
                 prefix: str = "") -> dict[tuple[str, int], int]:
    """Lag of a consumer group on every partition of its topics: end offset minus the next
    offset stored in its database (the truth of what was applied; Kafka's committed offset
    is advisory). Keys are (topic without the prefix, partition)."""
    tps = [TopicPartition(prefix + t, p) for t in consumer.topics
           for p in sorted(client.partitions_for_topic(prefix + t) or ())]
    if not tps:
        return {}
    ends = client.end_offsets(tps, timeout_ms=KAFKA_CALL_TIMEOUT_MS)
    starts = client.beginning_offsets(tps, timeout_ms=KAFKA_CALL_TIMEOUT_MS)
    o = md.tables["consumer_offsets"]
    stored = {(r.topic, r.partition): r.next_offset for r in conn.execute(
        sa.select(o.c.topic, o.c.partition, o.c.next_offset).where(o.c.consumer == consumer.name))}
    return {(tp.topic[len(prefix):], tp.partition):
            max(0, ends[tp] - stored.get((tp.topic, tp.partition), starts[tp])) for tp in tps}
