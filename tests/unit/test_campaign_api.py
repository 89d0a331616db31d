"""The campaign API on SQLite: lifecycle, joining, purchase rules, privacy, reports."""
from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from services.campaign.config import campaign_settings
from services.campaign.consumer import on_withdrawn
from services.campaign.store import metadata, participants, purchases
from services.common.config import Settings
from services.common.messaging.outbox import outbox_table
from tests.unit.campaign_helpers import (
    add_business,
    auth,
    build,
    campaign_body,
    nip,
    purchase_body,
    withdrawn,
)


@pytest.fixture
def env(tmp_path: Path):  # type: ignore[no-untyped-def]
    settings = Settings.from_env("campaign", database_url=f"sqlite:///{tmp_path / 'c.db'}")
    app, engine = build(settings)
    client = app.test_client()
    op = auth(settings, "operator")
    assert client.post("/v1/campaigns", json=campaign_body(), headers=op).status_code == 201
    assert client.post("/v1/campaigns/belanja-serentak-2020/open", headers=op).status_code == 200
    return client, settings, engine, op


def _events(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(outbox_table(metadata).c.event_type)
                                 .order_by(outbox_table(metadata).c.id)).scalars())


URL = "/v1/campaigns/belanja-serentak-2020"


def test_create_stores_utc_and_shows_wib(tmp_path: Path) -> None:
    settings = Settings.from_env("campaign", database_url=f"sqlite:///{tmp_path / 'c.db'}")
    app, _ = build(settings)
    c = app.test_client()
    body = campaign_body("bbi-2020", starts_at="2020-07-01T00:00:00",
                         ends_at="2020-07-01T23:59:59", eligible_regions=["31", "32"])
    r = c.post("/v1/campaigns", json=body, headers=auth(settings, "admin"))
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["starts_at"] == "2020-07-01T00:00:00+07:00"
    assert r.get_json()["status"] == "draft"
    assert c.post("/v1/campaigns", json=body, headers=auth(settings, "operator")
                  ).get_json()["code"] == "code_taken"
    bad = c.post("/v1/campaigns", json=campaign_body("x-1", band_min_idr=300_000),
                 headers=auth(settings, "operator"))
    assert bad.status_code == 422 and bad.get_json()["code"] == "band_invalid"
    listed = c.get("/v1/campaigns", headers=auth(settings, "operator")).get_json()
    assert [x["code"] for x in listed] == ["bbi-2020"]


def test_lifecycle_and_events(env) -> None:  # type: ignore[no-untyped-def]
    client, settings, engine, op = env
    assert client.post(f"{URL}/open", headers=op).status_code == 409
    uid = add_business(engine)
    client.post(f"{URL}/join", headers=auth(settings))
    client.post(f"{URL}/purchases", json=purchase_body(uid, "A1"), headers=auth(settings))
    r = client.post(f"{URL}/close", headers=op)
    assert r.status_code == 200 and r.get_json()["status"] == "closed"
    assert _events(engine) == ["bbi.campaign.created.v1", "bbi.campaign.opened.v1",
                               "bbi.campaign.joined.v1", "bbi.campaign.purchase_recorded.v1",
                               "bbi.campaign.closed.v1"]
    late = client.post(f"{URL}/purchases", json=purchase_body(uid, "A2"), headers=auth(settings))
    assert late.status_code == 409 and late.get_json()["code"] == "campaign_not_open"


def test_join_once_and_eligibility(tmp_path: Path) -> None:
    settings = Settings.from_env("campaign", database_url=f"sqlite:///{tmp_path / 'c.db'}")
    app, _ = build(settings)
    c = app.test_client()
    c.post("/v1/campaigns", json=campaign_body("jabar", eligible_regions=["32"]),
           headers=auth(settings, "operator"))
    assert c.post("/v1/campaigns/jabar/join", headers=auth(settings, region="31")
                  ).get_json()["code"] == "region_not_eligible"
    first = c.post("/v1/campaigns/jabar/join", headers=auth(settings, region="32"))
    assert first.status_code == 201 and first.get_json()["state"] == "below"
    assert len(first.get_json()["official_id"]) == 32
    again = c.post("/v1/campaigns/jabar/join", headers=auth(settings, region="32"))
    assert again.status_code == 409 and again.get_json()["code"] == "already_joined"


def test_purchase_rules(env) -> None:  # type: ignore[no-untyped-def]
    client, settings, engine, _ = env
    me = auth(settings)
    uid = add_business(engine)
    post = lambda body: client.post(f"{URL}/purchases", json=body, headers=me)  # noqa: E731
    assert post(purchase_body(uid, "R0")).get_json()["code"] == "not_joined"
    client.post(f"{URL}/join", headers=me)
    assert post(purchase_body(uid, "R1", 120_000)).status_code == 201
    dup = post(purchase_body(uid, "r 1"))
    assert dup.status_code == 409 and dup.get_json()["code"] == "duplicate_order"
    assert post(purchase_body(uid, "R1", platform="shopee", amount_idr=10_000)).status_code == 201
    assert post(purchase_body(uid, "R3", 80_000)).get_json()["code"] == "band_exceeded"
    assert post(purchase_body(uid, "R4", 0)).status_code == 422
    assert post(purchase_body(uid, "R5", "1000")).status_code == 422
    early = post(purchase_body(uid, "R6", purchased_at="2019-07-01T10:00:00"))
    assert early.get_json()["code"] == "outside_window"
    unknown = post(purchase_body(str(uuid.uuid4()), "R7"))
    assert unknown.status_code == 409 and unknown.get_json()["code"] == "umkm_not_known_yet"
    assert int(unknown.headers["Retry-After"]) > 0
    mine = client.get(f"{URL}/purchases/mine", headers=me).get_json()
    assert mine["progress"]["spent_idr"] == 130_000 and mine["progress"]["state"] == "within"
    assert [p["order_ref"] for p in mine["purchases"]] == ["R1", "R1"]


