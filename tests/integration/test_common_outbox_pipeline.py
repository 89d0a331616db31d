"""The pipelined relay against the real broker: many small batches in flight per run_once,
every row delivered exactly once, per-key order kept, every row deleted only once acked."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from services.common.config import Settings
from services.common.db.engine import make_engine
from services.common.messaging import contracts, topics
from services.common.messaging.events import parse_event
from services.common.messaging.kafka_clients import make_producer
from services.common.messaging.outbox import KafkaPublisher, OutboxRelay, Publisher
from services.common.messaging.uow import UnitOfWork
from tests.integration.common_helpers import demo_md, read_all

pytestmark = pytest.mark.kafka


class FailsAfter(Publisher):
    """The real Kafka publisher, except that batch number `bad` is refused at its 3rd row."""

    def __init__(self, inner: KafkaPublisher, bad: int) -> None:
        self.inner, self.bad, self.calls = inner, bad, 0

    def send(self, batch):  # type: ignore[no-untyped-def]
        self.calls += 1
        wait = self.inner.send(batch)
        if self.calls != self.bad:
            return wait

        def failing() -> list[Exception | None]:
            res = wait()
            return res[:2] + [RuntimeError("refused")] + res[3:]

        return failing


def _stage(engine: sa.Engine, prefix: str, keys: list[str], rounds: int) -> None:
    for r in range(rounds):
        for k in keys:
            with UnitOfWork(engine, demo_md, "demo", prefix) as uow:
                uow.publish(contracts.UMKM_WITHDRAWN, {
                    "umkm_id": k, "withdrawn_at": datetime(2026, 1, 1, 0, 0, r, tzinfo=UTC)})


def _outbox_count(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(
            demo_md.tables["outbox"])).scalar_one())


def test_pipelined_batches_keep_key_order_and_delete_only_acked_rows(
        db_url: str, kafka_bootstrap: str, topic_prefix: str) -> None:
    settings = Settings.from_env("demo", database_url=db_url,
                                 kafka_bootstrap_servers=kafka_bootstrap)
    engine = make_engine(db_url)
    demo_md.create_all(engine)
    topics.ensure_topics(kafka_bootstrap, {topic_prefix + contracts.TOPIC_UMKM: {}},
                              partitions=3, replication=1)
    keys = [str(uuid.uuid4()) for _ in range(10)]
    _stage(engine, topic_prefix, keys, rounds=10)  # 100 rows, 10 per key, interleaved
    publisher = FailsAfter(KafkaPublisher(lambda: make_producer(settings)), bad=4)
    relay = OutboxRelay(engine, demo_md, publisher, "demo", batch_size=7, depth=3)

    first = relay.run_once()  # batches 1-3 acked, batch 4 fails at its 3rd row
    assert first.failed == 1 and first.sent == 3 * 7 + 2
    # Batches 5 and 6 were in flight when batch 4 failed: acked, yet not deleted.
    assert _outbox_count(engine) == 100 - first.sent

    sent = first.sent
    for _ in range(20):
        res = relay.run_once()
        assert not res.failed
        sent += res.sent
        if res.sent == 0:
            break
    assert _outbox_count(engine) == 0
    # Sent twice: batch 4 from its refused row on (5 rows) and batches 5-6 (14 rows).
    records = read_all(kafka_bootstrap, topic_prefix + contracts.TOPIC_UMKM, expect=100 + 19)
    assert len(records) == 119
    by_key: dict[str, list[str]] = {}
    ids: dict[str, int] = {}
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        ev = parse_event(r.value)
        ids[ev.id] = ids.get(ev.id, 0) + 1
        if ids[ev.id] == 1:
            by_key.setdefault(ev.subject, []).append(ev.data["withdrawn_at"])
    assert len(ids) == 100  # every row delivered; re-sent ones are duplicates by event id
    assert sent == 100
    for times in by_key.values():  # per key, first deliveries in the order written
        assert times == sorted(times) and len(times) == 10
    publisher.inner.close()
