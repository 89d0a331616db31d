"""The metrics consumer: folds whole batches into aggregate deltas (the runner's fast path).

The runner applies each batch in one transaction with the processed event ids and offsets;
MetricsApplier adds, in that same transaction, the dead-letter counts and a guard that the
batch starts exactly at the stored offsets (a rebuild may have moved them)."""

from __future__ import annotations

from collections import Counter
from functools import partial
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.common.messaging import contracts
from services.common.messaging.consumer import (
    BatchApplier,
    Consumer,
    DeadLetter,
    RejectEvent,
    RetryLater,
)
from services.common.messaging.events import Event
from services.metrics import store
from services.metrics.domain import CONSUMED_TYPES, UMKM_TYPES, Fold, UnknownBusiness, labels_json
from services.metrics.store import LIVE, TableSet

CONSUMER_NAME = "metrics-aggregates"
TOPICS = list(contracts.DOMAIN_TOPICS)


def apply_batch(
    conn: Connection, events: list[Event], tables: TableSet = LIVE, live: bool = True
) -> None:
    """Fold events into deltas in memory, then write them with a few UPSERTs."""
    ids = [e.data["umkm_id"] for e in events if e.type in UMKM_TYPES]
    fold = Fold(store.load_businesses(conn, tables, ids) if ids else {})
    for ev in events:
        try:
            fold.apply(ev.type, ev.data)
        except UnknownBusiness as exc:
            raise RejectEvent("unknown_umkm", str(exc)) from None
    store.save_businesses(conn, tables, fold.changed.values())
    store.add_deltas(conn, tables, fold.deltas)
    if live and events:
        store.touch_last_applied(conn)


def _single(conn: Connection, event: Event) -> None:
    apply_batch(conn, [event])


def consumers() -> list[Consumer]:
    """The one consumer group of the metrics worker."""
    return [
        Consumer(
            name=CONSUMER_NAME,
            topics=TOPICS,
            handlers={t: _single for t in CONSUMED_TYPES},
            batch_handler=apply_batch,
            applier_class=MetricsApplier,
        )
    ]


def rebuild_consumer(name: str) -> Consumer:
    """Same rules into the *_rebuild tables, under a throw-away consumer name."""
    return Consumer(
        name=name,
        topics=TOPICS,
        handlers={t: _single for t in CONSUMED_TYPES},
        batch_handler=partial(apply_batch, tables=store.REBUILD, live=False),
        service="metrics",
    )


class OffsetsMoved(RetryLater):
    """The batch does not start at the stored offsets (a rebuild swapped them): re-seek."""


class MetricsApplier(BatchApplier):
    """BatchApplier + offset guard + dead-letter counts, all inside the batch transaction."""

    _records: list[Any]

    def apply(self, records: list[Any], before_commit: Any) -> list[DeadLetter]:
        self._records = records
        return super().apply(records, before_commit)

    def _apply_events(
        self, conn: Connection, items: list[Any], dead: list[DeadLetter]
    ) -> list[Event]:
        self._check_offsets(conn)
        applied = super()._apply_events(conn, items, dead)
        if dead:  # `dead` now holds parse failures and rejected events of this batch
            counts = Counter(
                ("bbi_metrics_events_deadlettered_total", labels_json(reason=d.reason))
                for d in dead
            )
            store.add_deltas(conn, LIVE, counts)
        return applied

    def _check_offsets(self, conn: Connection) -> None:
        o = self.offsets
        first: dict[tuple[str, int], int] = {}
        for r in self._records:
            first.setdefault((r.topic, r.partition), r.offset)
        # FOR UPDATE (PostgreSQL) on this batch's partitions only: serialises with a rebuild's
        # swap of these rows while replicas owning other partitions are not blocked.
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
