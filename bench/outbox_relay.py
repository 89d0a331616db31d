"""Outbox relay throughput (events/s from PostgreSQL outbox to Kafka) against a raw
kafka-python producer with the same acks/batch settings, in the same run."""
from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

from bench.common import Row, median_of
from services.common import contracts, local_kafka
from services.common.config import Settings
from services.common.db import make_engine, new_metadata, utcnow
from services.common.events import make_event
from services.common.kafka_clients import make_producer
from services.common.outbox import KafkaPublisher, OutboxRelay

DEFAULT_N = 50_000


def run(kafka: str, pg_url: str, n: int = DEFAULT_N, runs: int = 3) -> Row:
    md = new_metadata()
    engine = make_engine(pg_url)
    md.create_all(engine)
    settings = Settings.from_env("bench", database_url=pg_url, kafka_bootstrap_servers=kafka)
    payloads = [make_event(contracts.UMKM_WITHDRAWN, "bench", {
        "umkm_id": str(uuid.uuid4()), "withdrawn_at": datetime.now(UTC)}) for _ in range(n)]

    def relay_once() -> float:
        topic = f"bench.{uuid.uuid4().hex[:6]}"
        local_kafka.ensure_topics(kafka, {topic: {}}, partitions=6, replication=1)
        with engine.begin() as conn:
            conn.execute(md.tables["outbox"].insert(), [
                {"topic": topic, "key": e.key, "event_id": str(uuid.uuid4()),
                 "event_type": e.type, "payload": e.to_bytes(), "created_at": utcnow()}
                for e in payloads])
        relay = OutboxRelay(engine, md, KafkaPublisher(lambda: make_producer(settings)),
                            "bench", batch_size=settings.outbox_batch_size)
        relay.publisher.publish([])  # connect before timing
        t0 = time.perf_counter()
        sent = 0
        while sent < n:
            sent += relay.run_once().sent
        dt = time.perf_counter() - t0
        relay.publisher.close()
        return n / dt

    def raw_once() -> float:
        topic = f"bench.{uuid.uuid4().hex[:6]}"
        local_kafka.ensure_topics(kafka, {topic: {}}, partitions=6, replication=1)
        producer = make_producer(settings)
        t0 = time.perf_counter()
        futures = [producer.send(topic, key=e.key.encode(), value=e.to_bytes())
                   for e in payloads]
        producer.flush()
        for f in futures:
            f.get(30)
        dt = time.perf_counter() - t0
        producer.close()
        return n / dt

    value, vruns = median_of(relay_once, runs)
    ceiling, cruns = median_of(raw_once, runs)
    return Row("outbox relay", f"events/s, {n:,} events", value, "raw kafka-python producer",
               ceiling, ">= 0.7x", vruns, cruns)
