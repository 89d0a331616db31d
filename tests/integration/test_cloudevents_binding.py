"""The CloudEvents Kafka protocol binding on the real broker: every record the outbox relay
publishes is in structured mode with the binding's content-type header, the official
CloudEvents SDK parses each one back to the same event, and the metrics consumer applies the
records with their headers exactly as before."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cloudevents.core.bindings import kafka as ce_kafka

from services.common.config import Settings
from services.common.db.engine import make_engine
from services.common.db.migrations import upgrade
from services.common.messaging import contracts as c
from services.common.messaging import topics
from services.common.messaging.kafka_clients import make_producer
from services.common.messaging.outbox import KafkaPublisher, OutboxRelay, add_events
from services.common.messaging.worker import make_runner
from services.metrics.app import create_app
from services.metrics.consumer import consumers
from services.metrics.store import metadata as metrics_md
from tests.fixtures.metrics_sample import business_samples, expected, mixed_stream, nonzero
from tests.integration.common_helpers import demo_md, read_all

pytestmark = pytest.mark.kafka
CONTENT_TYPE = b"application/cloudevents+json; charset=UTF-8"


def _publish_through_outbox(db_url: str, bootstrap: str, prefix: str, events: list[Any]) -> None:
    """Stage the events in an outbox and let the real relay publish them all."""
    settings = Settings.from_env("demo", database_url=db_url,
                                 kafka_bootstrap_servers=bootstrap, topic_prefix=prefix)
    md = demo_md
    engine = make_engine(db_url)
    md.create_all(engine)
    with engine.begin() as conn:
        add_events(conn, md, events, prefix)
    relay = OutboxRelay(engine, md, KafkaPublisher(lambda: make_producer(settings)), "ce-test")
    try:
        for _ in range(50):
            res = relay.run_once()
            if res.sent == 0 and not res.failed:
                break
        with engine.connect() as conn:
            left = conn.execute(sa.select(sa.func.count()).select_from(md.tables["outbox"]))
            assert left.scalar_one() == 0, "the relay left rows unpublished"
    finally:
        relay.publisher.close()
        engine.dispose()


def test_every_record_is_structured_mode_and_the_sdk_parses_it(
        db_url: str, kafka_bootstrap: str, topic_prefix: str) -> None:
    topics.ensure_topics(kafka_bootstrap, {topic_prefix + t: cfg for t, cfg in
                                                c.TOPIC_CONFIGS.items()},
                              partitions=3, replication=1)
    events = mixed_stream(12, seed=16)
    by_id = {e.id: e for e in events}
    assert {e.topic for e in events} == set(c.DOMAIN_TOPICS)
    _publish_through_outbox(db_url, kafka_bootstrap, topic_prefix, events)

    seen: dict[str, int] = {}
    types: set[str] = set()
    for topic in c.DOMAIN_TOPICS:
        want = sum(1 for e in events if e.topic == topic)
        records = read_all(kafka_bootstrap, topic_prefix + topic, expect=want)
        assert len(records) == want, topic
        for rec in records:
            headers = dict(rec.headers)
            assert headers.get("content-type") == CONTENT_TYPE, (topic, rec.headers)
            msg = ce_kafka.KafkaMessage(headers=headers, key=rec.key, value=rec.value)
            ce = ce_kafka.from_structured_event(msg)
            # from_kafka picks the mode from the headers: no ce_ header, so structured.
            assert ce_kafka.from_kafka_event(msg).get_id() == ce.get_id()
            ours = by_id[ce.get_id()]
            assert ce.get_specversion() == "1.0"
            assert ce.get_type() == ours.type and ce.get_source() == ours.source
            assert ce.get_subject() == ours.subject == rec.key.decode()
            assert ce.get_datacontenttype() == "application/json"
            assert ce.get_extension("correlationid") == ours.correlationid
            assert ce.get_data() == json.loads(ours.to_bytes())["data"]
            seen[ce.get_id()] = seen.get(ce.get_id(), 0) + 1
            types.add(ce.get_type())
    assert seen == {e.id: 1 for e in events}
    assert types == {e.type for e in events}


def test_metrics_consumer_applies_records_that_carry_the_header(
        db_url: str, kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> None:
    upgrade("metrics", db_url)
    topics.ensure_topics(kafka_bootstrap, {topic_prefix + t: cfg for t, cfg in
                                                c.TOPIC_CONFIGS.items()},
                              partitions=3, replication=1)
    events = mixed_stream(10, seed=61)
    # The producing side's outbox lives in its own database, as a producing service's would.
    _publish_through_outbox(f"sqlite:///{tmp_path / 'producer.db'}", kafka_bootstrap,
                            topic_prefix, events)
    settings = Settings.from_env("metrics", database_url=db_url, topic_prefix=topic_prefix,
                                 kafka_bootstrap_servers=kafka_bootstrap)
    engine = make_engine(db_url)
    runner = make_runner(settings, engine, metrics_md, consumers()[0])
    try:
        s = runner.c.stats
        for _ in range(80):
            runner.poll_once(timeout_ms=500)
            if s["applied"] + s["deadlettered"] + s["duplicates"] >= len(events):
                break
        assert s["deadlettered"] == 0 and s["applied"] == len(events), s
        client = create_app(settings, engine).test_client()
        got = business_samples(client.get("/metrics").data.decode())
        assert got == nonzero(expected(events))
    finally:
        runner.close()
        engine.dispose()
