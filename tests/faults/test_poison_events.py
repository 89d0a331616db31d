"""Fault 4: poison events on every domain topic, read by every consumer group as real worker
processes. Each poison lands in the dead-letter topic once per consumer that reads the topic,
with its reason; the good event behind it (same key, so same partition, later offset) is
applied; the dead-letter counters of the workers and of the metrics service count them."""
from __future__ import annotations

import json
import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from kafka import KafkaProducer

from services.common.db.engine import make_engine
from services.common.messaging import contracts as c
from tests.e2e.stack import Stack
from tests.faults.helpers import drained, eventually, read_topic, scrape, total
from tests.faults.results import Outcome
from tests.fixtures.metrics_sample import NOW, ev, registered

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

# Who reads what (services/*/consumer.py): the metrics group reads every domain topic; the
# training and campaign read models read bbi.umkm. bbi.deadletter itself has no consumer.
READERS = {
    c.TOPIC_UMKM: ("metrics-aggregates", "training-umkm-directory", "campaign-umkm-directory-v2"),
    c.TOPIC_TRAINING: ("metrics-aggregates",),
    c.TOPIC_CAMPAIGN: ("metrics-aggregates",),
}
PARSE_POISON = ("not_json", "bad_envelope", "unknown_type", "schema_invalid")
SERVICE_OF = {"metrics-aggregates": "metrics", "training-umkm-directory": "training",
              "campaign-umkm-directory-v2": "campaign"}


def _broken(event: Any, **data: Any) -> bytes:
    doc = json.loads(event.to_bytes())
    doc["data"].update(data)
    return json.dumps(doc).encode()


def _poison(topic: str, good: Any) -> list[bytes]:
    """The four parse-level poisons of one topic, built around that topic's good event."""
    envelope = json.loads(good.to_bytes())
    unknown = dict(envelope, id=str(uuid.uuid4()), type=topic + ".exploded.v1")
    invalid = {c.TOPIC_UMKM: {"scale": "raksasa"}, c.TOPIC_TRAINING: {"capacity": 0},
               c.TOPIC_CAMPAIGN: {"official_id": "NIP-not-a-hash"}}[topic]
    return [b"\xff\xfe not json at all",
            json.dumps({"specversion": "1.0", "type": good.type, "data": {}}).encode(),
            json.dumps(unknown).encode(),
            _broken(good, **invalid)]


