"""The local broker the integration tests rely on: topics, keyed acks=all writes, crash restart."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from devtools import local_kafka
from services.common.messaging import topics

pytestmark = pytest.mark.kafka

TOPIC = "bbi.test.local-kafka"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[local_kafka.LocalBroker]:
    # Its own broker, not the session one: this test kills it.
    b = local_kafka.start(port=local_kafka.free_port(), data_dir=tmp_path / "kafka")
    yield b
    b.stop(timeout=15)


def _produce(bootstrap: str, n: int) -> list[tuple[str, str]]:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        sent = [(f"umkm-{i % 4}", f"event-{i}") for i in range(n)]
        futures = [producer.send(TOPIC, key=k.encode(), value=v.encode()) for k, v in sent]
        for f in futures:
            f.get(timeout=30)  # delivery errors surface only here, not in flush()
        return sent
    finally:
        producer.close(timeout=10)


def _read_all(
    consumer: KafkaConsumer, n: int, timeout_s: float = 30.0
) -> list[tuple[str, str, int]]:
    got: list[tuple[str, str, int]] = []
    deadline = time.monotonic() + timeout_s
    while len(got) < n and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=500).values():
            got.extend((r.key.decode(), r.value.decode(), r.partition) for r in records)
    return got


def _check(got: list[tuple[str, str, int]], sent: list[tuple[str, str]]) -> None:
    assert sorted((k, v) for k, v, _ in got) == sorted(sent)
    for key in {k for k, _ in sent}:
        # One key, one partition, in send order: the property the event design relies on.
        assert len({p for k, _, p in got if k == key}) == 1
        assert [v for k, v, _ in got if k == key] == [v for k, v in sent if k == key]


def test_topics_keyed_messages_and_restart_after_kill(broker: local_kafka.LocalBroker) -> None:
    created = topics.ensure_topics(
        broker.bootstrap, {TOPIC: {"retention.ms": "-1"}}, partitions=3, replication=1
    )
    assert created == [TOPIC]
    # Idempotent: a second call creates nothing and does not fail.
    assert topics.ensure_topics(broker.bootstrap, {TOPIC: {}}, 3, 1) == []

    sent = _produce(broker.bootstrap, 10)

    consumer = KafkaConsumer(
        TOPIC,
        bootstrap_servers=broker.bootstrap,
        group_id="test-local-kafka",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    try:
        got = _read_all(consumer, 10)
        assert len({p for _, _, p in got}) > 1, "keys should spread over the 3 partitions"
        _check(got, sent)
        consumer.commit()
    finally:
        consumer.close()

    # Crash and restart on the same data: same cluster, same topic, records still there.
    broker.kill()
    assert not broker.is_running()
    restarted = local_kafka.start(port=broker.port, data_dir=broker.data_dir)
    broker.pid, broker.process = restarted.pid, restarted.process  # the fixture stops this one
    assert local_kafka.running_pid(broker.data_dir) == restarted.pid

    consumer = KafkaConsumer(bootstrap_servers=restarted.bootstrap, enable_auto_commit=False)
    try:
        parts = [TopicPartition(TOPIC, p) for p in range(3)]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        _check(_read_all(consumer, 10), sent)
    finally:
        consumer.close()
