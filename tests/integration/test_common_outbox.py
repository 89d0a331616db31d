"""The transactional outbox against the real broker, on SQLite and PostgreSQL."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from devtools import local_kafka
from services.common.config import Settings
from services.common.db.engine import make_engine
from services.common.messaging import contracts, topics
from services.common.messaging.events import parse_event
from services.common.messaging.kafka_clients import make_producer
from services.common.messaging.outbox import KafkaPublisher, OutboxRelay
from services.common.messaging.uow import UnitOfWork
from tests.integration.common_helpers import demo_items, demo_md, read_all

pytestmark = pytest.mark.kafka


def _setup(db_url: str, bootstrap: str, prefix: str) -> tuple[Settings, sa.Engine, OutboxRelay]:
    settings = Settings.from_env("demo", database_url=db_url, kafka_bootstrap_servers=bootstrap,
                                 topic_prefix=prefix)
    engine = make_engine(db_url)
    demo_md.create_all(engine)
    topics.ensure_topics(bootstrap, {prefix + contracts.TOPIC_UMKM: {}}, partitions=3,
                              replication=1)
    relay = OutboxRelay(engine, demo_md, KafkaPublisher(lambda: make_producer(settings)), "demo")
    return settings, engine, relay


def _register(engine: sa.Engine, prefix: str, umkm_id: str, fail: bool = False) -> None:
    with UnitOfWork(engine, demo_md, "demo", prefix) as uow:
        uow.conn.execute(demo_items.insert().values(id=umkm_id))
        uow.publish(contracts.UMKM_WITHDRAWN, {"umkm_id": umkm_id,
                                               "withdrawn_at": datetime.now(UTC)})
        if fail:
            raise RuntimeError("the state change failed after the event was staged")


def _drain(relay: OutboxRelay) -> int:
    sent = 0
    for _ in range(100):
        res = relay.run_once()
        sent += res.sent
        if res.sent == 0 and not res.failed:
            return sent
    return sent


def test_committed_event_reaches_kafka_once_and_rollback_publishes_nothing(
        db_url: str, kafka_bootstrap: str, topic_prefix: str) -> None:
    _, engine, relay = _setup(db_url, kafka_bootstrap, topic_prefix)
    good = str(uuid.uuid4())
    _register(engine, topic_prefix, good)
    with pytest.raises(RuntimeError):
        _register(engine, topic_prefix, str(uuid.uuid4()), fail=True)

    assert _drain(relay) == 1
    records = read_all(kafka_bootstrap, topic_prefix + contracts.TOPIC_UMKM, expect=1)
    assert len(records) == 1
    event = parse_event(records[0].value)
    assert event.type == contracts.UMKM_WITHDRAWN and event.subject == good
    assert records[0].key == good.encode()
    with engine.connect() as conn:  # the sent row is gone; the rolled-back one never existed
        assert conn.execute(sa.select(sa.func.count()).select_from(
            demo_md.tables["outbox"])).scalar_one() == 0
        assert conn.execute(sa.select(sa.func.count()).select_from(demo_items)).scalar_one() == 1
    relay.publisher.close()


def test_broker_down_rows_pile_up_then_all_delivered_in_key_order(
        db_url: str, tmp_path: Path, topic_prefix: str) -> None:
    broker = local_kafka.start(port=local_kafka.free_port(), data_dir=tmp_path / "kafka")
    try:
        _, engine, relay = _setup(db_url, broker.bootstrap, topic_prefix)
        keys = [str(uuid.uuid4()) for _ in range(5)]
        broker.kill()
        for round_ in range(4):  # requests keep being accepted while Kafka is down
            for k in keys:
                with UnitOfWork(engine, demo_md, "demo", topic_prefix) as uow:
                    if round_ == 0:
                        uow.conn.execute(demo_items.insert().values(id=k))
                    uow.conn.execute(demo_items.update().where(demo_items.c.id == k)
                                     .values(n=round_))
                    uow.publish(contracts.UMKM_WITHDRAWN, {
                        "umkm_id": k, "withdrawn_at": datetime(2026, 1, 1, 0, 0, round_,
                                                               tzinfo=UTC)})
        relay.publisher = KafkaPublisher(lambda: make_producer(Settings.from_env(
            "demo", kafka_bootstrap_servers=broker.bootstrap)), timeout_s=3)
        res = relay.run_once()
        assert res.failed == 1 and res.sent == 0
        with engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(
                demo_md.tables["outbox"])).scalar_one() == 20
        relay.publisher.close(timeout=1)

        broker = local_kafka.start(port=broker.port, data_dir=tmp_path / "kafka")
        relay.publisher = KafkaPublisher(lambda: make_producer(Settings.from_env(
            "demo", kafka_bootstrap_servers=broker.bootstrap)))
        assert _drain(relay) == 20
        records = read_all(broker.bootstrap, topic_prefix + contracts.TOPIC_UMKM, expect=20)
        assert len(records) == 20
        by_key: dict[str, list[str]] = {}
        for r in sorted(records, key=lambda r: (r.partition, r.offset)):
            ev = parse_event(r.value)
            by_key.setdefault(ev.subject, []).append(ev.data["withdrawn_at"])
        assert set(by_key) == set(keys)
        for times in by_key.values():  # per key: exactly the 4 events, in the order written
            assert times == sorted(times) and len(times) == 4
        relay.publisher.close()
    finally:
        broker.stop()
