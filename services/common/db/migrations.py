"""Alembic wiring: every service has its own history under services/<name>/migrations."""
from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from services.common.db.engine import make_engine

SERVICES_DIR = Path(__file__).resolve().parents[2]


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


def main(argv: list[str] | None = None) -> int:
    """`python -m services.common.db.migrations SERVICE...`: upgrade each named service's
    database (its URL from the environment, as the service reads it) to head. This is the
    production migration Job's command; the `bbi` developer CLI calls `upgrade` the same way."""
    import sys

    from services.common.config import Settings

    names = sys.argv[1:] if argv is None else argv
    if not names:
        print("usage: python -m services.common.db.migrations SERVICE...", file=sys.stderr)
        return 2
    for name in names:
        if not (SERVICES_DIR / name / "migrations").is_dir():
            print(f"{name}: no migrations under services/{name}/", file=sys.stderr)
            return 2
        upgrade(name, Settings.from_env(name).database_url)
        print(f"{name}: at head")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
