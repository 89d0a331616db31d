"""Pruning processed event ids is safe (issue 15, finding 7), on the real broker, SQLite and
PostgreSQL: within the window a copy of an event at a new offset is still dropped; after the
window the ids go, and Kafka redelivering the same records (offsets never committed to
Kafka) still applies nothing twice, because the runner seeks to the offsets stored in the
database in the same transaction as the effects."""
from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from services.common.db.engine import utcnow
from services.common.messaging import contracts, housekeeping
from tests.integration.common_helpers import demo_md
from tests.integration.test_common_consumer import (
    _consume,
    _runner,
    _total,
    _withdrawn,
    setup,  # noqa: F401 - the fixture
)

pytestmark = pytest.mark.kafka


def _at_end(runner: Any) -> bool:
    """Assigned every partition and read up to the end of each."""
    if runner.kafka is None or len(runner.kafka.assignment()) < 2:
        return False
    tps = list(runner.kafka.assignment())
    ends = runner.kafka.end_offsets(tps)
    return all(runner.kafka.position(tp) >= ends[tp] for tp in tps)


def _processed(engine: sa.Engine) -> int:
    p = demo_md.tables["processed_events"]
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(p)).scalar_one()


def test_processed_ids_are_pruned_after_the_window_and_redelivery_still_counts_once(
        setup) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    settings, engine, producer = setup
    topic = settings.topic_prefix + contracts.TOPIC_UMKM
    events = [_withdrawn() for _ in range(10)]
    for e in events:
        producer.send(topic, key=e.key.encode(), value=e.to_bytes()).get(10)
    first = _runner(engine, settings, "g-prune")
    first.start()
    records: list = []
    for _ in range(40):  # applied in the database; Kafka's offsets never committed
        for recs in first.kafka.poll(timeout_ms=500).values():
            records.extend(recs)
        if len(records) >= 10:
            break
    first.applier.apply(records, lambda dead: None)
    first.kafka.close(autocommit=False)
    assert _total(engine) == 10 and _processed(engine) == 10

    # Inside the window nothing is pruned, and a copy at a new offset is still dropped.
    assert housekeeping.run_once(engine, demo_md, settings)["processed_events"] == 0
    producer.send(topic, key=events[0].key.encode(), value=events[0].to_bytes()).get(10)
    second = _runner(engine, settings, "g-prune")
    _consume(second, want=1, polls=20)
    second.close()
    assert _total(engine) == 10 and second.c.stats["duplicates"] == 1

    # Past the window the ids go...
    p = demo_md.tables["processed_events"]
    old = utcnow() - timedelta(seconds=settings.processed_events_retention_seconds + 60)
    with engine.begin() as conn:
        conn.execute(p.update().values(processed_at=old))
    assert housekeeping.run_once(engine, demo_md, settings)["processed_events"] == 10
    assert _processed(engine) == 0
    # ...and a restarted consumer whose Kafka group never committed the first batch reads
    # from the offsets stored with the effects: the same records are not applied again.
    third = _runner(engine, settings, "g-prune")
    deadline = time.monotonic() + 60
    while not _at_end(third) and time.monotonic() < deadline:
        third.poll_once(timeout_ms=500)
    assert _at_end(third), "the restarted consumer never caught up"
    third.close()
    assert _total(engine) == 10 and third.c.stats["applied"] == 0
