"""Issue 15, finding 4: officials can name who they bought from. Each test fails on 50fc77b:
officials could not list campaigns (403), a purchase needed the internal UUID, nothing checked
the platform, and a naive time was read as WIB wherever the official was."""
from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from services.campaign.consumer import on_withdrawn
from services.common.config import Settings
from tests.event_factories import onboarded
from tests.unit.campaign_helpers import (
    add_business,
    auth,
    build,
    campaign_body,
    purchase_body,
    withdrawn,
)

URL = "/v1/campaigns/belanja-serentak-2020"
NIB = "9120000000777"


@pytest.fixture
def env(tmp_path: Path) -> Any:
    settings = Settings.from_env("campaign", database_url=f"sqlite:///{tmp_path / 'c.db'}")
    app, engine = build(settings)
    client = app.test_client()
    op = auth(settings, "operator")
    assert client.post("/v1/campaigns", json=campaign_body(), headers=op).status_code == 201
    assert client.post(f"{URL}/open", headers=op).status_code == 200
    return client, settings, engine, op


def _by_nib(**kw: Any) -> dict[str, Any]:
    body = purchase_body("", "N-1") | {"nib": NIB}
    del body["umkm_id"]
    return body | kw


def test_officials_list_the_open_campaigns_with_their_eligibility(env: Any) -> None:
    client, settings, _, op = env
    client.post("/v1/campaigns", headers=op, json=campaign_body(
        "hanya-bps", eligible_agencies=["BPS"]))
    client.post("/v1/campaigns/hanya-bps/open", headers=op)
    client.post("/v1/campaigns", headers=op, json=campaign_body("belum-dibuka"))  # a draft
    r = client.get("/v1/campaigns", headers=auth(settings))
    assert r.status_code == 200, r.get_json()
    assert {(c["code"], c["eligible"]) for c in r.get_json()} == {
        ("belanja-serentak-2020", True), ("hanya-bps", False)}
    everything = client.get("/v1/campaigns", headers=op).get_json()
    assert {c["code"] for c in everything} == {"belanja-serentak-2020", "hanya-bps",
                                               "belum-dibuka"}
    drafts = client.get("/v1/campaigns?status=draft", headers=op).get_json()
    assert [c["code"] for c in drafts] == ["belum-dibuka"]


def test_seller_search_by_name_and_province_shows_the_catalogue_only(env: Any) -> None:
    client, settings, engine, _ = env
    uid = add_business(engine, "73", owner="kc-owner-9", trade_name="Kopi Toraja Sapan",
                       nib=NIB, declared=("shopee",))
    with engine.begin() as conn:
        from services.campaign.consumer import consumers

        consumers()[0].apply(conn, [onboarded(uid, "tokopedia")])
    add_business(engine, "31", trade_name="Kopi Kenangan Rakyat", nib="9120000000778")
    me = auth(settings)
    r = client.get(f"{URL}/sellers?name=kopi%20TORAJA&province=73", headers=me)
    assert r.status_code == 200, r.get_json()
    assert r.get_json() == [{"umkm_id": uid, "trade_name": "Kopi Toraja Sapan", "nib": NIB,
                             "province_code": "73", "province_name": "Sulawesi Selatan",
                             "platforms": ["tokopedia"], "platforms_declared": ["shopee"]}]
    assert len(client.get(f"{URL}/sellers?name=kopi", headers=me).get_json()) == 2
    assert client.get(f"{URL}/sellers?name=kopi&province=51", headers=me).get_json() == []
    assert [s["umkm_id"] for s in client.get(f"{URL}/sellers?nib={NIB}",
                                             headers=me).get_json()] == [uid]
    nothing = client.get(f"{URL}/sellers", headers=me)
    assert nothing.status_code == 422 and nothing.get_json()["code"] == "search_term_required"
    assert client.get(f"{URL}/sellers?name=k", headers=me).status_code == 422  # too short
    assert client.get("/v1/campaigns/nope/sellers?name=kopi", headers=me).status_code == 404
    assert client.get(f"{URL}/sellers?name=kopi",
                      headers=auth(settings, "umkm", "kc-x")).status_code == 403


