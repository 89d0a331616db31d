"""The public registration rate limit on both backends (on PostgreSQL the counting upsert runs
in autocommit, one round trip): exact under concurrency, per client, per window."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa

from services.common.config import Settings
from services.common.db.engine import make_engine
from services.common.db.migrations import upgrade
from services.registration import ratelimit
from services.registration.store import rate_limits


def test_limit_is_exact_under_concurrency_and_per_client(db_url: str) -> None:
    upgrade("registration", db_url)
    engine = make_engine(db_url)
    settings = Settings.from_env("registration", database_url=db_url)
    now = 1_700_000_050.0  # 10 s into a 60 s window (which starts at ...040)

    def hit(client: str) -> int | None:
        return ratelimit.hit(engine, settings, client, 150, 60, now=now)

    with ThreadPoolExecutor(8) as pool:
        waits = list(pool.map(hit, ["10.0.0.1"] * 200))
    assert sum(w is None for w in waits) == 150  # no lost update, no double count
    assert {w for w in waits if w is not None} == {50}  # seconds left in the window
    assert hit("10.0.0.2") is None  # another client has its own counter
    assert ratelimit.hit(engine, settings, "10.0.0.1", 150, 60, now=now + 60) is None
    with engine.connect() as conn:
        counts = sorted(conn.execute(sa.select(rate_limits.c.hits)).scalars())
        keys = conn.execute(sa.select(rate_limits.c.client_key)).scalars().all()
    assert counts == [1, 1, 200]
    assert all("10.0.0" not in k for k in keys)  # addresses are stored hashed
    engine.dispose()
