"""Public registration (POST /v1/umkm) through gunicorn on PostgreSQL with the outbox relay
running, against a bare-Flask ceiling (same gunicorn settings, same two rows, one raw SQL
transaction) measured in the same run. Load: wrk + bench/wrk/register.lua (a unique valid
registration per request). Notes: bench/notes/registration_http.md."""
from __future__ import annotations

import statistics
import time

import sqlalchemy as sa

from bench.common import Row
from bench.http_stack import WrkResult, meters, new_stack, paced, wrk
from services.common.db.engine import make_engine

DEFAULT_N = 10  # seconds of each measured wrk run (--scale shrinks/grows it)
CONNECTIONS = 16  # enough to keep every gunicorn thread busy (2 workers x 4 threads)
HALF_CONNECTIONS = 8


def _count(url: str, table: str) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())
    finally:
        engine.dispose()


def _wait_outbox_drained(url: str, timeout: float = 60) -> float:
    """Seconds until the relay has published every staged event (it must keep up)."""
    t0 = time.monotonic()
    while _count(url, "outbox") > 0:
        if time.monotonic() - t0 > timeout:
            raise RuntimeError("outbox relay did not drain the outbox")
        time.sleep(0.2)
    return time.monotonic() - t0


def run(kafka: str, pg_url: str, n: int = DEFAULT_N, runs: int = 3) -> list[Row]:
    stack = new_stack(kafka, pg_url, ("registration",), "registration-http")
    try:
        stack.start()
        ceiling_url = stack.start_ceiling()
        reg_url = stack.url("registration")
        db = stack.env["REGISTRATION_DATABASE_URL"]
        reg_meters = meters(stack, "registration_web", db, "registration_worker")
        ceiling_meters = meters(stack, "ceiling_web", stack.ceiling_db)
        wrk(ceiling_url, 2, CONNECTIONS)  # warm both: connection pools, imports, caches
        wrk(reg_url, 2, CONNECTIONS)
        sustained: list[WrkResult] = []
        ceilings: list[WrkResult] = []
        halves: list[WrkResult] = []
        drains: list[float] = []
        for _ in range(runs):
            ceilings.append(wrk(ceiling_url, n, CONNECTIONS, meters=ceiling_meters))
            before = _count(db, "umkm")
            res = wrk(reg_url, n, CONNECTIONS, meters=reg_meters)
            # Every answered 201 is a committed row (in-flight ones at the end may add more).
            if _count(db, "umkm") - before < res.requests:
                raise RuntimeError("fewer rows than 201 answers")
            sustained.append(res)
            drains.append(_wait_outbox_drained(db))
            halves.append(paced(reg_url, res.rate / 2, n, HALF_CONNECTIONS))
            _wait_outbox_drained(db)
    finally:
        stack.stop()
    rates = [r.rate for r in sustained]
    crates = [r.rate for r in ceilings]
    half_rate = statistics.median(r.rate for r in halves)
    rows = [Row("public registration (gunicorn 2x4, PostgreSQL, relay on)",
                f"req/s sustained, {CONNECTIONS} connections, {n} s",
                statistics.median(rates), "bare Flask + raw SQL, same gunicorn",
                statistics.median(crates), ">= 0.6x and >= 800/s", rates, crates)]
    for q in ("p50", "p95", "p99"):
        vals = [getattr(r, f"{q}_ms") for r in halves]
        rows.append(Row("public registration", f"{q} ms at half rate (~{half_rate:,.0f} req/s)",
                        statistics.median(vals), "", None,
                        "p99 < 100 ms" if q == "p99" else "—", vals, []))
    for part, what in (("web", "gunicorn workers"), ("db", "PostgreSQL backends")):
        vals = [r.cpu_ms[part] for r in sustained]
        cvals = [r.cpu_ms[part] for r in ceilings]
        rows.append(Row("public registration", f"CPU ms per request, {what} (lower is better)",
                        statistics.median(vals), "ceiling's", statistics.median(cvals), "—",
                        vals, cvals))
    vals = [r.cpu_ms["worker"] for r in sustained]
    rows.append(Row("outbox relay (registration worker)", "CPU ms per registration",
                    statistics.median(vals), "", None, "—", vals, []))
    vals = [r.p99_ms for r in sustained]
    rows.append(Row("public registration", "p99 ms at the sustained rate",
                    statistics.median(vals), "", None, "—", vals, []))
    vals = [r.p99_ms for r in ceilings]
    rows.append(Row("ceiling (bare Flask)", "p99 ms at its sustained rate",
                    statistics.median(vals), "", None, "—", vals, []))
    rows.append(Row("outbox relay after the burst", "s to drain the outbox after each run",
                    statistics.median(drains), "", None, "—", drains, []))
    return rows


if __name__ == "__main__":
    import sys

    from bench.common import table
    from devtools import testing_infra
    from devtools.local_postgres import create_database

    pg = create_database(testing_infra.postgres_for_tests(), f"bench_rh_{int(time.time())}")
    n = int(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_N
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    print(table(run(testing_infra.kafka_for_tests(), pg, n, runs)))
