"""The training worker: outbox relay plus the UMKM read-model consumer."""
from __future__ import annotations

import os

from sqlalchemy.engine import Engine

from services.common.config import Settings
from services.common.db.engine import make_engine
from services.common.messaging.worker import Worker
from services.training.config import WORKER_METRICS_PORT, load_settings
from services.training.consumer import consumers
from services.training.store import metadata


def build_worker(settings: Settings | None = None, engine: Engine | None = None) -> Worker:
    """Wire the worker; Kafka clients are created lazily in its threads."""
    s = settings or load_settings()
    return Worker(s, engine or make_engine(s.database_url), metadata, consumers(s))


def main() -> None:
    """Run until SIGTERM/SIGINT."""
    port = int(os.environ.get("WORKER_METRICS_PORT") or WORKER_METRICS_PORT)
    build_worker().run(metrics_port=port)


if __name__ == "__main__":
    main()
