"""Kafka producer and consumer construction. Only worker processes call these, lazily,
after any fork: kafka-python's background threads do not survive a fork."""
from __future__ import annotations

from typing import Any

from kafka import KafkaConsumer, KafkaProducer

from services.common.config import Settings


def make_producer(settings: Settings, **overrides: Any) -> KafkaProducer:
    """An idempotent producer; delivery is confirmed per send() future by the caller."""
    config: dict[str, Any] = dict(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        client_id=f"{settings.service}-producer",
        acks="all",                 # every in-sync replica has the event before we mark it sent
        enable_idempotence=True,    # broker de-duplicates retries: no duplicates, order kept
        linger_ms=5,                # small batches while the relay is streaming a backlog
        batch_size=256 * 1024,
        compression_type=None,      # events are small JSON; CPU matters more on 2 cores
        retries=5,
        request_timeout_ms=15_000,
        delivery_timeout_ms=30_000, # a send future fails within this, so the relay can back off
        max_block_ms=10_000,        # bounded wait for metadata when the broker is down
        bootstrap_timeout_ms=5_000, # a down broker fails fast; the relay backs off and retries
    )
    config.update(overrides)
    return KafkaProducer(**config)


def group_id(settings: Settings, consumer: str) -> str:
    """The Kafka group of a consumer: its name behind the topic prefix, so systems that share
    a broker under different prefixes (test stacks, environments) never share a group."""
    return settings.topic_prefix + consumer


def make_consumer(settings: Settings, name: str, topics: list[str],
                  **overrides: Any) -> KafkaConsumer:
    """A group consumer that commits only what was processed (no auto-commit)."""
    config: dict[str, Any] = dict(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=group_id(settings, name),
        client_id=f"{settings.service}-{name}",
        enable_auto_commit=False,          # a crash must never skip an unprocessed event
        auto_offset_reset="earliest",      # a new group reads the whole history
        max_poll_records=settings.consumer_max_poll_records,
        max_poll_interval_ms=300_000,      # one bounded batch finishes far inside this
        session_timeout_ms=10_000,
        heartbeat_interval_ms=3_000,
        request_timeout_ms=30_000,
        bootstrap_timeout_ms=5_000,        # not 30 s: a worker started while brokers are down
                                           # must still stop within its SIGTERM budget
    )
    config.update(overrides)
    consumer = KafkaConsumer(**config)
    if topics:
        consumer.subscribe(topics)
    return consumer

