"""Rebuild the aggregates from the first event of every domain topic, then swap them in
(`bbi metrics rebuild`: an operator's use case, run from the CLI, not over HTTP).

The live rules (the same BatchApplier and fold) fill the *_rebuild tables from offset
0 up to the end offsets captured at the start; one transaction then replaces the live rows,
hands the rebuild's processed ids to the live consumer and sets its stored offsets to those
end offsets, so the live consumer continues exactly after what the rebuild counted."""

from __future__ import annotations

import time
import uuid
from typing import Any

import sqlalchemy as sa
from kafka import TopicPartition
from sqlalchemy.engine import Connection, Engine

from services.common.config import Settings
from services.common.messaging.consumer import BatchApplier
from services.common.messaging.kafka_clients import make_consumer
from services.metrics import store
from services.metrics.consumer import CONSUMER_NAME, TOPICS, rebuild_consumer
from services.metrics.domain import KEPT_ON_REBUILD
from services.metrics.store import LIVE, REBUILD, metadata


def rebuild(settings: Settings, engine: Engine, timeout_s: float = 3600.0) -> dict[str, Any]:
    """Consume history into staging, swap; returns what was done. Live tables untouched on error."""
    name = f"metrics-rebuild-{uuid.uuid4().hex[:12]}"
    kafka = make_consumer(settings, name, [])
    try:
        tps = [
            TopicPartition(settings.topic_prefix + t, p)
            for t in TOPICS
            for p in sorted(kafka.partitions_for_topic(settings.topic_prefix + t) or ())
        ]
        kafka.assign(tps)
        kafka.seek_to_beginning(*tps)
        ends = {tp: off for tp, off in kafka.end_offsets(tps).items()}
        _clear_staging(engine, name)
        applier = BatchApplier(engine, metadata, rebuild_consumer(name))
        try:
            records = _consume(kafka, applier, ends, time.monotonic() + timeout_s)
        finally:
            applier.close()
        _swap(engine, name, {(tp.topic, tp.partition): off for tp, off in ends.items()})
        return {
            "records": records,
            "applied": applier.c.stats["applied"],
            "skipped_poison": applier.c.stats["deadlettered"],
            "end_offsets": {f"{tp.topic}:{tp.partition}": o for tp, o in sorted(ends.items())},
        }
    finally:
        kafka.close()
        _forget(engine, name)


def _consume(kafka: Any, applier: BatchApplier, ends: dict[Any, int], deadline: float) -> int:
    seen = 0
    pending = {tp for tp, end in ends.items() if end > 0}
    while pending:
        if time.monotonic() > deadline:
            raise TimeoutError("rebuild did not reach the captured end offsets in time")
        batches = kafka.poll(timeout_ms=1000)
        records = [
            r
            for tp in sorted(batches, key=lambda t: (t.topic, t.partition))
            for r in batches[tp]
            if r.offset < ends[tp]
        ]
        if records:
            # Poison events are skipped here: the live consumer already dead-lettered them.
            applier.apply(records, lambda _dead: None)
            seen += len(records)
        pending = {tp for tp in pending if kafka.position(tp) < ends[tp]}
    return seen


def _clear_staging(engine: Engine, name: str) -> None:
    with engine.begin() as conn:
        conn.execute(REBUILD.values.delete())
        conn.execute(REBUILD.businesses.delete())
    _forget(engine, name)


def _swap(engine: Engine, name: str, ends: dict[tuple[str, int], int]) -> None:
    o, p = metadata.tables["consumer_offsets"], metadata.tables["processed_events"]
    with engine.begin() as conn:
        # Lock the live consumer's offsets first: its batches take the same lock first.
        conn.execute(
            sa.select(o.c.topic)
            .where(o.c.consumer == CONSUMER_NAME)
            .order_by(o.c.topic, o.c.partition)
            .with_for_update()
        ).all()
        _copy(conn, REBUILD.businesses, LIVE.businesses, None)
        _copy(conn, REBUILD.values, LIVE.values, LIVE.values.c.metric.not_in(KEPT_ON_REBUILD))
        conn.execute(p.delete().where(p.c.consumer == CONSUMER_NAME))
        conn.execute(p.update().where(p.c.consumer == name).values(consumer=CONSUMER_NAME))
        conn.execute(o.delete().where(o.c.consumer == CONSUMER_NAME))
        conn.execute(
            o.insert(),
            [
                {"consumer": CONSUMER_NAME, "topic": t, "partition": part, "next_offset": off}
                for (t, part), off in sorted(ends.items())
            ],
        )
        store.touch_last_applied(conn)


def _copy(conn: Connection, src: sa.Table, dst: sa.Table, keep_filter: Any) -> None:
    """Replace dst's rows (except those the filter keeps out) with src's."""
    conn.execute(dst.delete().where(keep_filter) if keep_filter is not None else dst.delete())
    cols = [c.name for c in src.columns]
    query = sa.select(*[src.c[c] for c in cols])
    if keep_filter is not None:  # rows kept in dst (dead-letter counts) are not in staging
        query = query.where(src.c.metric.not_in(KEPT_ON_REBUILD))
    conn.execute(dst.insert().from_select(cols, query))


def _forget(engine: Engine, name: str) -> None:
    """Remove the throw-away consumer's bookkeeping rows."""
    o, p = metadata.tables["consumer_offsets"], metadata.tables["processed_events"]
    with engine.begin() as conn:
        conn.execute(o.delete().where(o.c.consumer == name))
        conn.execute(p.delete().where(p.c.consumer == name))