def test_a_purchase_names_its_seller_by_nib(env: Any) -> None:
    client, settings, engine, _ = env
    uid = add_business(engine, "35", trade_name="Batik Tulis Lasem", nib=NIB)
    me = auth(settings)
    client.post(f"{URL}/join", headers=me)
    r = client.post(f"{URL}/purchases", json=_by_nib(), headers=me)
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    assert (body["umkm_id"], body["province_code"], body["trade_name"], body["nib"]) == \
        (uid, "35", "Batik Tulis Lasem", NIB)
    mine = client.get(f"{URL}/purchases/mine", headers=me).get_json()["purchases"]
    assert [(p["umkm_id"], p["trade_name"]) for p in mine] == [(uid, "Batik Tulis Lasem")]
    both = client.post(f"{URL}/purchases", json=_by_nib(umkm_id=uid, order_ref="N-2"),
                       headers=me)
    neither = client.post(f"{URL}/purchases", json={
        k: v for k, v in _by_nib(order_ref="N-3").items() if k != "nib"}, headers=me)
    for r in (both, neither):
        assert r.status_code == 422 and r.get_json()["code"] == "seller_required"


def test_unknown_nib_withdrawn_and_not_yet_known_businesses_get_distinct_codes(env: Any) -> None:
    client, settings, engine, _ = env
    me = auth(settings)
    client.post(f"{URL}/join", headers=me)
    unknown = client.post(f"{URL}/purchases", json=_by_nib(), headers=me)
    assert unknown.status_code == 422 and unknown.get_json()["code"] == "nib_not_registered"
    assert unknown.get_json()["errors"]["nib"][0]["code"] == "nib_not_registered"
    uid = add_business(engine, trade_name="Tenun Ikat Sumba", nib=NIB)
    with engine.begin() as conn:
        on_withdrawn(conn, withdrawn(uid))
    by_id = client.post(f"{URL}/purchases", json=purchase_body(uid, "W-1"), headers=me)
    assert by_id.status_code == 409 and by_id.get_json()["code"] == "umkm_withdrawn"
    by_nib = client.post(f"{URL}/purchases", json=_by_nib(order_ref="W-2"), headers=me)
    assert by_nib.get_json()["code"] == "nib_not_registered"  # withdrawal erased the NIB
    assert client.get(f"{URL}/sellers?name=tenun", headers=me).get_json() == []
    later = client.post(f"{URL}/purchases", json=purchase_body(str(uuid.uuid4()), "W-3"),
                        headers=me)
    assert later.status_code == 409 and later.get_json()["code"] == "umkm_not_known_yet"
    assert {"message_id", "message_en"} <= set(unknown.get_json())


def test_a_platform_the_business_does_not_sell_on_is_refused(env: Any) -> None:
    client, settings, engine, _ = env
    uid = add_business(engine, declared=("gofood",))
    me = auth(settings)
    client.post(f"{URL}/join", headers=me)
    wrong = client.post(f"{URL}/purchases", headers=me,
                        json=purchase_body(uid, "P-0", 10_000, platform="lazada"))
    assert wrong.status_code == 422 and wrong.get_json()["code"] == "platform_not_used"
    with engine.begin() as conn:
        from services.common import umkm_directory

        umkm_directory.on_onboarded(conn, onboarded(uid, "shopee"))
    wrong = client.post(f"{URL}/purchases", headers=me,
                        json=purchase_body(uid, "P-1", 10_000, platform="lazada"))
    assert "gofood, shopee" in wrong.get_json()["message_en"]
    for n, platform in enumerate(("shopee", "gofood")):  # onboarded, and declared
        ok = client.post(f"{URL}/purchases", headers=me,
                         json=purchase_body(uid, f"P-{n + 2}", 10_000, platform=platform))
        assert ok.status_code == 201, ok.get_json()


