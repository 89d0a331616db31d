"""Alembic wiring: every service has its own history under services/<name>/migrations."""
from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from services.common.db import make_engine

SERVICES_DIR = Path(__file__).resolve().parents[1]


def alembic_config(service: str, url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(SERVICES_DIR / service / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["service"] = service
    return cfg


def upgrade(service: str, url: str, revision: str = "head") -> None:
    """Apply the service's migrations to the database at `url`."""
    make_engine(url).dispose()  # creates the SQLite directory when needed
    command.upgrade(alembic_config(service, url), revision)


def run_env(target_metadata: sa.MetaData) -> None:
    """The body of each service's migrations/env.py (online mode only)."""
    from alembic import context

    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("alembic: sqlalchemy.url is not set (bbi db upgrade sets it)")
    engine = make_engine(url)
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=target_metadata,
                          render_as_batch=engine.dialect.name == "sqlite",
                          compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()
