"""Worker memory: peak RSS (VmHWM) and RSS of every service's real worker process
(`python -m services.<svc>.worker`, as in production and tests/e2e/stack.py) at growing
event counts, against the real broker and PostgreSQL. Flat means no per-event state.

What flows: the realistic stream of bench.metrics_apply (UMKM lifecycle, training seats,
campaign purchases) is written as outbox rows into the registration, training and campaign
databases (by owning topic); their relays publish it; the training and campaign UMKM-directory
consumers and the metrics consumer apply it. Each checkpoint waits until every outbox is
empty and every consumer's stored offsets reach the topics' end offsets, then reads
/proc/<pid>/status. Events arrive in steps of n/16, each drained before the next, so the
backlog (and with it the consumers' fetch buffers) stays bounded as in steady production
traffic. `runs` is not used: one pass, memory is not a noisy figure."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa
from kafka import KafkaConsumer, TopicPartition

from bench.common import Row
from bench.metrics_apply import iter_stream
from devtools import local_kafka
from devtools.local_postgres import create_database
from services.common.config import REPO_ROOT
from services.common.db.engine import make_engine, new_metadata, utcnow
from services.common.db.migrations import upgrade
from services.common.messaging import contracts

DEFAULT_N = 200_000
SERVICES = ("registration", "training", "campaign", "metrics")
OWNER = {contracts.TOPIC_UMKM: "registration", contracts.TOPIC_TRAINING: "training",
         contracts.TOPIC_CAMPAIGN: "campaign"}


def run(kafka: str, pg_url: str, n: int = DEFAULT_N, runs: int = 1) -> list[Row]:
    tag = uuid.uuid4().hex[:6]
    prefix = f"wm{tag}."
    pg_base = pg_url.rsplit("/", 1)[0]
    urls = {s: create_database(pg_base, f"bench_wm_{tag}_{s}") for s in SERVICES}
    for s, url in urls.items():
        upgrade(s, url)
    engines = {s: make_engine(u) for s, u in urls.items()}
    local_kafka.ensure_topics(kafka, {prefix + t: c for t, c in contracts.TOPIC_CONFIGS.items()},
                              partitions=6, replication=1)
    logdir = Path(tempfile.mkdtemp(prefix="bbi-bench-wm-"))
    env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=kafka, BBI_TOPIC_PREFIX=prefix,
               BBI_LOG_LEVEL="WARNING", PYTHONUNBUFFERED="1",
               **{f"{s.upper()}_DATABASE_URL": u for s, u in urls.items()})
    procs = {s: subprocess.Popen(
        [sys.executable, "-m", f"services.{s}.worker"], cwd=REPO_ROOT,
        env=dict(env, WORKER_METRICS_PORT=str(_free_port())),
        stdout=open(logdir / f"{s}.log", "ab"), stderr=subprocess.STDOUT)  # noqa: SIM115
        for s in SERVICES}
    sizes = sorted({max(1, n // 8), max(1, n // 4), max(1, n // 2), n})
    seen: dict[str, list[tuple[int, int]]] = {s: [] for s in SERVICES}  # (hwm kB, rss kB)
    kc = KafkaConsumer(bootstrap_servers=kafka, enable_auto_commit=False)
    try:
        time.sleep(3)  # the workers join their groups
        stream = iter_stream(n)
        fed, t0 = 0, time.perf_counter()
        step = max(1, n // 16)
        for size in sizes:
            while fed < size:  # steady arrivals: a bounded backlog, as in production
                k = _feed(engines, prefix, stream, min(step, size - fed))
                fed += k
                _wait_drained(engines, kc, prefix, procs, timeout=120 + k / 20)
            for s, p in procs.items():
                seen[s].append(_memory_kb(p.pid))
            print(f"worker_memory: {size:,} events drained at {time.perf_counter() - t0:.0f} s; "
                  + ", ".join(f"{s} peak {seen[s][-1][0] / 1024:.1f} / now "
                              f"{seen[s][-1][1] / 1024:.1f} MiB" for s in SERVICES),
                  file=sys.stderr, flush=True)
    finally:
        kc.close()
        for p in procs.values():
            p.terminate()
        for p in procs.values():
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        for e in engines.values():
            e.dispose()
    return [Row(f"worker memory: {s}",
                f"peak RSS MiB (VmHWM) after {sizes[-1]:,} events; runs = at "
                + " / ".join(f"{x:,}" for x in sizes),
                seen[s][-1][0] / 1024, f"after {sizes[0]:,} events", seen[s][0][0] / 1024,
                "flat", [h / 1024 for h, _ in seen[s]], [r / 1024 for _, r in seen[s]])
            for s in SERVICES]


def _feed(engines: dict[str, sa.Engine], prefix: str, stream: object, k: int) -> int:
    """Write the next k events as outbox rows of the service that owns each topic."""
    rows: dict[str, list[dict[str, object]]] = {s: [] for s in OWNER.values()}
    for _ in range(k):  # k is at most n/16: a few MB of rows
        topic, key, value = next(stream)  # type: ignore[call-overload]
        head = json.loads(value)
        rows[OWNER[topic]].append({"topic": prefix + topic, "key": key.decode(),
                                   "event_id": head["id"], "event_type": head["type"],
                                   "payload": value, "created_at": utcnow()})
    outbox = new_metadata().tables["outbox"]
    for s, batch in rows.items():
        if batch:
            with engines[s].begin() as conn:
                conn.execute(outbox.insert(), batch)
    return k


def _wait_drained(engines: dict[str, sa.Engine], kc: KafkaConsumer, prefix: str,
                  procs: dict[str, subprocess.Popen[bytes]], timeout: float) -> None:
    """Until every outbox is empty and every consumer stored the topics' end offsets."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for s, p in procs.items():
            if p.poll() is not None:
                raise RuntimeError(f"{s} worker exited with {p.returncode}")
        if all(_pending(engines[s]) == 0 for s in OWNER.values()) and all(
                _consumed(engines[s], kc, prefix) for s in SERVICES):
            return
        time.sleep(0.5)
    raise RuntimeError(f"workers did not drain within {timeout:.0f} s")


