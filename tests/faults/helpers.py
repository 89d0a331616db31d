"""Small helpers of the fault tests: scrape /metrics, read a topic to its end, produce events,
poll until a condition holds, see that a consumer has stored the end of every partition."""
from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, TypeVar

import httpx
import sqlalchemy as sa
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from services.common.db.engine import make_engine
from services.common.messaging.events import Event
from tests.e2e.stack import Stack, eventually  # noqa: F401 - re-exported for the fault tests

T = TypeVar("T")
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str) -> Samples:
    """Every sample of a /metrics page, keyed by (name, labels)."""
    out: Samples = {}
    text = httpx.get(url, timeout=15).text
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum of a metric over every series whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for (n, lb), v in samples.items() if n == name and want <= lb)


def read_topic(bootstrap: str, topic: str, timeout: float = 60.0) -> list[Any]:
    """Every record of a topic, from the beginning to the end offsets seen at the start."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             request_timeout_ms=30_000)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic)
                                                        or ())]
        if not tps:
            return []
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        out: list[Any] = []
        deadline = time.monotonic() + timeout
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {topic}: {len(out)} records after {timeout}s")
            for recs in consumer.poll(timeout_ms=500).values():
                out.extend(recs)
        return out
    finally:
        consumer.close()


def produce(bootstrap: str, prefix: str, events: Iterable[Event]) -> int:
    """Send events to their topics (keyed like the outbox does) and confirm every one."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20,
                             batch_size=512 * 1024, max_in_flight_requests_per_connection=5)
    n = 0
    try:
        futures = []
        for e in events:
            futures.append(producer.send(prefix + e.topic, key=e.subject.encode(),
                                         value=e.to_bytes()))
            n += 1
        producer.flush(timeout=120)
        for f in futures:
            f.get(timeout=60)  # flush() returning proves nothing: each send must be acked
    finally:
        producer.close(timeout=10)
    return n


def applied(stack: Stack) -> int:
    """Events the metrics service has applied (its aggregate counter, all types)."""
    return int(total(scrape(stack.url("metrics", "/metrics")), "bbi_metrics_events_applied_total"))


def drained(bootstrap: str, stack: Stack, service: str, consumer: str,
            topics: Iterable[str]) -> None:
    """Assert that `consumer` of `service` has stored (in its database, with the effects) the
    end offset of every partition of its topics: it has applied all there is, and nothing can
    be applied later (no late second copy). Poll it with eventually()."""
    kafka = KafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=30_000)
    try:
        tps = [TopicPartition(stack.prefix + t, p) for t in topics
               for p in sorted(kafka.partitions_for_topic(stack.prefix + t) or ())]
        ends = kafka.end_offsets(tps)
    finally:
        kafka.close()
    engine = make_engine(stack.env[f"{service.upper()}_DATABASE_URL"])
    try:
        with engine.connect() as conn:
            o = sa.table("consumer_offsets", sa.column("consumer"), sa.column("topic"),
                         sa.column("partition"), sa.column("next_offset"))
            stored = {(r.topic, r.partition): r.next_offset for r in conn.execute(
                sa.select(o.c.topic, o.c.partition, o.c.next_offset)
                .where(o.c.consumer == consumer))}
    finally:
        engine.dispose()
    behind = {f"{tp.topic}:{tp.partition}": (stored.get((tp.topic, tp.partition), 0), end)
              for tp, end in ends.items() if stored.get((tp.topic, tp.partition), 0) != end}
    assert not behind, f"{consumer} stored offsets (stored, end): {behind}"


def group_members(bootstrap: str, group: str) -> tuple[str, list[list[str]]]:
    """A consumer group's state and, per member, the "topic:partition"s assigned to it."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30_000)
    try:
        g = admin.describe_groups([group])[group]
    finally:
        admin.close()
    return g["group_state"], [
        [f"{a['topic']}:{p}" for a in (m["member_assignment"] or {}).get(
            "assigned_partitions", []) for p in a["partitions"]] for m in g["members"]]


def outbox_empty(stack: Stack, service: str) -> None:
    """Assert that no outbox row of `service` waits to be published (parked rows, which are
    never retried, are counted by the tests themselves)."""
    engine = make_engine(stack.env[f"{service.upper()}_DATABASE_URL"])
    try:
        with engine.connect() as conn:
            n = conn.execute(sa.text("SELECT count(*) FROM outbox WHERE state = 'pending'"))
            pending = n.scalar_one()
    finally:
        engine.dispose()
    assert pending == 0, f"{service}: {pending} outbox rows not published yet"


def settled(bootstrap: str, stack: Stack,
            publishers: tuple[str, ...] = ("registration", "training", "campaign")) -> None:
    """Assert that nothing is left to happen: every outbox published and the metrics consumer
    at the end of every partition. Counted after this, nothing late can change the counts."""
    from services.metrics.consumer import CONSUMER_NAME, TOPICS

    for s in publishers:
        outbox_empty(stack, s)
    drained(bootstrap, stack, "metrics", CONSUMER_NAME, TOPICS)


def answered_since(traffic: Any, t: float, status: int | None = None) -> int:
    """Requests of a Traffic started at or after `t` (its clock) that got an answer (of
    `status`, if given); for schedules that wait for traffic instead of sleeping."""
    return sum(1 for x in list(traffic.calls) if x.t >= t and x.status != 0
               and (status is None or x.status == status))
