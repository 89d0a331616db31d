"""JSON logs with a correlation id, and the Prometheus metrics every process exports.

Web processes run under gunicorn with PROMETHEUS_MULTIPROC_DIR (set and wiped by the start
script); only Counter/Histogram/Gauge(livesum) live there. Worker processes are single
processes and serve their own registry on a port."""
from __future__ import annotations

import contextvars
import json
import logging
import os
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

correlation_id: contextvars.ContextVar[str] = contextvars.ContextVar("correlation_id", default="")
_STD_ATTRS = set(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object a line; callers pass ids only (never personal data) in `extra`."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
            "correlation_id": correlation_id.get() or None,
        }
        for key, value in record.__dict__.items():
            if key not in _STD_ATTRS and not key.startswith("_"):
                doc[key] = value
        if record.exc_info:
            doc["exc_type"] = record.exc_info[0].__name__ if record.exc_info[0] else None
        return json.dumps(doc, default=str, ensure_ascii=False)


def setup_logging(service: str, level: str | None = None) -> None:
    """Route every logger to stderr as JSON (idempotent)."""
    root = logging.getLogger()
    if any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root.handlers[:] = [handler]
    root.setLevel(level or os.environ.get("BBI_LOG_LEVEL", "INFO"))
    logging.getLogger("kafka").setLevel(logging.WARNING)  # its INFO lines are per-connection noise


# --- web (request) metrics: safe in the multiprocess registry ------------------------------
@dataclass(frozen=True)
class HttpMetrics:
    requests: Counter
    latency: Histogram


@cache
def http_metrics() -> HttpMetrics:
    return HttpMetrics(
        requests=Counter("bbi_http_requests_total", "HTTP requests answered",
                         ["service", "method", "route", "status"]),
        latency=Histogram("bbi_http_request_duration_seconds", "HTTP request latency",
                          ["service", "method", "route"],
                          buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)),
    )


def web_metrics_payload() -> bytes:
    """The web process's /metrics body: aggregated over gunicorn workers when multiprocess."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    from prometheus_client import REGISTRY

    return generate_latest(REGISTRY)


# --- worker metrics: a plain registry served by the worker itself --------------------------
@dataclass(frozen=True)
class WorkerMetrics:
    registry: CollectorRegistry
    outbox_published: Counter
    outbox_failures: Counter
    outbox_parked: Counter
    outbox_backlog: Gauge
    events_consumed: Counter
    events_deadlettered: Counter
    consumer_lag: Gauge
    kafka_up: Gauge
    last_applied: Gauge


@cache
def worker_metrics() -> WorkerMetrics:
    reg = CollectorRegistry()
    return WorkerMetrics(
        registry=reg,
        outbox_published=Counter("bbi_outbox_published_events_total",
                                 "Outbox rows confirmed by Kafka", ["service"], registry=reg),
        outbox_failures=Counter("bbi_outbox_publish_failures_total",
                                "Outbox batches stopped by a delivery error", ["service"],
                                registry=reg),
        outbox_parked=Counter("bbi_outbox_parked_events_total",
                              "Outbox rows parked after too many attempts", ["service"],
                              registry=reg),
        outbox_backlog=Gauge("bbi_outbox_backlog_events", "Outbox rows waiting to be published",
                             ["service"], registry=reg),
        events_consumed=Counter("bbi_consumer_events_total", "Events applied by a consumer",
                                ["service", "consumer", "type"], registry=reg),
        events_deadlettered=Counter("bbi_consumer_deadlettered_events_total",
                                    "Events sent to the dead-letter topic",
                                    ["service", "consumer", "reason"], registry=reg),
        consumer_lag=Gauge("bbi_consumer_lag_events", "Events not yet consumed",
                           ["service", "consumer", "topic", "partition"], registry=reg),
        kafka_up=Gauge("bbi_worker_kafka_up", "1 when the worker's last Kafka call succeeded",
                       ["service"], registry=reg),
        last_applied=Gauge("bbi_consumer_last_applied_timestamp_seconds",
                           "Unix time the consumer last applied an event",
                           ["service", "consumer"], registry=reg),
    )
