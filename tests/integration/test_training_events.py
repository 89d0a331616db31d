"""Training against the real broker, on SQLite and PostgreSQL: registration events build the
read model (idempotently), a withdrawal cancels seats and promotes, and the seat events reach
`bbi.training` in order through the outbox relay."""
from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa
from kafka import KafkaProducer

from services.common import umkm_directory
from services.common.config import Settings
from services.common.messaging import contracts, topics
from services.common.messaging.consumer import ConsumerRunner
from services.common.messaging.events import Event
from services.common.messaging.kafka_clients import make_consumer, make_producer
from services.common.messaging.outbox import KafkaPublisher, OutboxRelay
from services.training.consumer import consumers
from services.training.store import metadata
from tests.integration.common_helpers import read_all
from tests.unit.training_helpers import auth, build, new_session, registered, withdrawn

pytestmark = pytest.mark.kafka


def _drain(runner: ConsumerRunner, want: int) -> None:
    for _ in range(60):
        runner.poll_once(timeout_ms=500)
        if runner.c.stats["applied"] + runner.c.stats["duplicates"] >= want:
            return
    raise AssertionError(f"only {runner.c.stats} of {want}")


def _send(producer: KafkaProducer, topic: str, *events: Event) -> None:
    for ev in events:
        producer.send(topic, key=ev.key.encode(), value=ev.to_bytes()).get(10)


def test_read_model_from_real_events_and_withdrawal_cascade(
        db_url: str, kafka_bootstrap: str, topic_prefix: str) -> None:
    settings = Settings.from_env("training", database_url=db_url,
                                 kafka_bootstrap_servers=kafka_bootstrap, topic_prefix=topic_prefix)
    app, engine = build(settings)
    topics.ensure_topics(kafka_bootstrap, {
        topic_prefix + t: cfg for t, cfg in contracts.TOPIC_CONFIGS.items()},
        partitions=3, replication=1)
    client, op = app.test_client(), auth(settings, "operator")
    s = new_session(client, op, capacity=1)
    url = f"/v1/sessions/{s['id']}/enrolments"
    # Three people, each with a business (the events carry the owner's account subject).
    a, b, c = (registered(province="65", owner="kc-ani"), registered(owner="kc-budi"),
               registered(owner="kc-citra"))
    ids = [str(e.data["umkm_id"]) for e in (a, b, c)]
    me = [auth(settings, "umkm", sub) for sub in ("kc-ani", "kc-budi", "kc-citra")]

    def enrol(i: int) -> Any:
        return client.post(url, json={"umkm_id": ids[i]}, headers=me[i])

    early = enrol(0)
    assert early.status_code == 409 and early.get_json()["code"] == "umkm_not_known_yet"
    assert int(early.headers["Retry-After"]) > 0

    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    umkm_topic = topic_prefix + contracts.TOPIC_UMKM
    (group,) = consumers(settings)
    runner = ConsumerRunner(engine, metadata, group,
                            kafka_factory=lambda: make_consumer(settings, group.name, []),
                            producer_factory=lambda: make_producer(settings),
                            topic_prefix=topic_prefix)
    try:
        _send(producer, umkm_topic, a, a, b, c)  # `a` twice: a redelivery
        _drain(runner, 4)
        assert group.stats["duplicates"] == 1
        with engine.connect() as conn:
            known = umkm_directory.find(conn, ids[0])
            n = conn.execute(sa.text("SELECT count(*) FROM umkm_directory")).scalar()
        assert known is not None and known.province_code == "65" and known.active and n == 3
        assert [enrol(i).status_code for i in range(3)] == [201, 202, 202]

        gone = withdrawn(ids[0])
        _send(producer, umkm_topic, gone, gone)
        _drain(runner, 6)
        assert group.stats["duplicates"] == 2  # the second copy cascades nothing
    finally:
        runner.close()
        producer.close()
    with engine.connect() as conn:
        seat = conn.execute(sa.text("SELECT state, cancel_reason FROM enrolments WHERE "
                                    "umkm_id = :u"), {"u": ids[0]}).one()
    assert tuple(seat) == ("cancelled", "withdrawn")
    # The withdrawn business is no longer linked to the person's account.
    assert client.get("/v1/me/enrolments", headers=me[0]).get_json() == []
    assert client.get("/v1/me/enrolments", headers=me[1]).get_json()[0]["state"] == "enrolled"
    assert client.get("/v1/me/enrolments", headers=me[2]).get_json()[0]["position"] == 1
    assert enrol(0).get_json()["code"] == "umkm_withdrawn"

    relay = OutboxRelay(engine, metadata, KafkaPublisher(lambda: make_producer(settings)),
                        "training", batch_size=100)
    try:
        while relay.run_once().sent:
            pass
    finally:
        relay.publisher.close()
    records = read_all(kafka_bootstrap, topic_prefix + contracts.TOPIC_TRAINING, expect=6)
    docs = [json.loads(r.value) for r in records]
    assert {r.key.decode() for r in records} == {s["id"]}  # one key: one partition, in order
    assert [d["type"].split(".")[2] for d in docs] == [
        "session_scheduled", "enrolled", "waitlisted", "waitlisted", "cancelled", "promoted"]
    assert docs[4]["data"]["reason"] == "withdrawn"
    assert docs[5]["data"]["umkm_id"] == ids[1]
