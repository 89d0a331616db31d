"""The worker process of a service: the outbox relay and the service's consumers, each in
its own thread with its own Kafka client, a lag reporter, plus a /metrics endpoint."""
from __future__ import annotations

import functools
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from kafka import KafkaConsumer
from kafka.errors import KafkaError
from prometheus_client import start_http_server
from sqlalchemy.engine import Connection, Engine

from services.common.config import Settings
from services.common.messaging import housekeeping
from services.common.messaging.consumer import (
    KAFKA_CALL_TIMEOUT_MS,
    Consumer,
    ConsumerRunner,
    consumer_lag,
)
from services.common.messaging.events import DEAD_LETTER_REASONS
from services.common.messaging.kafka_clients import make_consumer, make_producer
from services.common.messaging.outbox import KafkaPublisher, OutboxRelay
from services.common.observability import setup_logging, worker_metrics

log = logging.getLogger(__name__)
# SIGTERM to exit, whatever Kafka does: inside the 10 s promised to the platform (Kubernetes
# waits terminationGracePeriodSeconds, a developer's Ctrl-C waits on honcho).
STOP_BUDGET_S = 7.0
# Where a service keeps its consumers' lag besides the worker's gauge (metrics: its database).
LagSink = Callable[[Connection, str, dict[tuple[str, int], int]], None]


def make_runner(s: Settings, engine: Engine, md: sa.MetaData, c: Consumer) -> ConsumerRunner:
    """The runner of one consumer group, as the worker runs it (Kafka clients made lazily)."""
    c.service = c.service or s.service
    return ConsumerRunner(
        engine, md, c, kafka_factory=functools.partial(make_consumer, s, c.name, []),
        producer_factory=lambda: make_producer(s), topic_prefix=s.topic_prefix)


