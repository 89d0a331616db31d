"""Issue 15 finding 4, end to end on the real broker and both databases: a business registered
and onboarded at the registration service reaches the campaign service's directory through
bbi.umkm; an official in Papua finds it by name, buys from it by NIB at a WIT wall-clock
time, is refused on a platform it does not sell on, and after its withdrawal cannot name it."""
from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.campaign.consumer import consumers
from services.campaign.store import metadata as campaign_md
from services.common.config import Settings
from services.common.db.engine import make_engine
from services.common.db.migrations import upgrade
from services.common.messaging import contracts, topics
from services.common.messaging.consumer import ConsumerRunner
from services.common.messaging.kafka_clients import make_consumer, make_producer
from services.common.messaging.outbox import KafkaPublisher, OutboxRelay
from services.registration.app import create_app as registration_app
from services.registration.store import metadata as registration_md
from tests.unit.campaign_helpers import auth, build, campaign_body
from tests.unit.registration_helpers import bearer, payload

pytestmark = pytest.mark.kafka
URL = "/v1/campaigns/belanja-serentak-2020"
WIT = timezone(timedelta(hours=9))


def test_registered_business_is_found_and_bought_from_by_nib(
        db_url: str, db_url_factory: Callable[[str], str], kafka_bootstrap: str,
        topic_prefix: str, settings_factory: Callable[..., Settings]) -> None:
    backend = "postgresql" if db_url.startswith("postgresql") else "sqlite"
    reg_s = settings_factory("registration", db_url, kafka=kafka_bootstrap,
                             topic_prefix=topic_prefix)
    camp_s = settings_factory("campaign", db_url_factory(backend), kafka=kafka_bootstrap,
                              topic_prefix=topic_prefix)
    topics.ensure_topics(kafka_bootstrap, {topic_prefix + contracts.TOPIC_UMKM:
                                                contracts.TOPIC_CONFIGS[contracts.TOPIC_UMKM]},
                              partitions=3, replication=1)
    upgrade("registration", reg_s.database_url)
    reg_engine = make_engine(reg_s.database_url)
    reg = registration_app(reg_s, reg_engine).test_client()
    relay = OutboxRelay(reg_engine, registration_md,
                        KafkaPublisher(lambda: make_producer(reg_s)), "registration")
    camp_app, camp_engine = build(camp_s)
    camp = camp_app.test_client()
    (c,) = consumers()
    runner = ConsumerRunner(camp_engine, campaign_md, c,
                            kafka_factory=lambda: make_consumer(camp_s, c.name, []),
                            producer_factory=lambda: make_producer(camp_s),
                            topic_prefix=topic_prefix)

    def deliver(applied: int) -> None:
        """Publish registration's outbox, then consume until `applied` events are in."""
        while relay.run_once().sent:
            pass
        for _ in range(120):  # a deadline, not a verdict: the count below decides
            if c.stats["applied"] >= applied:
                break
            runner.poll_once(timeout_ms=500)
        assert c.stats["applied"] == applied, c.stats

    op = bearer(reg_s, "operator")
    body = payload(7, business_name="Kopi Wamena Baliem", platforms=["shopee"])
    try:
        r = reg.post("/v1/umkm", json=body, headers=bearer(reg_s, "umkm", "kc-owner-7"))
        assert r.status_code == 201, r.get_json()
        uid = r.get_json()["id"]
        assert reg.post(f"/v1/umkm/{uid}/verification", json={}, headers=op).status_code == 200
        r = reg.post(f"/v1/umkm/{uid}/platforms", headers=op, json={
            "platform": "tokopedia", "store_url": "https://tokopedia.example/kopi-wamena"})
        assert r.status_code == 200, r.get_json()
        deliver(2)  # registered + onboarded (verified is not the directory's business)

        ops = auth(camp_s, "operator")
        assert camp.post("/v1/campaigns", json=campaign_body(), headers=ops).status_code == 201
        assert camp.post(f"{URL}/open", headers=ops).status_code == 200
        papua = auth(camp_s, region="91")
        listed = camp.get("/v1/campaigns", headers=papua).get_json()
        assert [(x["code"], x["eligible"]) for x in listed] == [("belanja-serentak-2020", True)]
        assert camp.post(f"{URL}/join", headers=papua).status_code == 201

        found = camp.get(f"{URL}/sellers?name=WAMENA&province=31", headers=papua).get_json()
        assert found == [{"umkm_id": uid, "trade_name": "Kopi Wamena Baliem",
                          "nib": body["nib"], "province_code": "31",
                          "province_name": "DKI Jakarta", "platforms": ["tokopedia"],
                          "platforms_declared": ["shopee"]}]

        wall_clock = (datetime.now(UTC).astimezone(WIT) - timedelta(minutes=2)).replace(
            tzinfo=None, microsecond=0)
        buy = {"nib": body["nib"], "platform": "tokopedia", "order_ref": "TKP-1",
               "amount_idr": 75_000, "purchased_at": wall_clock.isoformat()}
        r = camp.post(f"{URL}/purchases", json=buy, headers=papua)
        assert r.status_code == 201, r.get_json()
        got = r.get_json()
        assert (got["umkm_id"], got["trade_name"], got["time_zone"]) == \
            (uid, "Kopi Wamena Baliem", "WIT")
        assert got["purchased_at_local"] == wall_clock.isoformat() + "+09:00"
        r = camp.post(f"{URL}/purchases", json=buy | {"platform": "lazada", "order_ref": "L-1"},
                      headers=papua)
        assert r.status_code == 422 and r.get_json()["code"] == "platform_not_used"
        r = camp.post(f"{URL}/purchases", json=buy | {"platform": "shopee", "order_ref": "S-1"},
                      headers=papua)  # declared at registration
        assert r.status_code == 201, r.get_json()

        assert reg.delete(f"/v1/umkm/{uid}", headers=bearer(reg_s, "admin")).status_code \
            == 200
        deliver(3)
        r = camp.post(f"{URL}/purchases", json=buy | {"order_ref": "TKP-2"}, headers=papua)
        assert r.status_code == 422 and r.get_json()["code"] == "nib_not_registered"
        by_id = {k: v for k, v in buy.items() if k != "nib"} | {"umkm_id": uid,
                                                                "order_ref": "TKP-3"}
        r = camp.post(f"{URL}/purchases", json=by_id, headers=papua)
        assert r.status_code == 409 and r.get_json()["code"] == "umkm_withdrawn"
        assert camp.get(f"{URL}/sellers?name=wamena", headers=papua).get_json() == []
        totals = camp.get(f"{URL}/totals").get_json()
        assert (totals["purchases"], totals["amount_idr"]) == (2, 150_000)
    finally:
        runner.close()
        relay.publisher.close()
        reg_engine.dispose()
