"""Every service's migrations (SQLite and PostgreSQL) create the shared plumbing tables exactly
as the models declare them (services/common/db/plumbing.py, engine.new_metadata), metrics
without an outbox; and every history goes down to nothing and up again."""
from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from services.common.db.engine import make_engine, new_metadata
from services.common.db.migrations import alembic_config, upgrade

SERVICES = ["registration", "training", "campaign", "metrics"]
PUBLISHES = {"registration", "training", "campaign"}


def _diff(engine: sa.Engine, md: sa.MetaData) -> list[object]:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return [d for d in compare_metadata(ctx, md)
                if any(t in repr(d) for t in (*md.tables, "outbox"))]


@pytest.mark.parametrize("service", SERVICES)
def test_migrated_plumbing_tables_match_the_models(db_url: str, service: str) -> None:
    upgrade(service, db_url)
    engine = make_engine(db_url)
    try:
        assert _diff(engine, new_metadata(outbox=service in PUBLISHES)) == []
        assert ("outbox" in sa.inspect(engine).get_table_names()) == (service in PUBLISHES)
    finally:
        engine.dispose()


@pytest.mark.parametrize("service", SERVICES)
def test_history_downgrades_to_nothing_and_upgrades_again(db_url: str, service: str) -> None:
    upgrade(service, db_url)
    command.downgrade(alembic_config(service, db_url), "base")
    engine = make_engine(db_url)
    try:
        left = set(sa.inspect(engine).get_table_names()) - {"alembic_version"}
        assert left == set()
        if engine.dialect.name == "postgresql":  # the audit log's trigger function too
            with engine.connect() as conn:
                assert conn.exec_driver_sql(
                    "SELECT count(*) FROM pg_proc WHERE proname = 'audit_log_append_only'"
                ).scalar_one() == 0
    finally:
        engine.dispose()
    upgrade(service, db_url)
