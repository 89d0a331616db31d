"""Every campaign event validates against the shared contracts; OpenAPI documents the API."""
from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa

from services.campaign.store import metadata
from services.common.config import Settings
from services.common.messaging.events import parse_event
from services.common.messaging.outbox import outbox_table
from tests.unit.campaign_helpers import add_business, auth, build, campaign_body, purchase_body

URL = "/v1/campaigns/belanja-serentak-2020"


def test_published_events_parse_as_contracts_and_carry_no_personal_data(tmp_path: Path) -> None:
    settings = Settings.from_env("campaign", database_url=f"sqlite:///{tmp_path / 'c.db'}")
    app, engine = build(settings)
    c, op, me = app.test_client(), auth(settings, "operator"), auth(settings)
    c.post("/v1/campaigns", json=campaign_body(), headers=op)
    c.post(f"{URL}/open", headers=op)
    c.post(f"{URL}/join", headers=me)
    c.post(f"{URL}/purchases", json=purchase_body(add_business(engine), "P1"), headers=me)
    c.post(f"{URL}/close", headers=op)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(outbox_table(metadata))).all()
    events = [parse_event(r.payload) for r in rows]
    assert len(events) == 5 and all(r.topic == "bbi.campaign" for r in rows)
    assert len({e.subject for e in events}) == 1  # keyed by campaign id: one order
    closed = events[-1].data
    assert (closed["participants"], closed["purchases"], closed["amount_idr"],
            closed["distinct_umkm"]) == (1, 1, 100_000, 1)
    joined = events[2].data
    assert set(joined) == {"campaign_id", "code", "official_id", "agency"}
    assert len(joined["official_id"]) == 32


def test_openapi_lists_every_campaign_route(tmp_path: Path) -> None:
    settings = Settings.from_env("campaign", database_url=f"sqlite:///{tmp_path / 'c.db'}")
    app, _ = build(settings)
    doc = json.loads(app.test_client().get("/openapi.json").get_data())
    paths = doc["paths"]
    for p in ("/v1/campaigns", "/v1/campaigns/{code}/purchases",
              "/v1/campaigns/{code}/leaderboard/provinces", "/v1/campaigns/{code}/purchases.csv"):
        assert p in paths, p
    assert paths["/v1/campaigns/{code}/join"]["post"]["security"] == [{"bearerAuth": []}]


def test_idempotency_key_replays_a_purchase(tmp_path: Path) -> None:
    settings = Settings.from_env("campaign", database_url=f"sqlite:///{tmp_path / 'c.db'}")
    app, engine = build(settings)
    c, op, me = app.test_client(), auth(settings, "operator"), auth(settings)
    c.post("/v1/campaigns", json=campaign_body(), headers=op)
    c.post(f"{URL}/open", headers=op)
    c.post(f"{URL}/join", headers=me)
    body = purchase_body(add_business(engine), "IDEM-1")
    h = me | {"Idempotency-Key": "k-1"}
    first, second = c.post(f"{URL}/purchases", json=body, headers=h), \
        c.post(f"{URL}/purchases", json=body, headers=h)
    assert first.status_code == second.status_code == 201
    assert first.get_json() == second.get_json()
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert c.get(f"{URL}/totals").get_json()["purchases"] == 1
