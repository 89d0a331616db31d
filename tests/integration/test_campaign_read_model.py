"""The UMKM read model is built from real `bbi.umkm` events on the broker."""
from __future__ import annotations

import pytest
import sqlalchemy as sa
from kafka import KafkaProducer

from services.campaign.consumer import consumers
from services.campaign.store import metadata, purchases
from services.common.config import Settings
from services.common.messaging import contracts, topics
from services.common.messaging.consumer import ConsumerRunner
from services.common.messaging.kafka_clients import make_consumer, make_producer
from tests.unit.campaign_helpers import (
    auth,
    build,
    campaign_body,
    purchase_body,
    registered,
    withdrawn,
)

pytestmark = pytest.mark.kafka
URL = "/v1/campaigns/belanja-serentak-2020"


def _drain(runner: ConsumerRunner, want: int) -> None:
    for _ in range(60):
        runner.poll_once(timeout_ms=500)
        if runner.c.stats["applied"] >= want:
            return
    raise AssertionError(f"only {runner.c.stats} of {want}")


def test_purchases_wait_for_the_registration_event_and_withdrawal_unattributes(
        db_url: str, kafka_bootstrap: str, topic_prefix: str) -> None:
    settings = Settings.from_env("campaign", database_url=db_url,
                                 kafka_bootstrap_servers=kafka_bootstrap, topic_prefix=topic_prefix)
    app, engine = build(settings)
    topics.ensure_topics(kafka_bootstrap, {
        topic_prefix + t: cfg for t, cfg in contracts.TOPIC_CONFIGS.items()},
        partitions=3, replication=1)
    client, me = app.test_client(), auth(settings)
    client.post("/v1/campaigns", json=campaign_body(), headers=auth(settings, "operator"))
    client.post(f"{URL}/open", headers=auth(settings, "operator"))
    client.post(f"{URL}/join", headers=me)

    ev = registered(province="34")
    uid = str(ev.data["umkm_id"])
    early = client.post(f"{URL}/purchases", json=purchase_body(uid, "K1"), headers=me)
    assert early.status_code == 409 and early.get_json()["code"] == "umkm_not_known_yet"
    assert early.headers["Retry-After"]

    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    topic = topic_prefix + contracts.TOPIC_UMKM
    producer.send(topic, key=ev.key.encode(), value=ev.to_bytes()).get(10)
    producer.send(topic, key=ev.key.encode(), value=ev.to_bytes()).get(10)  # redelivery
    (c,) = consumers()
    runner = ConsumerRunner(engine, metadata, c,
                            kafka_factory=lambda: make_consumer(settings, c.name, []),
                            producer_factory=lambda: make_producer(settings),
                            topic_prefix=topic_prefix)
    try:
        _drain(runner, 1)
        ok = client.post(f"{URL}/purchases", json=purchase_body(uid, "K1"), headers=me)
        assert ok.status_code == 201 and ok.get_json()["province_code"] == "34"

        gone = withdrawn(uid)
        producer.send(topic, key=gone.key.encode(), value=gone.to_bytes()).get(10)
        _drain(runner, 2)
    finally:
        runner.close()
        producer.close()
    assert c.stats["duplicates"] == 1
    with engine.connect() as conn:
        rows = conn.execute(sa.select(purchases.c.umkm_id, purchases.c.amount_idr)).all()
    assert [(r.umkm_id, r.amount_idr) for r in rows] == [(None, 100_000)]
    totals = client.get(f"{URL}/totals").get_json()
    assert (totals["purchases"], totals["amount_idr"], totals["distinct_umkm"]) == (1, 100_000, 1)
    again = client.post(f"{URL}/purchases", json=purchase_body(uid, "K2"), headers=me)
    assert again.status_code == 409 and again.get_json()["code"] == "umkm_withdrawn"