class Worker:
    """Runs the relay and consumers until stop() (or SIGTERM/SIGINT in `run`)."""

    def __init__(self, settings: Settings, engine: Engine, md: sa.MetaData,
                 consumers: list[Consumer], relay: bool = True, lag_interval_s: float = 15.0,
                 lag_sink: LagSink | None = None) -> None:
        self.settings, self.engine, self.md = settings, engine, md
        self.consumers = consumers
        self.with_relay = relay
        self.lag_interval_s, self.lag_sink = lag_interval_s, lag_sink
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.runners: list[ConsumerRunner] = []

    def start(self) -> None:
        s = self.settings
        _zero_series(s.service, [c.name for c in self.consumers], self.with_relay)
        if self.with_relay:
            relay = OutboxRelay(self.engine, self.md,
                                KafkaPublisher(lambda: make_producer(s)), s.service,
                                batch_size=s.outbox_batch_size)
            self._spawn("outbox-relay", lambda: relay.run_forever(self._stop.is_set))
        # Expired Idempotency-Keys and old processed event ids (housekeeping.py says why
        # the window is safe); every replica may run it, deleting twice is harmless.
        self._spawn("housekeeping",
                    lambda: housekeeping.run_forever(self.engine, self.md, s, self._stop))
        for c in self.consumers:
            runner = make_runner(s, self.engine, self.md, c)
            self.runners.append(runner)
            self._spawn(f"consumer-{c.name}",
                        functools.partial(runner.run_forever, self._stop.is_set))
        if self.consumers:
            self._spawn("lag-reporter", self._report_lag_forever)

    def _report_lag_forever(self) -> None:
        # Also the worker's Kafka liveness probe (bbi_worker_kafka_up): a consumer's poll
        # answers "nothing" instead of failing while the brokers are gone, so only these
        # periodic metadata calls can tell that the worker lost Kafka.
        client: Any = None
        kafka_up = worker_metrics().kafka_up.labels(self.settings.service)
        while not self._stop.wait(self.lag_interval_s):
            try:
                client = client or KafkaConsumer(
                    bootstrap_servers=self.settings.kafka_bootstrap_servers,
                    client_id=f"{self.settings.service}-lag", enable_auto_commit=False,
                    bootstrap_timeout_ms=KAFKA_CALL_TIMEOUT_MS)  # not 30 s with brokers down
                self.report_lag(client)
                kafka_up.set(1)
            except KafkaError as exc:
                kafka_up.set(0)
                log.warning("lag report failed: Kafka unreachable",
                            extra={"error": type(exc).__name__})
            except Exception as exc:  # noqa: BLE001 - lag is advisory; try again next tick
                log.warning("lag report failed", extra={"error": type(exc).__name__})
        if client is not None:
            client.close()

    def report_lag(self, client: Any) -> dict[str, dict[tuple[str, int], int]]:
        """Every consumer's lag on all partitions of its topics (whichever replica owns them),
        as the bbi_consumer_lag_events gauge and to the service's lag sink, if any."""
        s, gauge, out = self.settings, worker_metrics().consumer_lag, {}
        for c in self.consumers:
            with self.engine.begin() as conn:
                lags = out[c.name] = consumer_lag(conn, self.md, c, client, s.topic_prefix)
                if self.lag_sink is not None:
                    self.lag_sink(conn, c.name, lags)
            for (topic, part), n in lags.items():
                gauge.labels(s.service, c.name, s.topic_prefix + topic, str(part)).set(n)
        return out

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        t = threading.Thread(target=target, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    def stop(self, timeout: float = STOP_BUDGET_S) -> list[str]:
        """Ask every thread to stop and wait for all of them within one `timeout` (not one
        per thread); returns the names of those still running."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        return [t.name for t in self._threads if t.is_alive()]

    def run(self, metrics_port: int | None = None) -> None:
        """Block until SIGTERM/SIGINT; then finish the current batches and close clients."""
        setup_logging(f"{self.settings.service}-worker")
        if metrics_port:
            start_http_server(metrics_port, addr="0.0.0.0", registry=worker_metrics().registry)
        signal.signal(signal.SIGTERM, lambda *_: self._stop.set())
        signal.signal(signal.SIGINT, lambda *_: self._stop.set())
        self.start()
        log.info("worker started", extra={"consumers": [c.name for c in self.consumers],
                                           "relay": self.with_relay})
        while not self._stop.wait(1.0):
            self.exit_if_a_thread_died()
        stuck = self.stop()
        if stuck:
            # With the brokers unreachable a thread can sit in one Kafka call for a request
            # timeout (30 s), and interpreter exit would then wait on each producer's atexit
            # flush. Leaving is safe at any point: a consumer's effects, event ids and offsets
            # commit in one DB transaction (an open one rolls back), and an outbox row is
            # deleted only after its ack (an unacked one is sent again, deduplicated by id).
            log.warning("worker stopped; abandoning threads blocked on Kafka",
                        extra={"threads": stuck})
            logging.shutdown()
            os._exit(0)
        log.info("worker stopped")

    def exit_if_a_thread_died(self) -> None:
        """A relay or consumer thread that ended on its own leaves a process that looks alive
        but moves nothing: stop the rest and exit non-zero so the supervisor restarts us."""
        dead = [t.name for t in self._threads if not t.is_alive()]
        if dead and not self._stop.is_set():
            log.critical("worker thread ended unexpectedly; exiting", extra={"threads": dead})
            self.stop()
            raise SystemExit(3)


def _zero_series(service: str, consumers: list[str], relay: bool) -> None:
    """Export every series at 0 from the start, so rate() and alerts see them before the
    first failure instead of an absent series."""
    m = worker_metrics()
    m.kafka_up.labels(service)
    if relay:
        m.outbox_published.labels(service)
        m.outbox_failures.labels(service)
        m.outbox_parked.labels(service)
        m.outbox_backlog.labels(service)
    for name in consumers:
        m.last_applied.labels(service, name)
        for reason in DEAD_LETTER_REASONS:
            m.events_deadlettered.labels(service, name, reason)
