"""The metrics pipeline against the real broker on SQLite and PostgreSQL: a mixed stream shows
up label by label on /metrics, redelivery and a crash before the Kafka commit count nothing
twice, poison events are dead-lettered and counted, and a rebuild gives the live numbers."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from services.common.config import Settings
from services.common.db.engine import make_engine
from services.common.db.migrations import upgrade
from services.common.messaging import contracts as c
from services.common.messaging import topics
from services.common.messaging.consumer import BatchApplier, ConsumerRunner, RetryLater
from services.common.messaging.events import Event
from services.common.messaging.kafka_clients import group_id
from services.common.messaging.worker import make_runner
from services.metrics import store
from services.metrics.app import create_app
from services.metrics.consumer import CONSUMER_NAME, consumers
from services.metrics.domain import COUNT_APPROVED, COUNT_ONBOARDED
from services.metrics.rebuild import rebuild
from services.metrics.worker import build_worker
from tests.fixtures.metrics_sample import (
    NOW,
    business_samples,
    ev,
    expected,
    expected_counts,
    mixed_stream,
    nonzero,
    registered,
)
from tests.integration.common_helpers import read_all

pytestmark = pytest.mark.kafka


@pytest.fixture
def env(db_url: str, kafka_bootstrap: str, topic_prefix: str):  # type: ignore[no-untyped-def]
    settings = Settings.from_env(
        "metrics",
        database_url=db_url,
        topic_prefix=topic_prefix,
        kafka_bootstrap_servers=kafka_bootstrap,
    )
    upgrade("metrics", db_url)
    engine = make_engine(db_url)
    topics.ensure_topics(
        kafka_bootstrap,
        {topic_prefix + t: cfg for t, cfg in c.TOPIC_CONFIGS.items()},
        partitions=3,
        replication=1,
    )
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    client = create_app(settings, engine).test_client()
    runners: list[ConsumerRunner] = []
    yield settings, engine, producer, client, runners
    for r in runners:
        r.close()
    producer.close()
    engine.dispose()


def _produce(producer: KafkaProducer, prefix: str, events: list[Event]) -> None:
    for e in events:
        producer.send(prefix + e.topic, key=e.subject.encode(), value=e.to_bytes())
    producer.flush()


def _runner(settings: Settings, engine: sa.Engine, runners: list[ConsumerRunner]) -> ConsumerRunner:
    r = make_runner(settings, engine, store.metadata, consumers()[0])
    runners.append(r)
    return r


def _drain(runner: ConsumerRunner, want: int, polls: int = 80) -> None:
    s = runner.c.stats
    for _ in range(polls):
        runner.poll_once(timeout_ms=500)
        if s["applied"] + s["deadlettered"] + s["duplicates"] >= want:
            break
    for _ in range(2):  # linger: an extra copy would show up here
        runner.poll_once(timeout_ms=300)


def _business(client: Any) -> dict[Any, float]:
    return business_samples(client.get("/metrics").data.decode())


def test_mixed_stream_label_by_label_and_lag(env) -> None:  # type: ignore[no-untyped-def]
    settings, engine, producer, client, runners = env
    events = mixed_stream(40, seed=21)
    _produce(producer, settings.topic_prefix, events)
    runner = _runner(settings, engine, runners)
    _drain(runner, len(events))
    assert runner.c.stats["applied"] == len(events)
    assert _business(client) == nonzero(expected(events))
    kc = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers)
    try:
        lags = build_worker(settings, engine).report_lag(kc)[CONSUMER_NAME]
    finally:
        kc.close()
    assert set(lags) == {(t, p) for t in c.DOMAIN_TOPICS for p in range(3)}
    assert set(lags.values()) == {0}
    text = client.get("/metrics").data.decode()
    assert 'bbi_metrics_consumer_lag_events{partition="0",topic="bbi.umkm"} 0.0' in text
    assert "bbi_metrics_last_applied_timestamp_seconds " in text


def test_redelivery_and_group_reset_do_not_double_count(env) -> None:  # type: ignore[no-untyped-def]
    settings, engine, producer, client, runners = env
    events = mixed_stream(25, seed=22)
    _produce(producer, settings.topic_prefix, events)
    first = _runner(settings, engine, runners)
    _drain(first, len(events))
    want = nonzero(expected(events))
    assert _business(client) == want
    first.close()  # a restart: the new consumer of the group starts at the stored offsets
    _produce(producer, settings.topic_prefix, events)  # the same events delivered again
    second = _runner(settings, engine, runners)
    _drain(second, len(events))
    assert second.c.stats["duplicates"] == len(events) and second.c.stats["applied"] == 0
    for r in runners:
        r.close()
    _reset_group(settings, engine)  # Kafka and DB offsets back to 0: everything is re-read
    third = _runner(settings, engine, runners)
    _drain(third, 2 * len(events))
    assert third.c.stats["duplicates"] == 2 * len(events) and third.c.stats["applied"] == 0
    assert _business(client) == want


def _reset_group(settings: Settings, engine: sa.Engine) -> None:
    o = store.metadata.tables["consumer_offsets"]
    with engine.begin() as conn:
        conn.execute(o.delete().where(o.c.consumer == CONSUMER_NAME))
    kc = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=group_id(settings, CONSUMER_NAME),
        enable_auto_commit=False,
    )
    tps = [TopicPartition(settings.topic_prefix + t, p) for t in c.DOMAIN_TOPICS for p in range(3)]
    kc.assign(tps)
    kc.commit({tp: OffsetAndMetadata(0, "", -1) for tp in tps})
    kc.close()


def test_killed_after_db_commit_before_kafka_commit(env) -> None:  # type: ignore[no-untyped-def]
    settings, engine, producer, client, runners = env
    events = mixed_stream(20, seed=23)
    _produce(producer, settings.topic_prefix, events)
    records = _read_topics(settings)
    assert len(records) == len(events)
    # The "killed" worker: its batch is committed in the DB, its Kafka offsets never are.
    half = [r for r in records if r.offset < 4]
    BatchApplier(engine, store.metadata, consumers()[0]).apply(half, lambda dead: None)
    runner = _runner(settings, engine, runners)
    _drain(runner, len(events) - len(half))
    assert runner.c.stats["applied"] == len(events) - len(half)
    assert _business(client) == nonzero(expected(events))
    # And if the DB offsets are lost too, the event ids still stop a second effect.
    runner.close()
    _reset_group(settings, engine)
    again = _runner(settings, engine, runners)
    _drain(again, len(events))
    assert again.c.stats["applied"] == 0 and again.c.stats["duplicates"] == len(events)
    assert _business(client) == nonzero(expected(events))


def _read_topics(settings: Settings) -> list[Any]:
    out = []
    for t in c.DOMAIN_TOPICS:
        out += read_all(settings.kafka_bootstrap_servers, settings.topic_prefix + t, 1, timeout=5)
    return sorted(out, key=lambda r: (r.topic, r.partition, r.offset))


def _poison(prefix: str, producer: KafkaProducer) -> list[str]:
    good = ev(c.UMKM_VERIFIED, {"umkm_id": str(uuid.uuid4()), "verified_at": NOW})  # unknown umkm
    doc = json.loads(mixed_stream(1, seed=1)[0].to_bytes())
    doc["data"]["scale"] = "raksasa"
    topic = prefix + c.TOPIC_UMKM
    producer.send(topic, b"not json at all")
    producer.send(topic, json.dumps({"specversion": "1.0", "data": {}}).encode())
    producer.send(topic, json.dumps(doc).encode())
    producer.send(topic, key=good.subject.encode(), value=good.to_bytes())
    producer.flush()
    return ["bad_envelope", "not_json", "schema_invalid", "unknown_umkm"]


def test_poison_dead_lettered_and_counted_then_rebuild_matches_live(env) -> None:  # type: ignore[no-untyped-def]
    settings, engine, producer, client, runners = env
    events = mixed_stream(30, seed=24)
    _produce(producer, settings.topic_prefix, events[:120])
    reasons = _poison(settings.topic_prefix, producer)
    _produce(producer, settings.topic_prefix, events[120:])
    runner = _runner(settings, engine, runners)
    _drain(runner, len(events) + len(reasons))
    dead = read_all(
        settings.kafka_bootstrap_servers, settings.topic_prefix + c.TOPIC_DEADLETTER, len(reasons)
    )
    assert sorted(json.loads(d.value)["reason"] for d in dead) == reasons
    text = client.get("/metrics").data.decode()
    for reason in reasons:
        assert f'bbi_metrics_events_deadlettered_total{{reason="{reason}"}} 1.0' in text
    live = _business(client)
    assert live == nonzero(expected(events))
    with engine.begin() as conn:  # damage the live aggregates: the rebuild must not care
        conn.execute(
            store.metric_values.delete().where(
                store.metric_values.c.metric == "bbi_umkm_registered"
            )
        )
    result = rebuild(settings, engine, timeout_s=120)
    assert result["applied"] == len(events) and result["skipped_poison"] == len(reasons)
    assert _business(client) == live
    after = client.get("/metrics").data.decode()  # dead-letter counts survive the rebuild
    dead_lines = [ln for ln in after.splitlines()
                  if ln.startswith("bbi_metrics_events_deadlettered_total{")]
    assert sorted(ln for ln in dead_lines if not ln.endswith(" 0.0")) == sorted(
        f'bbi_metrics_events_deadlettered_total{{reason="{r}"}} 1.0' for r in reasons)
    # The live consumer continues after the swapped offsets without a second effect.
    more = mixed_stream(5, seed=25)
    _produce(producer, settings.topic_prefix, more)
    _drain(runner, len(events) + len(reasons) + len(more))
    assert _business(client) == nonzero(expected(events + more))


def test_rebuild_while_live_consumer_is_behind_then_it_resumes_at_swapped_offsets(env) -> None:  # type: ignore[no-untyped-def]
    settings, engine, producer, client, runners = env
    events = mixed_stream(20, seed=26)
    cut = len(events) // 2
    _produce(producer, settings.topic_prefix, events[:cut])
    live = _runner(settings, engine, runners)
    _drain(live, cut)
    _produce(producer, settings.topic_prefix, events[cut:])
    rebuild(settings, engine, timeout_s=120)  # counted everything; live is still at `cut`
    assert _business(client) == nonzero(expected(events))
    moved = 0
    for _ in range(20):  # its next batches start before the stored offsets: it re-seeks
        try:
            live.poll_once(timeout_ms=500)
        except RetryLater:
            moved += 1
    assert moved >= 1
    assert _business(client) == nonzero(expected(events))


def test_worker_process_applies_and_stores_lag(env, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from services.metrics.worker import build_worker
    from tests.integration.common_helpers import wait_until

    settings, engine, producer, client, runners = env
    monkeypatch.setenv("METRICS_LAG_INTERVAL_SECONDS", "0.5")
    events = mixed_stream(10, seed=27)
    _produce(producer, settings.topic_prefix, events)
    worker = build_worker(settings, engine)
    worker.start()
    try:
        assert wait_until(lambda: _business(client) == nonzero(expected(events)), timeout=60)
        assert wait_until(
            lambda: len(_lag(engine)) == 9 and {n for _, _, n in _lag(engine)} == {0}, timeout=30
        )
    finally:
        worker.stop()
    assert (
        'bbi_metrics_consumer_lag_events{partition="2",topic="bbi.campaign"} 0.0'
        in client.get("/metrics").data.decode()
    )


def _lag(engine: sa.Engine) -> list[tuple[str, int, int]]:
    with engine.connect() as conn:  # a fresh snapshot each time
        return store.read_lag(conn)


def _onboarding(uid: str, at: datetime, platform: str = "tokopedia") -> Event:
    return ev(c.UMKM_ONBOARDED, {"umkm_id": uid, "platform": platform, "first_platform": True,
                                 "onboarded_at": at})


def _targets(client: Any) -> dict[tuple[str, int], dict[str, Any]]:
    return {(t["metric"], t["year"]): t for t in client.get("/v1/summary").get_json()["targets"]}


def test_event_times_in_different_years_land_in_their_years_and_survive_a_rebuild(env) -> None:  # type: ignore[no-untyped-def]
    """Progress by event time through the broker and the database: each target counts its own
    window (WIB calendar), later batches move or remove a stored business, a rebuild agrees."""
    settings, engine, producer, client, runners = env
    stream = mixed_stream(40, seed=28)  # event times spread over 2019-2026
    edge = {name: str(uuid.uuid4()) for name in ("last_2020", "first_2021", "late", "gone")}
    first = [
        registered(edge["last_2020"], "33"),
        _onboarding(edge["last_2020"], datetime(2020, 12, 31, 16, 59, 59, tzinfo=UTC)),
        registered(edge["first_2021"], "33"),
        _onboarding(edge["first_2021"], datetime(2020, 12, 31, 17, 0, tzinfo=UTC)),
        registered(edge["late"], "33"),
        _onboarding(edge["late"], datetime(2023, 5, 1, tzinfo=UTC)),
        registered(edge["gone"], "33"),
        _onboarding(edge["gone"], datetime(2020, 3, 1, tzinfo=UTC)),
    ]
    _produce(producer, settings.topic_prefix, stream + first)
    runner = _runner(settings, engine, runners)
    _drain(runner, len(stream) + len(first))
    # Next batches read the stored rows back: an earlier onboarding reported late moves `late`
    # to 2020; the withdrawal takes `gone` out of 2020.
    second = [_onboarding(edge["late"], datetime(2020, 7, 1, tzinfo=UTC), "shopee"),
              ev(c.UMKM_WITHDRAWN, {"umkm_id": edge["gone"], "withdrawn_at": NOW})]
    _produce(producer, settings.topic_prefix, second)
    _drain(runner, len(stream) + len(first) + len(second))
    months = expected_counts(stream)

    def within(count: str, first_month: str, last_month: str) -> int:
        return sum(n for m, n in months[count].items() if first_month <= m <= last_month)

    province = client.get("/v1/provinces/33").get_json()["onboarded_by_year"]
    assert (province.get("2020"), province.get("2021"), province.get("2023")) == (2, 1, None)
    got = _targets(client)
    new_2020 = got[("umkm_onboarded_new", 2020)]
    assert new_2020["actual"] == within(COUNT_ONBOARDED, "2020-01", "2020-12") + 2
    assert new_2020["actual"] != client.get("/v1/summary").get_json()["national"]["onboarded"]
    for year in (2022, 2023, 2024):
        total = got[("umkm_onboarded_total", year)]
        portal = within(COUNT_ONBOARDED, "2022-04", f"{year}-12")
        assert (total["baseline"], total["portal_onboarded"], total["actual"]) == (
            17_500_000, portal, 17_500_000 + portal)
    ekatalog = got[("umkm_ekatalog_onboarded", 2022)]
    assert ekatalog["actual"] == within(COUNT_APPROVED, "2022-01", "2022-12")
    series = client.get("/metrics").data.decode()
    assert (f'bbi_national_actual{{kind="new_in_year",metric="umkm_onboarded_new",year="2020"}} '
            f'{float(new_2020["actual"])}') in series
    with engine.begin() as conn:  # damage the live counts: the rebuild recounts from the topics
        conn.execute(store.metric_values.delete().where(
            store.metric_values.c.metric == COUNT_ONBOARDED))
    assert _targets(client)[("umkm_onboarded_new", 2020)]["actual"] == 0
    rebuild(settings, engine, timeout_s=120)
    assert _targets(client) == got
