"""The metrics worker: the aggregate consumer (no outbox: metrics publishes nothing) and a
thread that stores the consumer lag in the DB so the web process can serve it."""

from __future__ import annotations

import logging
import os
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from sqlalchemy.engine import Engine

from services.common.config import Settings
from services.common.db.engine import make_engine
from services.common.messaging.consumer import KAFKA_CALL_TIMEOUT_MS, Consumer, ConsumerRunner
from services.common.messaging.kafka_clients import make_consumer, make_producer
from services.common.messaging.worker import Worker
from services.metrics import store
from services.metrics.config import WORKER_METRICS_PORT, lag_interval_seconds, load_settings
from services.metrics.consumer import CONSUMER_NAME, TOPICS, consumers
from services.metrics.store import metadata

log = logging.getLogger(__name__)


class MetricsWorker(Worker):
    """Worker whose runners use MetricsApplier, plus the lag reporter thread."""

    def start(self) -> None:
        super().start()
        self._spawn("lag-reporter", self._report_lag_forever)

    def _report_lag_forever(self) -> None:
        client: Any = None
        while not self._stop.wait(lag_interval_seconds()):
            try:
                client = client or KafkaConsumer(
                    bootstrap_servers=self.settings.kafka_bootstrap_servers,
                    client_id="metrics-lag",
                    enable_auto_commit=False,
                    bootstrap_timeout_ms=KAFKA_CALL_TIMEOUT_MS,  # not 30 s while brokers are down
                )
                report_lag(self.engine, client, self.settings.topic_prefix)
            except Exception as exc:  # noqa: BLE001 - lag is advisory; try again next tick
                log.warning("lag report failed", extra={"error": type(exc).__name__})
        if client is not None:
            client.close()


def make_runner(s: Settings, engine: Engine, c: Consumer) -> ConsumerRunner:
    """The ConsumerRunner the worker runs (its applier is the consumer's MetricsApplier)."""
    c.service = c.service or s.service
    runner = ConsumerRunner(
        engine,
        metadata,
        c,
        kafka_factory=lambda: make_consumer(s, c.name, []),
        producer_factory=lambda: make_producer(s),
        topic_prefix=s.topic_prefix,
    )
    return runner


def report_lag(engine: Engine, client: Any, prefix: str) -> dict[tuple[str, int], int]:
    """Lag = end offset - next offset stored in the DB (the truth of what was applied)."""
    tps = [
        TopicPartition(prefix + t, p)
        for t in TOPICS
        for p in sorted(client.partitions_for_topic(prefix + t) or ())
    ]
    if not tps:
        return {}
    # Bounded: with the brokers down the default (30 s) kept this thread deaf to a stop.
    ends = client.end_offsets(tps, timeout_ms=KAFKA_CALL_TIMEOUT_MS)
    starts = client.beginning_offsets(tps, timeout_ms=KAFKA_CALL_TIMEOUT_MS)
    o = metadata.tables["consumer_offsets"]
    with engine.begin() as conn:
        stored = {
            (r.topic, r.partition): r.next_offset
            for r in conn.execute(o.select().where(o.c.consumer == CONSUMER_NAME))
        }
        lags = {
            (tp.topic[len(prefix) :], tp.partition): max(
                0, ends[tp] - stored.get((tp.topic, tp.partition), starts[tp])
            )
            for tp in tps
        }
        store.write_lag(conn, lags)
    return lags


def build_worker(settings: Settings | None = None, engine: Engine | None = None) -> Worker:
    """The metrics worker process, wired."""
    s = settings or load_settings()
    return MetricsWorker(
        s, engine or make_engine(s.database_url), metadata, consumers(), relay=False
    )


def main() -> None:
    port = int(os.environ.get("WORKER_METRICS_PORT") or WORKER_METRICS_PORT)
    build_worker().run(metrics_port=port)


if __name__ == "__main__":
    main()