@pytest.mark.parametrize("region, zone, hours", [("91", "WIT", 9), ("51", "WITA", 8),
                                                  ("31", "WIB", 7)])
def test_a_local_time_without_offset_is_read_in_the_officials_zone(
        env: Any, region: str, zone: str, hours: int) -> None:
    client, settings, engine, _ = env
    uid = add_business(engine)
    me = auth(settings, region=region)
    client.post(f"{URL}/join", headers=me)
    local = datetime.now(UTC).astimezone(timezone(timedelta(hours=hours))) - timedelta(minutes=3)
    naive = local.replace(tzinfo=None, microsecond=0)
    r = client.post(f"{URL}/purchases", headers=me, json=purchase_body(
        uid, "T-1", 10_000, purchased_at=naive.isoformat()))
    assert r.status_code == 201, r.get_json()  # in Papua, 50fc77b said purchase_in_future
    body = r.get_json()
    assert body["time_zone"] == zone
    assert body["purchased_at_local"] == naive.isoformat() + f"+0{hours}:00"
    assert datetime.fromisoformat(body["purchased_at"]) == local.replace(microsecond=0)


def test_explicit_offsets_in_all_three_zones_are_the_same_instant(env: Any) -> None:
    client, settings, engine, _ = env
    uid = add_business(engine)
    me = auth(settings, region="91")
    client.post(f"{URL}/join", headers=me)
    instant = (datetime.now(UTC) - timedelta(minutes=10)).replace(microsecond=0)
    seen = set()
    for n, hours in enumerate((7, 8, 9)):
        typed = instant.astimezone(timezone(timedelta(hours=hours))).isoformat()
        r = client.post(f"{URL}/purchases", headers=me,
                        json=purchase_body(uid, f"Z-{n}", 10_000, purchased_at=typed))
        assert r.status_code == 201, r.get_json()
        seen.add((datetime.fromisoformat(r.get_json()["purchased_at"]),
                  r.get_json()["purchased_at_local"]))
    assert seen == {(instant, instant.astimezone(timezone(timedelta(hours=9))).isoformat())}
    wib_now = datetime.now(UTC).astimezone(timezone(timedelta(hours=7))).replace(tzinfo=None)
    future = client.post(f"{URL}/purchases", headers=me, json=purchase_body(
        uid, "Z-9", 10_000, purchased_at=(wib_now + timedelta(hours=1)).isoformat()))
    # An hour ahead in WIB is still 1 h in the past for a Papuan official's naive clock...
    assert future.status_code == 201
    ahead = datetime.now(UTC).astimezone(timezone(timedelta(hours=9))).replace(tzinfo=None)
    future = client.post(f"{URL}/purchases", headers=me, json=purchase_body(
        uid, "Z-10", 10_000, purchased_at=(ahead + timedelta(hours=1)).isoformat()))
    assert future.get_json()["code"] == "purchase_in_future"  # ...an hour ahead in WIT is not


def test_extreme_times_are_a_422_never_a_500(env: Any) -> None:
    client, settings, engine, _ = env
    uid = add_business(engine)
    me = auth(settings, region="94")
    client.post(f"{URL}/join", headers=me)
    for n, when in enumerate(("0001-01-01T00:00:00", "9999-12-31T23:59:59-12:00",
                              "0001-01-01T05:00:00+14:00")):
        r = client.post(f"{URL}/purchases", headers=me,
                        json=purchase_body(uid, f"X-{n}", 10_000, purchased_at=when))
        assert r.status_code == 422, (when, r.get_json())


def test_campaign_imports_no_other_service() -> None:
    code = ("import sys, services.campaign.app, services.campaign.worker;"
            "print(sorted(m for m in sys.modules if m.startswith('services.') and "
            "m.split('.')[1] not in ('campaign', 'common')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == "[]"