def _pending(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.exec_driver_sql(
            "SELECT count(*) FROM outbox WHERE state = 'pending'").scalar_one())


def _consumed(engine: sa.Engine, kc: KafkaConsumer, prefix: str) -> bool:
    """Every consumer in this database has stored the end offset of each partition it reads."""
    with engine.connect() as conn:
        stored = conn.exec_driver_sql(
            "SELECT consumer, topic, partition, next_offset FROM consumer_offsets").all()
    by_consumer: dict[str, dict[tuple[str, int], int]] = {}
    for c, t, p, off in stored:
        by_consumer.setdefault(c, {})[(t, p)] = off
    topics = {"training": [contracts.TOPIC_UMKM], "campaign": [contracts.TOPIC_UMKM],
              "metrics": list(contracts.DOMAIN_TOPICS)}
    wanted = [prefix + t for t in topics.get(_service_of(engine), [])]
    if not wanted:
        return True
    tps = [TopicPartition(t, p) for t in wanted for p in (kc.partitions_for_topic(t) or ())]
    ends = kc.end_offsets(tps)
    if not by_consumer:
        return sum(ends.values()) == 0
    return all(offs.get((tp.topic, tp.partition), 0) >= ends[tp]
               for offs in by_consumer.values() for tp in tps)


def _service_of(engine: sa.Engine) -> str:
    name = engine.url.database or ""
    return name.rsplit("_", 1)[-1]


def _memory_kb(pid: int) -> tuple[int, int]:
    """(VmHWM, VmRSS) in kB from /proc/<pid>/status."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            values[key] = int(rest.split()[0])
    return values["VmHWM"], values["VmRSS"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
