"""The metrics worker: the aggregate consumer (no outbox: metrics publishes nothing), whose
lag the worker also stores in the database so the web process can serve it."""

from __future__ import annotations

import os

from sqlalchemy.engine import Connection, Engine

from services.common.config import Settings
from services.common.db.engine import make_engine
from services.common.messaging.worker import Worker
from services.metrics import store
from services.metrics.config import WORKER_METRICS_PORT, load_settings, metrics_settings
from services.metrics.consumer import consumers
from services.metrics.store import metadata


def store_lag(conn: Connection, consumer: str, lags: dict[tuple[str, int], int]) -> None:
    """The worker's lag reading, kept for /metrics of the web process."""
    store.write_lag(conn, lags)


def build_worker(settings: Settings | None = None, engine: Engine | None = None) -> Worker:
    """The metrics worker process, wired."""
    s = metrics_settings(settings or load_settings())
    return Worker(
        s, engine or make_engine(s.database_url), metadata, consumers(), relay=False,
        lag_interval_s=s.lag_interval_seconds, lag_sink=store_lag,
    )


def main() -> None:
    port = int(os.environ.get("WORKER_METRICS_PORT") or WORKER_METRICS_PORT)
    build_worker().run(metrics_port=port)


if __name__ == "__main__":
    main()
