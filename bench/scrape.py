"""Scrape time: GET /metrics on the metrics web app after 1k events vs after 1M (scaled).

How the state is produced (no Kafka, said so in the notes): the events of bench.metrics_apply's
realistic stream (38 provinces once past ~40k events) go through the real BatchApplier
(parse, dedupe, fold, UPSERTs, processed ids, offsets) in batches of the consumer's
max_poll_records, as Kafka records of partition 0, into PostgreSQL. /metrics is requested
through the real Flask app (create_app) with its test client: the app's whole request path,
without an HTTP server in front."""
from __future__ import annotations

import statistics
import sys
import time
from collections import namedtuple
from collections.abc import Iterator

from bench.common import Row
from bench.metrics_apply import iter_stream
from services.common.config import Settings
from services.common.db.engine import make_engine
from services.common.db.migrations import upgrade
from services.common.messaging.consumer import BatchApplier
from services.metrics import store
from services.metrics.app import create_app
from services.metrics.consumer import consumers

DEFAULT_N = 1_000_000
FIRST = 1_000
SCRAPES = 20  # per round; the median of a round is one figure
Rec = namedtuple("Rec", "topic partition offset key value")


def run(kafka: str, pg_url: str, n: int = DEFAULT_N, runs: int = 3) -> list[Row]:
    upgrade("metrics", pg_url)
    engine = make_engine(pg_url)
    settings = Settings.from_env("metrics", database_url=pg_url, kafka_bootstrap_servers=kafka)
    client = create_app(settings, engine).test_client()
    c = consumers()[0]
    applier = BatchApplier(engine, store.metadata, c)
    batch = settings.consumer_max_poll_records
    records = _records(n)
    applied, at, cpu, series = 0, {}, {}, {}
    # 1k (the target's baseline), n/5 (label cardinality already saturated) and n.
    sizes = sorted({min(FIRST, n), max(1, n // 5), n})
    t0 = time.perf_counter()
    for size in sizes:
        while applied < size:
            chunk = [next(records) for _ in range(min(batch, size - applied))]
            applier.apply(chunk, lambda dead: None)
            applied += len(chunk)
        timed = [_scrape_ms(client) for _ in range(runs)]
        at[size], cpu[size] = [w for w, _ in timed], [c for _, c in timed]
        with engine.connect() as conn:
            series[size] = len(store.read_values(conn))
        print(f"scrape: {applied:,} events applied in {time.perf_counter() - t0:.0f} s, "
              f"{series[size]:,} aggregate rows, scrape {statistics.median(at[size]):.1f} ms "
              f"({statistics.median(cpu[size]):.1f} ms CPU)",
              file=sys.stderr, flush=True)
    if c.stats["deadlettered"] or c.stats["applied"] != n:
        raise RuntimeError(f"the applier did not apply every event: {c.stats}")
    engine.dispose()
    first, mid = min(FIRST, n), max(1, n // 5)
    return [
        Row("metrics /metrics scrape", f"ms per scrape after {n:,} events "
            f"({series[n]:,} aggregate rows)", statistics.median(at[n]),
            f"after {first:,} events, {series[first]:,} rows", statistics.median(at[first]),
            "< 1.5x", at[n], at[first]),
        Row("metrics /metrics scrape, same cardinality", f"ms per scrape after {n:,} events",
            statistics.median(at[n]), f"after {mid:,} events, {series[mid]:,} rows",
            statistics.median(at[mid]), "flat", at[n], at[mid]),
        Row("metrics /metrics scrape, CPU", f"CPU ms per scrape after {n:,} events",
            statistics.median(cpu[n]), f"after {first:,} events", statistics.median(cpu[first]),
            "< 1.5x", cpu[n], cpu[first]),
    ]


def _records(n: int) -> Iterator[Rec]:
    """The stream as partition-0 records with consecutive offsets per topic."""
    offsets: dict[str, int] = {}
    for topic, key, value in iter_stream(n):
        off = offsets.get(topic, 0)
        offsets[topic] = off + 1
        yield Rec(topic, 0, off, key, value)


def _scrape_ms(client: object) -> tuple[float, float]:
    """Medians of SCRAPES GET /metrics: (wall ms, CPU ms of this thread). CPU time is the
    steadier figure on a shared machine; the database's share is not in it."""
    wall, cpu = [], []
    for _ in range(SCRAPES):
        t, c = time.perf_counter(), time.thread_time()
        resp = client.get("/metrics")  # type: ignore[attr-defined]
        wall.append((time.perf_counter() - t) * 1000)
        cpu.append((time.thread_time() - c) * 1000)
        if resp.status_code != 200 or b"bbi_umkm_registered" not in resp.data:
            raise RuntimeError(f"/metrics answered {resp.status_code}")
    return statistics.median(wall), statistics.median(cpu)


