"""The registration worker: the outbox relay (this service consumes no events)."""
from __future__ import annotations

import os

from sqlalchemy.engine import Engine

from services.common.config import Settings
from services.common.db.engine import make_engine
from services.common.messaging.worker import Worker
from services.registration.config import WORKER_METRICS_PORT, load_settings
from services.registration.store import metadata


def build_worker(settings: Settings | None = None, engine: Engine | None = None) -> Worker:
    """Relay only: registration publishes bbi.umkm and reads no topic."""
    settings = settings or load_settings()
    return Worker(settings, engine or make_engine(settings.database_url), metadata, [])


def main() -> None:
    port = int(os.environ.get("WORKER_METRICS_PORT") or WORKER_METRICS_PORT)
    build_worker().run(metrics_port=port)


if __name__ == "__main__":
    main()
