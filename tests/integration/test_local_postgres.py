"""The PostgreSQL server the integration tests rely on."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from devtools import local_postgres, testing_infra

pytestmark = pytest.mark.postgres


def test_create_database_and_select_one() -> None:
    base_url = testing_infra.postgres_for_tests()
    assert base_url.startswith("postgresql+psycopg://")

    url = local_postgres.create_database(base_url, "bbi_infra_check")
    assert url.endswith("/bbi_infra_check")
    # Creating it again is a no-op, not an error.
    assert local_postgres.create_database(base_url, "bbi_infra_check") == url

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("select 1")).scalar_one() == 1
            assert conn.execute(sa.text("select current_database()")).scalar_one() == (
                "bbi_infra_check"
            )
    finally:
        engine.dispose()
