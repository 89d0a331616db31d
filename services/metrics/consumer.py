"""The metrics consumer: folds a whole poll into aggregate deltas in memory, then writes each
touched row once (runner, offsets and dead letters: services/common/messaging/consumer.py)."""

from __future__ import annotations

import time
from collections import Counter

from sqlalchemy.engine import Connection

from services.common.messaging import contracts
from services.common.messaging.consumer import Consumer, DeadLetter, RejectEvent
from services.common.messaging.events import Event
from services.metrics import store
from services.metrics.domain import CONSUMED_TYPES, UMKM_TYPES, Fold, UnknownBusiness, labels_json
from services.metrics.store import LIVE, REBUILD, TableSet

CONSUMER_NAME = "metrics-aggregates"
TOPICS = list(contracts.DOMAIN_TOPICS)


def apply_batch(
    conn: Connection, events: list[Event], tables: TableSet = LIVE, live: bool = True
) -> None:
    """Fold events into deltas in memory, then write each touched row once."""
    ids = [e.data["umkm_id"] for e in events if e.type in UMKM_TYPES]
    fold = Fold(store.load_businesses(conn, tables, ids) if ids else {})
    for ev in events:
        try:
            fold.apply(ev.type, ev.data)
        except UnknownBusiness as exc:
            raise RejectEvent("unknown_umkm", str(exc)) from None
    store.write_fold(conn, tables, fold.changed.values(), fold.deltas,
                     time.time() if live and events else None)


def count_dead(conn: Connection, dead: list[DeadLetter]) -> None:
    """Dead letters of a batch (parse failures and rejected events), as a series."""
    counts = Counter(
        ("bbi_metrics_events_deadlettered_total", labels_json(reason=d.reason)) for d in dead
    )
    store.add_deltas(conn, LIVE, counts)


def consumers() -> list[Consumer]:
    """The one consumer group of the metrics worker."""
    return [
        Consumer(
            name=CONSUMER_NAME,
            topics=TOPICS,
            types=frozenset(CONSUMED_TYPES),
            apply=apply_batch,
            count_dead=count_dead,
            service="metrics",
        )
    ]


def rebuild_consumer(name: str) -> Consumer:
    """Same rules into the *_rebuild tables, under a throw-away consumer name (poison events
    are not counted again: the live consumer counted them when it dead-lettered them)."""

    def apply(conn: Connection, events: list[Event]) -> None:
        apply_batch(conn, events, tables=REBUILD, live=False)

    return Consumer(
        name=name, topics=TOPICS, types=frozenset(CONSUMED_TYPES), apply=apply, service="metrics"
    )
