"""Issue 15 finding 2 through the real pipeline: registration on PostgreSQL, its outbox relayed
to the real broker, and the metrics service's consumer (its own PostgreSQL database) counting
what arrives. A business on Tokopedia and Shopee counts once as onboarded, once per platform."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from services.common.config import Settings
from services.common.db.engine import make_engine
from services.common.db.migrations import upgrade
from services.common.messaging import contracts, topics
from services.common.messaging.events import parse_event
from services.common.messaging.kafka_clients import make_producer
from services.common.messaging.outbox import KafkaPublisher, OutboxRelay
from services.common.messaging.worker import make_runner
from services.metrics.app import create_app as metrics_app
from services.metrics.consumer import consumers as metrics_consumers
from services.metrics.store import metadata as metrics_md
from services.registration.app import create_app
from services.registration.partner.handlers import create_partner
from services.registration.store import metadata
from tests.fixtures.metrics_sample import business_samples
from tests.integration.common_helpers import read_all
from tests.unit.registration_helpers import owner, payload

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


def test_finding2_every_platform_onboarding_reaches_the_metrics_exactly_once(
        db_url_factory: Callable[[str], str], kafka_bootstrap: str, topic_prefix: str) -> None:
    reg_url, met_url = db_url_factory("postgresql"), db_url_factory("postgresql")
    topics.ensure_topics(kafka_bootstrap, {
        topic_prefix + t: cfg for t, cfg in contracts.TOPIC_CONFIGS.items()},
        partitions=3, replication=1)
    upgrade("registration", reg_url)
    upgrade("metrics", met_url)
    reg = Settings.from_env("registration", database_url=reg_url, topic_prefix=topic_prefix,
                            kafka_bootstrap_servers=kafka_bootstrap)
    met = Settings.from_env("metrics", database_url=met_url, topic_prefix=topic_prefix,
                            kafka_bootstrap_servers=kafka_bootstrap)
    reg_engine, met_engine = make_engine(reg_url), make_engine(met_url)
    client = create_app(reg, reg_engine).test_client()
    keys = {p: {"X-API-Key": create_partner(reg_engine, reg, p, p, p.title())}
            for p in ("tokopedia", "shopee")}

    def report(platform: str, *items: dict[str, Any]) -> list[str]:
        r = client.post("/v1/partner/onboardings", json=list(items), headers=keys[platform])
        assert r.status_code == 200, r.get_json()
        return [i["result"] for i in r.get_json()["items"]]

    public = client.post("/v1/umkm", json=payload(1), headers=owner(reg)).get_json()
    merchant = payload(2, merchant_ref="M-2")
    assert report("tokopedia", merchant, payload(1, merchant_ref="P-1")) == [
        "created", "onboarded"]                            # the public business joins
    shopee = [merchant | {"merchant_ref": "S-2"}, payload(1, merchant_ref="S-1")]
    assert report("shopee", *shopee) == ["onboarded", "onboarded"]
    assert report("shopee", *shopee) == ["already_registered"] * 2  # idempotent re-send

    relay = OutboxRelay(reg_engine, metadata, KafkaPublisher(lambda: make_producer(reg)),
                        "registration")
    try:
        sent = 0
        while (res := relay.run_once()).sent or res.failed:
            sent += res.sent
    finally:
        relay.publisher.close()
    assert sent == 6  # public registered; M registered + 2 onboarded; P 2 onboarded
    events = [parse_event(r.value) for r in
              read_all(kafka_bootstrap, topic_prefix + contracts.TOPIC_UMKM, expect=6)]
    onboarded = sorted((e.subject == public["id"], e.data["platform"], e.data["first_platform"])
                       for e in events if e.type == contracts.UMKM_ONBOARDED)
    assert onboarded == [(False, "shopee", False), (False, "tokopedia", True),
                         (True, "shopee", False), (True, "tokopedia", True)]

    runner = make_runner(met, met_engine, metrics_md, metrics_consumers()[0])
    try:
        for _ in range(80):
            runner.poll_once(timeout_ms=500)
            if runner.c.stats["applied"] >= 6:
                break
        runner.poll_once(timeout_ms=300)  # linger: a duplicate would show here
    finally:
        runner.close()
    assert runner.c.stats["applied"] == 6
    text = metrics_app(met, met_engine).test_client().get("/metrics").data.decode()
    got = business_samples(text)
    assert got[("bbi_umkm_platform_onboarded", (("platform", "tokopedia"),))] == 2
    assert got[("bbi_umkm_platform_onboarded", (("platform", "shopee"),))] == 2
    assert got[("bbi_umkm_onboarded", (("kbli_section", "C"), ("province", "31"),
                                       ("scale", "mikro")))] == 2  # businesses, not platforms
    reg_engine.dispose()
    met_engine.dispose()
