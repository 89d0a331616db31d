"""Issue 15 finding 2: a partner's report of a business the portal already knows adds that
platform's onboarding (once per business and platform, with an `onboarded` event whose
first_platform is right) instead of `already_registered`; and partner-reported businesses
follow the public lifecycle, so an operator can verify them."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from services.registration.partner.handlers import create_partner
from services.registration.store import umkm_platforms
from tests.unit.registration_helpers import (
    bearer,
    make_app,
    nik,
    outbox_events,
    owner,
    payload,
    sqlite_url,
)

URL = "/v1/partner/onboardings"


@pytest.fixture
def env(tmp_path: Path) -> Any:
    app, settings = make_app(sqlite_url(tmp_path))
    engine = app.extensions["bbi_engine"]
    keys = {p: {"X-API-Key": create_partner(engine, settings, p, p, p.title())}
            for p in ("tokopedia", "shopee")}
    return app.test_client(), settings, app, keys


def _report(client: Any, key: dict[str, str], *items: dict[str, Any]) -> dict[str, Any]:
    r = client.post(URL, json=list(items), headers=key)
    assert r.status_code == 200, r.get_json()
    return r.get_json()  # type: ignore[no-any-return]


def _merchant(n: int, ref: str, **over: Any) -> dict[str, Any]:
    return payload(n, merchant_ref=ref, **over)


def _onboarded(app: Any) -> list[tuple[str, str, bool]]:
    return [(e["subject"], e["data"]["platform"], e["data"]["first_platform"])
            for e in outbox_events(app) if e["type"] == "bbi.umkm.onboarded.v1"]


def _platforms(app: Any, uid: str) -> list[str]:
    p = umkm_platforms.c
    with app.extensions["bbi_engine"].connect() as conn:
        return sorted(conn.execute(sa.select(p.platform).where(p.umkm_id == uid)).scalars())


def test_finding2_a_partner_report_of_a_publicly_registered_business_adds_its_onboarding(
        env: Any) -> None:
    client, settings, app, keys = env
    public = client.post("/v1/umkm", json=payload(7), headers=owner(settings)).get_json()
    body = _report(client, keys["tokopedia"], _merchant(7, "TP-7"))
    assert body["summary"] == {"created": 0, "onboarded": 1, "already_registered": 0,
                               "invalid": 0}
    item = body["items"][0]
    assert (item["result"], item["id"], item["status"]) == ("onboarded", public["id"],
                                                            "registered")
    assert _platforms(app, public["id"]) == ["tokopedia"]
    assert _onboarded(app) == [(public["id"], "tokopedia", True)]  # its first platform
    # The owner sees it; the business stays theirs (a report never changes the owner).
    mine = client.get("/v1/umkm/mine", headers=owner(settings)).get_json()["items"]
    assert [p["platform"] for p in mine[0]["platforms"]] == ["tokopedia"]
    # Idempotent per business and platform: the same report again adds nothing.
    again = _report(client, keys["tokopedia"], _merchant(7, "TP-7"), _merchant(7, "TP-7b"))
    assert [i["result"] for i in again["items"]] == ["already_registered"] * 2
    assert len(_onboarded(app)) == 1


def test_finding2_a_business_on_two_platforms_is_onboarded_on_both(env: Any) -> None:
    client, _, app, keys = env
    first = _report(client, keys["tokopedia"], _merchant(3, "TP-3"))["items"][0]
    assert first["result"] == "created"
    # Shopee reports the same merchant (same NIB), twice in one batch: one onboarding.
    second = _report(client, keys["shopee"], _merchant(3, "SH-3"), _merchant(3, "SH-3x"))
    assert [i["result"] for i in second["items"]] == ["onboarded", "already_registered"]
    assert second["items"][0]["id"] == first["id"]
    assert _platforms(app, first["id"]) == ["shopee", "tokopedia"]
    assert _onboarded(app) == [(first["id"], "tokopedia", True),
                               (first["id"], "shopee", False)]  # one business, two platforms
    with app.extensions["bbi_engine"].connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM umkm")).scalar_one() == 1


def test_finding2_the_owners_nik_and_name_also_identify_a_known_business(env: Any) -> None:
    client, settings, app, keys = env
    public = client.post("/v1/umkm", json=payload(4, nib=None),
                         headers=owner(settings)).get_json()
    body = _report(client, keys["shopee"], _merchant(4, "SH-4", nib=None))
    assert body["items"][0]["result"] == "onboarded" and body["items"][0]["id"] == public["id"]
    # Same owner and name but another NIB: not provably the same business; nothing added.
    client.post("/v1/umkm", json=payload(5), headers=owner(settings))
    clash = _report(client, keys["shopee"], _merchant(5, "SH-5", nib="9129999999999"))
    assert clash["items"][0]["result"] == "already_registered"
    assert len(_onboarded(app)) == 1


def test_finding2_partner_reported_rows_follow_the_public_lifecycle(env: Any) -> None:
    client, settings, app, keys = env
    op = bearer(settings, "operator")
    uid = _report(client, keys["tokopedia"], _merchant(6, "TP-6"))["items"][0]["id"]
    base = f"/v1/umkm/{uid}"
    # registered (with its platform) -> not curatable before verification
    early = client.post(base + "/curation", json={"decision": "approved"}, headers=op)
    assert early.status_code == 409 and early.get_json()["current_status"] == "registered"
    verified = client.post(base + "/verification", json={}, headers=op)
    assert verified.status_code == 200, verified.get_json()
    assert verified.get_json()["status"] == "onboarded"  # verified, and on a platform
    assert [e["type"] for e in outbox_events(app)][-1] == "bbi.umkm.verified.v1"
    cur = client.post(base + "/curation", json={"decision": "approved"}, headers=op)
    assert cur.status_code == 200 and cur.get_json()["curation"] == "approved"
    view = client.get(base, headers=op).get_json()
    assert view["verified_at"] and [p["platform"] for p in view["platforms"]] == ["tokopedia"]


def test_finding2_a_verified_business_reported_by_a_partner_becomes_onboarded(
        env: Any) -> None:
    client, settings, app, keys = env
    op = bearer(settings, "operator")
    public = client.post("/v1/umkm", json=payload(8), headers=owner(settings)).get_json()
    client.post(f"/v1/umkm/{public['id']}/verification", json={}, headers=op)
    item = _report(client, keys["shopee"], _merchant(8, "SH-8"))["items"][0]
    assert (item["result"], item["status"]) == ("onboarded", "onboarded")
    assert client.get(f"/v1/umkm/{public['id']}", headers=op).get_json()["status"] == \
        "onboarded"


def test_finding2_a_withdrawn_business_is_not_joined(env: Any) -> None:
    client, settings, app, keys = env
    public = client.post("/v1/umkm", json=payload(9), headers=owner(settings)).get_json()
    client.delete(f"/v1/umkm/{public['id']}", headers=owner(settings))
    item = _report(client, keys["shopee"], _merchant(9, "SH-9"))["items"][0]
    assert item["result"] == "created" and item["id"] != public["id"]  # nothing left to match
    assert nik(9) not in str(outbox_events(app))
