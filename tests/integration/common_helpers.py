"""Helpers for the shared-plumbing integration tests: a tiny demo schema and Kafka readers."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from kafka import KafkaConsumer, TopicPartition

from services.common.db.engine import new_metadata

demo_md = new_metadata()
demo_items = sa.Table("demo_items", demo_md, sa.Column("id", sa.String(36), primary_key=True),
                      sa.Column("n", sa.Integer, nullable=False, server_default="0"))


def read_all(bootstrap: str, topic: str, expect: int, timeout: float = 30.0) -> list[Any]:
    """Read a topic from the beginning until `expect` records arrived (or the timeout)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             auto_offset_reset="earliest", consumer_timeout_ms=1000)
    parts = consumer.partitions_for_topic(topic) or set()
    tps = [TopicPartition(topic, p) for p in parts]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    out: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(out) < expect and time.monotonic() < deadline:
        for recs in consumer.poll(timeout_ms=500).values():
            out.extend(recs)
    # Linger briefly: a test of "exactly once" must also see any extra copy.
    for recs in consumer.poll(timeout_ms=1000).values():
        out.extend(recs)
    consumer.close()
    return out


def wait_until(cond: Callable[[], bool], timeout: float = 30.0, every: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(every)
    return cond()
