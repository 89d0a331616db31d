"""Outbox relay throughput (events/s from PostgreSQL outbox to Kafka) against a raw
kafka-python producer with the same acks/batch settings, in the same run.

Both sides send the same pre-serialised payloads (the relay reads them from the outbox, the
raw producer from memory), with the producer of services/common/messaging/kafka_clients.py. Runs
alternate relay, raw, relay, raw... so a burst of load on the shared machine hits both."""
from __future__ import annotations

import statistics
import time
import uuid
from datetime import UTC, datetime

from bench.common import Row
from devtools import local_kafka
from services.common.config import Settings
from services.common.db.engine import make_engine, new_metadata, utcnow
from services.common.messaging import contracts
from services.common.messaging.events import make_event
from services.common.messaging.kafka_clients import make_producer
from services.common.messaging.outbox import KafkaPublisher, OutboxRelay

DEFAULT_N = 50_000


def run(kafka: str, pg_url: str, n: int = DEFAULT_N, runs: int = 3) -> Row:
    md = new_metadata()
    engine = make_engine(pg_url)
    md.create_all(engine)
    settings = Settings.from_env("bench", database_url=pg_url, kafka_bootstrap_servers=kafka)
    events = [make_event(contracts.UMKM_WITHDRAWN, "bench", {
        "umkm_id": str(uuid.uuid4()), "withdrawn_at": datetime.now(UTC)}) for _ in range(n)]
    payloads = [(e.key, e.to_bytes()) for e in events]

    def new_topic() -> str:
        topic = f"bench.{uuid.uuid4().hex[:6]}"
        local_kafka.ensure_topics(kafka, {topic: {}}, partitions=6, replication=1)
        return topic

    def relay_once() -> float:
        topic = new_topic()
        with engine.begin() as conn:
            conn.execute(md.tables["outbox"].insert(), [
                {"topic": topic, "key": k, "event_id": str(uuid.uuid4()),
                 "event_type": contracts.UMKM_WITHDRAWN, "payload": v, "created_at": utcnow()}
                for k, v in payloads])
            # Statistics, as autovacuum would have within a minute of the backlog growing:
            # without them the planner sorts the whole backlog for every batch (10 ms/batch).
            conn.exec_driver_sql("ANALYZE outbox")
        relay = OutboxRelay(engine, md, KafkaPublisher(lambda: make_producer(settings)),
                            "bench", batch_size=settings.outbox_batch_size)
        relay.publisher.publish([])  # connect before timing
        t0 = time.perf_counter()
        sent = 0
        while sent < n:
            res = relay.run_once()
            if res.failed:
                raise RuntimeError("relay failed during the benchmark")
            sent += res.sent
        dt = time.perf_counter() - t0
        relay.publisher.close()
        return n / dt

    def raw_once() -> float:
        topic = new_topic()
        producer = make_producer(settings)
        values = [(k.encode(), v) for k, v in payloads]
        t0 = time.perf_counter()
        futures = [producer.send(topic, key=k, value=v) for k, v in values]
        producer.flush()
        for f in futures:
            f.get(30)
        dt = time.perf_counter() - t0
        producer.close()
        return n / dt

    vruns, cruns = [], []
    for _ in range(runs):
        vruns.append(relay_once())
        cruns.append(raw_once())
    return Row("outbox relay", f"events/s, {n:,} events", statistics.median(vruns),
               "raw kafka-python producer", statistics.median(cruns), ">= 0.7x", vruns, cruns)
