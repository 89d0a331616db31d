"""A buying day on PostgreSQL with 100 officials at once: exact totals, and exactly one event
per purchase on the real broker."""
from __future__ import annotations

import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from services.campaign.store import metadata
from services.common.config import Settings
from services.common.db.engine import make_engine
from services.common.messaging import contracts, topics
from services.common.messaging.kafka_clients import make_producer
from services.common.messaging.outbox import KafkaPublisher, OutboxRelay
from tests.integration.common_helpers import read_all
from tests.unit.campaign_helpers import add_business, auth, build, campaign_body, nip, purchase_body

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
URL = "/v1/campaigns/belanja-serentak-2020"
OFFICIALS, PER_OFFICIAL = 100, 2
AGENCIES = ["KemenKopUKM", "Kemenkeu", "BPS", "Kemendag"]


@pytest.fixture
def day(pg_url: str, kafka_bootstrap: str, topic_prefix: str):  # type: ignore[no-untyped-def]
    settings = Settings.from_env("campaign", database_url=pg_url,
                                 kafka_bootstrap_servers=kafka_bootstrap,
                                 topic_prefix=topic_prefix)
    engine = make_engine(pg_url, pool_size=20, max_overflow=20)  # 32 client threads
    app, engine = build(settings, engine)
    topics.ensure_topics(kafka_bootstrap, {
        topic_prefix + t: cfg for t, cfg in contracts.TOPIC_CONFIGS.items()},
        partitions=3, replication=1)
    op = auth(settings, "operator")
    client = app.test_client()
    assert client.post("/v1/campaigns", json=campaign_body(), headers=op).status_code == 201
    assert client.post(f"{URL}/open", headers=op).status_code == 200
    yield app, settings, engine
    engine.dispose()


def _official(app: Any, settings: Settings, i: int, shops: list[str]) -> list[int]:
    """One official: join, then record purchases; returns the amounts accepted."""
    client = app.test_client()
    me = auth(settings, sub=nip(i + 1), agency=AGENCIES[i % len(AGENCIES)])
    assert client.post(f"{URL}/join", headers=me).status_code == 201
    done = []
    for k in range(PER_OFFICIAL):
        amount = 50_000 + 1_000 * (i % 7) + k
        r = client.post(f"{URL}/purchases", headers=me, json=purchase_body(
            shops[(i + k) % len(shops)], f"ORD-{i}-{k}", amount))
        assert r.status_code == 201, r.get_json()
        done.append(amount)
    return done


def test_hundred_officials_in_parallel_give_exact_totals_and_one_event_each(day) -> None:  # type: ignore[no-untyped-def]
    app, settings, engine = day
    shops = [add_business(engine, p) for p in ("31", "32", "33", "35", "51") * 4]
    with ThreadPoolExecutor(max_workers=32) as pool:
        amounts = [a for got in pool.map(lambda i: _official(app, settings, i, shops),
                                         range(OFFICIALS)) for a in got]
    totals = app.test_client().get(f"{URL}/totals").get_json()
    assert totals["participants"] == OFFICIALS
    assert totals["purchases"] == OFFICIALS * PER_OFFICIAL == len(amounts)
    assert totals["amount_idr"] == sum(amounts)
    assert totals["distinct_umkm"] == len(shops)

    relay = OutboxRelay(engine, metadata, KafkaPublisher(lambda: make_producer(settings)),
                        "campaign", batch_size=100)
    while relay.run_once().sent:
        pass
    expected = 1 + 1 + OFFICIALS + OFFICIALS * PER_OFFICIAL  # created, opened, joins, buys
    records = read_all(settings.kafka_bootstrap_servers,
                       settings.topic_prefix + contracts.TOPIC_CAMPAIGN, expected)
    docs = [json.loads(r.value) for r in records]
    types = Counter(d["type"] for d in docs)
    assert types[contracts.CAMPAIGN_PURCHASE_RECORDED] == OFFICIALS * PER_OFFICIAL
    assert types[contracts.CAMPAIGN_JOINED] == OFFICIALS and len(docs) == expected
    bought = [d["data"] for d in docs if d["type"] == contracts.CAMPAIGN_PURCHASE_RECORDED]
    assert len({b["purchase_id"] for b in bought}) == OFFICIALS * PER_OFFICIAL
    assert sum(b["amount_idr"] for b in bought) == sum(amounts)
    assert all(nip(i + 1) not in r.value.decode() for r in records for i in (0, 50, 99))


def test_parallel_band_and_duplicate_races_stay_exact(day) -> None:  # type: ignore[no-untyped-def]
    app, settings, engine = day
    shop = add_business(engine)
    me = auth(settings, sub=nip(500))
    assert app.test_client().post(f"{URL}/join", headers=me).status_code == 201

    def buy(ref: str) -> int:
        return app.test_client().post(f"{URL}/purchases", headers=me, json=purchase_body(
            shop, ref, 50_000)).status_code

    with ThreadPoolExecutor(max_workers=12) as pool:
        same_ref = list(pool.map(buy, ["SAME"] * 12))
        fresh = list(pool.map(buy, [f"F{i}" for i in range(12)]))
    assert same_ref.count(201) == 1 and set(same_ref) == {201, 409}
    assert fresh.count(201) == 3  # band max 200,000 = 4 x 50,000 with the first one
    mine = app.test_client().get(f"{URL}/purchases/mine", headers=me).get_json()
    assert mine["progress"]["spent_idr"] == 200_000 and mine["total"] == 4
    assert app.test_client().get(f"{URL}/totals").get_json()["amount_idr"] == 200_000
