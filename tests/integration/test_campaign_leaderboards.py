"""Leaderboards by agency and by the UMKM's province against a hand-computed expectation."""
from __future__ import annotations

from services.common.config import Settings
from tests.unit.campaign_helpers import add_business, auth, build, campaign_body, nip, purchase_body

URL = "/v1/campaigns/belanja-serentak-2020"


def test_leaderboards_match_a_hand_computed_table(db_url: str) -> None:
    settings = Settings.from_env("campaign", database_url=db_url)
    app, engine = build(settings)
    c, op = app.test_client(), auth(settings, "operator")
    c.post("/v1/campaigns", json=campaign_body(), headers=op)
    c.post(f"{URL}/open", headers=op)
    jkt, jabar, bali = add_business(engine, "31"), add_business(engine, "32"), \
        add_business(engine, "51")
    jabar2 = add_business(engine, "32")
    # official: (agency, [(umkm, amount), ...])
    plan = {
        1: ("Kemenkeu", [(jkt, 150_000), (bali, 50_000)]),
        2: ("Kemenkeu", [(jabar, 100_000)]),
        3: ("BPS", [(jabar2, 120_000), (jabar, 80_000)]),
        4: ("KemenKopUKM", [(bali, 200_000)]),
        5: ("BPS", []),  # joined, bought nothing
    }
    n = 0
    for i, (agency, buys) in plan.items():
        me = auth(settings, sub=nip(i), agency=agency)
        assert c.post(f"{URL}/join", headers=me).status_code == 201
        for umkm, amount in buys:
            n += 1
            assert c.post(f"{URL}/purchases", json=purchase_body(umkm, f"O{n}", amount),
                          headers=me).status_code == 201
    # By hand: Kemenkeu 300,000 (3 buys, 2 officials); BPS 200,000 (2 buys, 2 officials);
    # KemenKopUKM 200,000 (1 buy, 1 official) -> BPS before KemenKopUKM on purchases.
    assert c.get(f"{URL}/leaderboard/agencies").get_json() == [
        {"rank": 1, "agency": "Kemenkeu", "participants": 2, "purchases": 3, "amount_idr": 300_000},
        {"rank": 2, "agency": "BPS", "participants": 2, "purchases": 2, "amount_idr": 200_000},
        {"rank": 3, "agency": "KemenKopUKM", "participants": 1, "purchases": 1,
         "amount_idr": 200_000},
    ]
    # By hand: 32 Jawa Barat 300,000 (3 buys, 2 shops); 51 Bali 250,000 (2 buys, 1 shop);
    # 31 DKI Jakarta 150,000 (1 buy, 1 shop).
    rows = c.get(f"{URL}/leaderboard/provinces").get_json()
    assert [(r["rank"], r["province_code"], r["purchases"], r["amount_idr"], r["distinct_umkm"])
            for r in rows] == [(1, "32", 3, 300_000, 2), (2, "51", 2, 250_000, 1),
                               (3, "31", 1, 150_000, 1)]
    assert rows[0]["province_name"] and rows[1]["province_name"]
    assert c.get(f"{URL}/totals").get_json() == {
        "code": "belanja-serentak-2020", "status": "open", "participants": 5, "purchases": 6,
        "amount_idr": 700_000, "distinct_umkm": 4}