def test_ceiling_is_configurable(env, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    _, settings, engine, _ = env
    # Read once, when the app is built: the same database, an app started with a lower ceiling.
    monkeypatch.setenv("CAMPAIGN_MAX_PURCHASE_IDR", "50000")
    app, _ = build(settings, engine)
    assert campaign_settings(settings).max_purchase_idr == 50_000
    client = app.test_client()
    uid = add_business(engine)
    client.post(f"{URL}/join", headers=auth(settings))
    r = client.post(f"{URL}/purchases", json=purchase_body(uid, "C1", 50_001),
                    headers=auth(settings))
    assert r.status_code == 422 and r.get_json()["code"] == "amount_above_ceiling"


def test_officials_see_only_their_own_purchases_and_no_nip_is_stored(env) -> None:  # type: ignore[no-untyped-def]
    client, settings, engine, _ = env
    a, b = auth(settings, sub=nip(1)), auth(settings, sub=nip(2), agency="BPS")
    uid = add_business(engine)
    for h, ref in ((a, "A"), (b, "B")):
        client.post(f"{URL}/join", headers=h)
        client.post(f"{URL}/purchases", json=purchase_body(uid, ref), headers=h)
    assert [p["order_ref"] for p in client.get(f"{URL}/purchases/mine", headers=b)
            .get_json()["purchases"]] == ["B"]
    with engine.connect() as conn:
        dump = repr(conn.execute(sa.select(purchases)).all()) + repr(
            conn.execute(sa.select(participants)).all())
        dump += repr(conn.execute(sa.select(outbox_table(metadata).c.payload)).all())
    assert nip(1) not in dump and nip(2) not in dump


def test_bad_official_claims_are_refused(env) -> None:  # type: ignore[no-untyped-def]
    client, settings, _, _ = env
    for h in (auth(settings, sub="12345"), auth(settings, region="99"),
              auth(settings, agency="")):
        r = client.post(f"{URL}/join", headers=h)
        assert r.status_code == 403 and r.get_json()["code"] == "official_claims_invalid"


def test_withdrawal_keeps_totals_but_drops_attribution(env) -> None:  # type: ignore[no-untyped-def]
    client, settings, engine, op = env
    uid, other = add_business(engine, "32"), add_business(engine, "35")
    client.post(f"{URL}/join", headers=auth(settings))
    for ref, u in (("W1", uid), ("W2", uid), ("W3", other)):
        client.post(f"{URL}/purchases", json=purchase_body(u, ref, 50_000),
                    headers=auth(settings))
    before = client.get(f"{URL}/totals").get_json()
    with engine.begin() as conn:
        on_withdrawn(conn, withdrawn(uid))
    after = client.get(f"{URL}/totals").get_json()
    assert before == after == {"code": "belanja-serentak-2020", "status": "open",
                               "participants": 1, "purchases": 3, "amount_idr": 150_000,
                               "distinct_umkm": 2}
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(purchases)
                            .where(purchases.c.umkm_id == uid)).scalar_one() == 0
    csv_text = client.get(f"{URL}/purchases.csv", headers=op).get_data(as_text=True)
    assert uid not in csv_text and csv_text.count("\n") == 4
    r = client.post(f"{URL}/purchases", json=purchase_body(uid, "W4"), headers=auth(settings))
    assert r.status_code == 409 and r.get_json()["code"] == "umkm_withdrawn"


def test_csv_export(env) -> None:  # type: ignore[no-untyped-def]
    client, settings, engine, op = env
    uid = add_business(engine)
    client.post(f"{URL}/join", headers=auth(settings))
    client.post(f"{URL}/purchases", json=purchase_body(uid, "=HYPERLINK(1)"),
                headers=auth(settings))
    r = client.get(f"{URL}/purchases.csv", headers=op)
    assert r.status_code == 200 and r.mimetype == "text/csv"
    lines = r.get_data(as_text=True).splitlines()
    assert lines[0].startswith("purchase_id,official_id,agency,umkm_id")
    assert "'=HYPERLINK(1)" in lines[1] and "+07:00" in lines[1]
    assert client.get("/v1/campaigns/nope/purchases.csv", headers=op).status_code == 404


def test_unknown_campaign_is_404(env) -> None:  # type: ignore[no-untyped-def]
    client, settings, _, _ = env
    assert client.get("/v1/campaigns/nope/totals").status_code == 404
    assert client.post("/v1/campaigns/nope/join", headers=auth(settings)).status_code == 404
