"""The consumer runner against the real broker, on SQLite and PostgreSQL: redelivery has no
second effect, bad events go to the dead-letter topic and the stream keeps flowing."""
from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from kafka import KafkaProducer
from sqlalchemy.engine import Connection

from services.common.config import Settings
from services.common.db.engine import make_engine
from services.common.messaging import contracts, topics
from services.common.messaging.consumer import Consumer, ConsumerRunner, RejectEvent
from services.common.messaging.events import Event, make_event
from services.common.messaging.kafka_clients import make_consumer, make_producer
from tests.integration.common_helpers import demo_items, demo_md, read_all

pytestmark = pytest.mark.kafka


def _count(conn: Connection, event: Event) -> None:
    uid = event.data["umkm_id"]
    if uid == "00000000-0000-0000-0000-000000000000":
        raise RejectEvent("unknown_umkm", uid)
    done = conn.execute(demo_items.update().where(demo_items.c.id == "total")
                        .values(n=demo_items.c.n + 1)).rowcount
    if not done:
        conn.execute(demo_items.insert().values(id="total", n=1))


def _withdrawn(uid: str | None = None) -> Event:
    return make_event(contracts.UMKM_WITHDRAWN, "test",
                      {"umkm_id": uid or str(uuid.uuid4()), "withdrawn_at": datetime.now(UTC)})


def _runner(engine: sa.Engine, settings: Settings, group: str) -> ConsumerRunner:
    c = Consumer.per_event(group, [contracts.TOPIC_UMKM], {contracts.UMKM_WITHDRAWN: _count},
                           service="demo")
    return ConsumerRunner(engine, demo_md, c,
                          kafka_factory=lambda: make_consumer(settings, group, []),
                          producer_factory=lambda: make_producer(settings),
                          topic_prefix=settings.topic_prefix)


def _total(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(demo_items.c.n).where(demo_items.c.id == "total")
                            ).scalar() or 0


def _consume(runner: ConsumerRunner, want: int, polls: int = 60) -> None:
    for _ in range(polls):
        runner.poll_once(timeout_ms=500)
        if runner.c.stats["applied"] + runner.c.stats["deadlettered"] >= want:
            return


@pytest.fixture
def setup(db_url: str, kafka_bootstrap: str, topic_prefix: str):  # type: ignore[no-untyped-def]
    settings = Settings.from_env("demo", database_url=db_url,
                                 kafka_bootstrap_servers=kafka_bootstrap, topic_prefix=topic_prefix)
    engine = make_engine(db_url)
    demo_md.create_all(engine)
    topics.ensure_topics(kafka_bootstrap, {
        topic_prefix + contracts.TOPIC_UMKM: {}, topic_prefix + contracts.TOPIC_DEADLETTER: {}},
        partitions=2, replication=1)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    yield settings, engine, producer
    producer.close()


def test_killed_after_db_commit_before_offset_commit_applies_no_second_effect(setup) -> None:  # type: ignore[no-untyped-def]
    settings, engine, producer = setup
    topic = settings.topic_prefix + contracts.TOPIC_UMKM
    events = [_withdrawn() for _ in range(10)]
    for e in events:
        producer.send(topic, key=e.key.encode(), value=e.to_bytes()).get(10)

    first = _runner(engine, settings, "g1")
    # Simulate the crash: apply the batch in the DB but never commit the Kafka offsets.
    first.start()
    records: list = []
    for _ in range(40):
        for recs in first.kafka.poll(timeout_ms=500).values():
            records.extend(recs)
        if len(records) >= 10:
            break
    first.applier.apply(records, lambda dead: None)
    first.kafka.close(autocommit=False)
    assert _total(engine) == 10

    # Also redeliver one event as a brand-new Kafka record (same CloudEvent id).
    producer.send(topic, key=events[0].key.encode(), value=events[0].to_bytes()).get(10)
    second = _runner(engine, settings, "g1")
    _consume(second, want=1, polls=10)
    assert _total(engine) == 10  # nothing counted twice
    assert second.c.stats["duplicates"] == 1
    second.close()

    # A fresh group with no DB offsets reads everything again, and still applies nothing twice.
    third = _runner(engine, settings, "g1-replay")
    third.applier.c.name = "g1"  # same logical consumer, new Kafka group
    _consume(third, want=11, polls=20)
    assert _total(engine) == 10
    third.close()


def test_bad_events_go_to_dead_letter_and_the_consumer_keeps_going(setup) -> None:  # type: ignore[no-untyped-def]
    settings, engine, producer = setup
    topic = settings.topic_prefix + contracts.TOPIC_UMKM
    good_before, good_after = _withdrawn(), _withdrawn()
    unknown_type = json.loads(good_before.to_bytes())
    unknown_type.update(id=str(uuid.uuid4()), type="bbi.umkm.teleported.v1")
    bad_data = json.loads(_withdrawn().to_bytes())
    bad_data["data"]["umkm_id"] = "not-a-uuid"
    poison = [b"not json at all", json.dumps({"hello": "world"}).encode(),
              json.dumps(unknown_type).encode(), json.dumps(bad_data).encode(),
              _withdrawn("00000000-0000-0000-0000-000000000000").to_bytes()]
    key = b"same-key"  # one partition: the good event after the poison must still arrive
    producer.send(topic, key=key, value=good_before.to_bytes()).get(10)
    for p in poison:
        producer.send(topic, key=key, value=p).get(10)
    producer.send(topic, key=key, value=good_after.to_bytes()).get(10)

    runner = _runner(engine, settings, "g-dlq")
    _consume(runner, want=7)
    runner.close()
    assert _total(engine) == 2
    dead = read_all(settings.kafka_bootstrap_servers,
                    settings.topic_prefix + contracts.TOPIC_DEADLETTER, expect=5)
    reasons = sorted(json.loads(r.value)["reason"] for r in dead)
    assert reasons == sorted(["not_json", "bad_envelope", "unknown_type", "schema_invalid",
                              "unknown_umkm"])
    originals = {json.loads(r.value)["original_base64"] for r in dead}
    assert len(originals) == 5  # the original bytes travel with the reason
