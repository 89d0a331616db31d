"""Metrics aggregation: events/s applied by the real metrics consumer (ConsumerRunner +
the metrics Consumer on PostgreSQL, wired by services.common.messaging.worker.make_runner as
the worker runs it) from topics pre-filled with a realistic mixed stream, against a raw
kafka-python consume loop (same make_consumer settings: max_poll_records, fetch sizes) over
the same topics.

The clock starts after the first non-empty poll on both sides, so group join and the first
fetch (identical for both) are not in the figure; the rate is over the remaining events."""
from __future__ import annotations

import re
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from kafka import TopicPartition
from kafka.structs import OffsetAndMetadata

from bench.common import Row
from devtools.local_postgres import create_database
from services.common.config import Settings
from services.common.db.engine import make_engine
from services.common.db.migrations import upgrade
from services.common.messaging import contracts
from services.common.messaging import topics as kafka_topics
from services.common.messaging.kafka_clients import make_consumer, make_producer
from services.common.messaging.worker import make_runner
from services.common.reference import provinces
from services.metrics import store
from services.metrics.consumer import consumers
from tests.fixtures.metrics_sample import mixed_stream

DEFAULT_N = 50_000
BASE_UMKM = 200  # one block of mixed_stream (~900 events), cloned with fresh ids
_UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_PROVINCE = re.compile(rb'"province_code":"(\d\d)"')


def iter_stream(n: int, seed: int = 8) -> Iterator[tuple[str, bytes, bytes]]:
    """n (topic, key, value) of the realistic mix: blocks of tests.fixtures.metrics_sample's
    mixed_stream (registrations and their lifecycle, a webinar's seats, two campaigns), each
    copy with every UUID's first 8 hex digits set to the copy number, so every block has its
    own businesses, sessions, campaigns and event ids, and provinces spread over all 38 from
    the first block (registrations of a national rollout come from everywhere at once: the
    base block's 6 provinces shifted by copy number and by the entity's key). Validated once
    (the base block), then cloned as bytes: 1M events in seconds instead of minutes."""
    base = [(e.topic, e.key.encode(), e.to_bytes()) for e in mixed_stream(BASE_UMKM, seed=seed)]
    codes = [p.encode() for p in sorted(provinces())]
    index = {c: i for i, c in enumerate(codes)}
    sent, copy = 0, 0
    while sent < n:
        prefix = b"%08x" % copy

        def fresh(m: re.Match[bytes], prefix: bytes = prefix) -> bytes:
            return prefix + m.group(0)[8:]

        for topic, key, value in base:
            if sent == n:
                return
            shift = copy + int(key[9:11] or b"0", 16)  # the same for every event of one key

            def rotate(m: re.Match[bytes], shift: int = shift) -> bytes:
                code = codes[(index[m.group(1)] + shift) % len(codes)]
                return b'"province_code":"' + code + b'"'

            yield topic, _UUID.sub(fresh, key), _PROVINCE.sub(rotate, _UUID.sub(fresh, value))
            sent += 1
        copy += 1


def fill_topics(kafka: str, prefix: str, n: int, partitions: int = 6) -> None:
    """Create the domain topics under `prefix` and produce n events, keyed like the relay."""
    topics = {prefix + t: cfg for t, cfg in contracts.TOPIC_CONFIGS.items()}
    kafka_topics.ensure_topics(kafka, topics, partitions=partitions, replication=1)
    # Retries beyond the relay's 5: a broker just started may still be electing leaders.
    producer = make_producer(Settings.from_env("bench", kafka_bootstrap_servers=kafka),
                             retries=100)
    futures = []
    for topic, key, value in iter_stream(n):
        futures.append(producer.send(prefix + topic, key=key, value=value))
        if len(futures) >= 10_000:
            _confirm(producer, futures)
    _confirm(producer, futures)
    producer.close()


def _confirm(producer: Any, futures: list[Any]) -> None:
    producer.flush()
    for f in futures:
        f.get(30)
    futures.clear()


def run(kafka: str, pg_url: str, n: int = DEFAULT_N, runs: int = 3) -> Row:
    prefix = f"bm{uuid.uuid4().hex[:6]}."
    fill_topics(kafka, prefix, n)
    pg_base = pg_url.rsplit("/", 1)[0]

    def applier_once() -> float:
        url = create_database(pg_base, f"bench_metrics_{uuid.uuid4().hex[:8]}")
        upgrade("metrics", url)
        engine = make_engine(url)
        settings = Settings.from_env("metrics", database_url=url, kafka_bootstrap_servers=kafka,
                                     topic_prefix=prefix)
        c = consumers()[0]
        c.name = f"bench-{uuid.uuid4().hex[:8]}"  # a fresh group and fresh stored offsets
        runner = make_runner(settings, engine, store.metadata, c)
        try:
            rate = _timed(n, lambda: runner.poll_once(timeout_ms=1000))
        finally:
            runner.close()
            engine.dispose()
        if c.stats["applied"] + c.stats["deadlettered"] != n or c.stats["deadlettered"]:
            raise RuntimeError(f"metrics consumer did not apply every event: {c.stats}")
        return rate

    def raw_once() -> float:
        settings = Settings.from_env("bench", kafka_bootstrap_servers=kafka)
        consumer = make_consumer(settings, f"raw-{uuid.uuid4().hex[:8]}",
                                 [prefix + t for t in contracts.DOMAIN_TOPICS])

        def poll() -> int:
            batches = consumer.poll(timeout_ms=1000)
            count = sum(len(v) for v in batches.values())
            if count:  # the same commit per poll as the runner
                consumer.commit({TopicPartition(tp.topic, tp.partition):
                                 OffsetAndMetadata(recs[-1].offset + 1, "", -1)
                                 for tp, recs in batches.items()})
            return count

        try:
            return _timed(n, poll)
        finally:
            consumer.close()

    vruns, cruns = [], []
    for _ in range(runs):  # alternate, so a burst of load on the shared machine hits both
        vruns.append(applier_once())
        cruns.append(raw_once())
    return Row("metrics aggregation", f"events/s, {n:,} mixed events", statistics.median(vruns),
               "raw kafka-python consume loop", statistics.median(cruns), ">= 0.4x",
               vruns, cruns)


def _timed(n: int, poll: Callable[[], int], timeout_s: float = 600) -> float:
    """Events/s over the events after the first non-empty poll."""
    deadline = time.monotonic() + timeout_s
    got = 0
    while got == 0:
        got = poll()
        if time.monotonic() > deadline:
            raise RuntimeError("no events arrived")
    first, t0 = got, time.perf_counter()
    while got < n:
        got += poll()
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {got} of {n} events within {timeout_s} s")
    return (n - first) / (time.perf_counter() - t0)


def main() -> int:
    """`python -m bench.metrics_apply [n] [runs]`: this benchmark alone, on the test servers
    (BBI_TEST_KAFKA / BBI_TEST_POSTGRES or fresh ones), printing its row (BENCHMARKS.md is
    left alone; `python -m bench.run metrics_apply` rewrites it)."""
    import sys

    from devtools import testing_infra

    n = int(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_N
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    pg = testing_infra.postgres_for_tests()
    url = create_database(pg, f"bench_metrics_apply_{uuid.uuid4().hex[:8]}")
    row = run(testing_infra.kafka_for_tests(), url, n=n, runs=runs)
    print(f"{row.path}: {row.value:,.0f} {row.figure} (runs {[round(v) for v in row.runs]}); "
          f"ceiling {row.ceiling:,.0f} (runs {[round(v) for v in row.ceiling_runs]}); "
          f"ratio {row.ratio:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