def test_poison_on_every_topic_every_consumer(kafka_bootstrap: str, pg_base_url: str,
                                              make_stack: Any, outcome: Outcome) -> None:
    stack: Stack = make_stack(kafka_bootstrap, pg_base_url, ("training", "campaign", "metrics"))
    prefix = stack.prefix
    good_umkm = str(uuid.uuid4())
    stranger = str(uuid.uuid4())  # a business no service ever saw registered
    goods = {
        c.TOPIC_UMKM: registered(good_umkm, province="35", scale="kecil"),
        c.TOPIC_TRAINING: ev(c.TRAINING_SESSION_SCHEDULED, {
            "session_id": str(uuid.uuid4()), "course_id": str(uuid.uuid4()), "capacity": 30,
            "starts_at": NOW + timedelta(days=2)}),
        c.TOPIC_CAMPAIGN: ev(c.CAMPAIGN_JOINED, {
            "campaign_id": str(uuid.uuid4()), "code": "poison-check",
            "official_id": uuid.uuid4().hex, "agency": "KemenKopUKM"}),
    }
    unknown_business = ev(c.UMKM_WITHDRAWN, {"umkm_id": stranger, "withdrawn_at": NOW})
    outcome.injected = ("per domain topic: not JSON, envelope without id/source/time, unknown "
                        "event type, schema-invalid data; on bbi.umkm also a withdrawal of an "
                        "unknown business; then one good event on the same key")
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    sent = 0
    try:
        for topic, good in goods.items():
            key = good.subject.encode()  # same key: the good event sits behind the poison
            values = _poison(topic, good)
            if topic == c.TOPIC_UMKM:
                values.append(unknown_business.to_bytes())
            for v in values + [good.to_bytes()]:
                producer.send(prefix + topic, key=key, value=v).get(timeout=30)
                sent += 1
    finally:
        producer.close()

    expected = Counter()
    for topic, readers in READERS.items():
        for consumer in readers:
            for reason in PARSE_POISON:
                expected[(consumer, prefix + topic, reason)] += 1
    # Only the metrics fold needs the business; the read models remember an early withdrawal.
    expected[("metrics-aggregates", prefix + c.TOPIC_UMKM, "unknown_umkm")] += 1

    def dead_letters() -> Counter[tuple[str, str, str]]:
        dead = read_topic(kafka_bootstrap, prefix + c.TOPIC_DEADLETTER)
        got = Counter((d["consumer"], d["topic"], d["reason"]) for d in
                      (json.loads(r.value) for r in dead))
        assert sum(got.values()) >= sum(expected.values()), got
        return got

    got = eventually(dead_letters, timeout=90)

    def good_applied() -> dict[str, float]:
        m = scrape(stack.url("metrics", "/metrics"))
        seen = {"registered": total(m, "bbi_umkm_registrations_total", province="35"),
                "sessions": total(m, "bbi_training_sessions_scheduled_total"),
                "participants": total(m, "bbi_campaign_participants", campaign="poison-check")}
        assert seen == {"registered": 1, "sessions": 1, "participants": 1}, seen
        return seen

    applied = eventually(good_applied, timeout=60)

    def read_models() -> dict[str, dict[str, str]]:
        rows = {s: _directory(stack, s, (good_umkm, stranger)) for s in ("training", "campaign")}
        assert all(len(r) == 2 for r in rows.values()), rows
        return rows

    directories = eventually(read_models, timeout=60)
    # Count once every consumer has stored the end of every partition it reads (its dead
    # letters are acked before that commit): nothing late, like a redelivered poison, can follow.
    for consumer, service in SERVICE_OF.items():
        topics = [t for t, readers in READERS.items() if consumer in readers]
        eventually(lambda cn=consumer, sv=service, ts=topics: drained(
            kafka_bootstrap, stack, sv, cn, ts), timeout=90, every=1)
    got = dead_letters()
    m = scrape(stack.url("metrics", "/metrics"))
    service_counter = {r: total(m, "bbi_metrics_events_deadlettered_total", reason=r)
                       for r in (*PARSE_POISON, "unknown_umkm")}
    worker_counters = {}
    for consumer, service in SERVICE_OF.items():
        w = scrape(f"http://127.0.0.1:{stack.worker_ports[service]}/metrics")
        worker_counters[consumer] = {
            r: total(w, "bbi_consumer_deadlettered_events_total", consumer=consumer, reason=r)
            for r in (*PARSE_POISON, "unknown_umkm")}

    poison_sent = sent - len(goods)
    outcome.counts = {
        # accepted/published/applied: the good events; lost/duplicated: dead letters missing
        # or extra (a poison must reach the dead-letter topic exactly once per consumer).
        "accepted": len(goods), "published": len(goods), "applied": int(sum(applied.values())),
        "lost": sum((expected - got).values()), "duplicated": sum((got - expected).values()),
        "poison_sent": poison_sent, "dead_letters": sum(got.values()),
        "dead_letters_expected": sum(expected.values()),
    }
    outcome.details = {
        "dead_letters_by_consumer_reason": {f"{k[0]} {k[1].removeprefix(prefix)} {k[2]}": v
                                            for k, v in sorted(got.items())},
        "metrics_service_counter": service_counter, "worker_counters": worker_counters,
        "read_models": directories,
    }
    outcome.check(got == expected, f"dead letters {dict(got)} != expected {dict(expected)}")
    outcome.check(service_counter == {"not_json": 3, "bad_envelope": 3, "unknown_type": 3,
                                      "schema_invalid": 3, "unknown_umkm": 1},
                  f"bbi_metrics_events_deadlettered_total: {service_counter}")
    for consumer, counts in worker_counters.items():
        want = {r: float(sum(n for (cn, _, rr), n in expected.items()
                             if cn == consumer and rr == r))
                for r in (*PARSE_POISON, "unknown_umkm")}
        outcome.check(counts == want, f"{consumer} worker dead-letter counter {counts} != {want}")
    for s, rows in directories.items():
        outcome.check(rows == {good_umkm: "registered", stranger: "withdrawn"},
                      f"{s} read model after the poison: {rows}")
    outcome.verify()


def _directory(stack: Stack, service: str, ids: tuple[str, ...]) -> dict[str, str]:
    engine = make_engine(stack.env[f"{service.upper()}_DATABASE_URL"])
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT umkm_id, status FROM umkm_directory"))
            return {r.umkm_id: r.status for r in rows if r.umkm_id in ids}
    finally:
        engine.dispose()
