"""Partner bulk onboarding: API key, JSON/NDJSON, per-item results, dedupe, re-send."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from services.registration.partner.handlers import create_partner
from services.registration.store import partners, umkm, umkm_platforms
from tests.unit.registration_helpers import (
    make_app,
    outbox_events,
    owner,
    payload,
    sqlite_url,
    with_knobs,
)

URL = "/v1/partner/onboardings"


@pytest.fixture
def env(tmp_path: Path) -> Any:
    app, settings = make_app(sqlite_url(tmp_path))
    key = create_partner(app.extensions["bbi_engine"], settings, "tokopedia", "tokopedia",
                         "Tokopedia")
    return app.test_client(), app, {"X-API-Key": key}


def item(n: int, **over: Any) -> dict[str, Any]:
    return payload(n, **{"merchant_ref": f"TP-{n}", **over})


def _count(app: Any) -> int:
    with app.extensions["bbi_engine"].connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(umkm)).scalar_one()


def test_api_key_required_and_checked(env: Any) -> None:
    client, _, _ = env
    r = client.post(URL, json=[item(1)])
    assert r.status_code == 401 and r.get_json()["code"] == "api_key_missing"
    r = client.post(URL, json=[item(1)], headers={"X-API-Key": "bbi_wrong"})
    assert r.status_code == 401 and r.get_json()["code"] == "api_key_invalid"


def test_api_key_is_stored_hashed(env: Any) -> None:
    _, app, key = env
    with app.extensions["bbi_engine"].connect() as conn:
        stored = conn.execute(sa.select(partners.c.api_key_hash)).scalar_one()
    assert key["X-API-Key"] not in stored and len(stored) == 64


def test_batch_results_created_onboarded_duplicate_invalid_and_resend_adds_nothing(
        env: Any) -> None:
    client, app, key = env
    public = client.post("/v1/umkm", json=payload(9),
                         headers=owner(app.config["BBI_SETTINGS"])).get_json()
    batch = [item(1), item(2), item(1, merchant_ref="TP-1b"),   # same NIB as #0 in the batch
             item(3, merchant_ref="TP-1"),                      # same merchant ref as #0
             item(9, merchant_ref="TP-9"),                      # registered publicly: joins
             item(4, nik="123"), "not an object", item(5, store_url="https://t.co/x")]
    r = client.post(URL, json=batch, headers=key)
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    results = [i["result"] for i in body["items"]]
    assert results == ["created", "created", "already_registered", "already_registered",
                       "onboarded", "invalid", "invalid", "created"]
    assert body["summary"] == {"created": 3, "onboarded": 1, "already_registered": 2,
                               "invalid": 2}
    items = body["items"]
    assert items[2]["id"] == items[0]["id"] and items[3]["id"] == items[0]["id"]
    assert items[4]["id"] == public["id"] and items[4]["status"] == "registered"
    assert items[5]["errors"]["nik"][0]["code"] == "nik_invalid_format"
    assert items[6]["errors"]["_schema"][0]["code"] == "invalid_type"
    assert _count(app) == 4
    events = outbox_events(app)[1:]  # after the public registration's event
    assert [e["type"].split(".")[2] for e in events] == ["registered", "onboarded"] * 3 + [
        "onboarded"]  # the public business, now also on this platform
    assert all(e["data"]["channel"] == "partner" and e["data"]["partner_code"] == "tokopedia"
               for e in events[:6:2])
    assert all(e["data"]["first_platform"] and e["data"]["platform"] == "tokopedia"
               for e in events[1::2])
    assert events[-1]["subject"] == public["id"]
    again = client.post(URL, json=batch, headers=key).get_json()
    assert again["summary"] == {"created": 0, "onboarded": 0, "already_registered": 6,
                                "invalid": 2}
    assert _count(app) == 4 and len(outbox_events(app)) == 8


def test_partner_merchants_are_registered_with_their_platform_onboarding(env: Any) -> None:
    client, app, key = env
    created = client.post(URL, json=[item(1)], headers=key).get_json()["items"][0]
    assert created["status"] == "registered"  # not verified yet: an operator verifies it
    with app.extensions["bbi_engine"].connect() as conn:
        row = conn.execute(sa.select(umkm)).one()
        on = conn.execute(sa.select(umkm_platforms.c.platform)).scalars().all()
    assert (row.channel, row.partner_ref, row.status) == ("partner", "TP-1", "registered")
    assert on == ["tokopedia"]


def test_ndjson_is_accepted(env: Any) -> None:
    client, app, key = env
    text = "\n".join(json.dumps(item(n)) for n in (1, 2)) + "\n"
    r = client.post(URL, data=text, headers={**key, "Content-Type": "application/x-ndjson"})
    assert r.status_code == 200 and r.get_json()["summary"]["created"] == 2


@pytest.mark.parametrize("data,ctype,status,code", [
    ("{not json", "application/json", 400, "body_invalid"),
    ("{}", "application/json", 422, "batch_invalid"),
    ("[]", "application/json", 422, "batch_invalid"),
])
def test_bad_bodies(env: Any, data: str, ctype: str, status: int, code: str) -> None:
    client, _, key = env
    r = client.post(URL, data=data, headers={**key, "Content-Type": ctype})
    assert r.status_code == status and r.get_json()["code"] == code


def test_batch_size_is_bounded(env: Any) -> None:
    client, app, key = env
    with_knobs(app, partner_max_items=2)
    r = client.post(URL, json=[item(1), item(2), item(3)], headers=key)
    assert r.status_code == 422 and r.get_json()["code"] == "batch_too_large"


def test_partner_body_limit_is_larger_than_the_default(tmp_path: Path) -> None:
    app, settings = make_app(sqlite_url(tmp_path), max_body_bytes=4096)
    key = create_partner(app.extensions["bbi_engine"], settings, "shopee", "shopee", "Shopee")
    client = app.test_client()
    big = [item(n) for n in range(1, 30)]  # ~15 KB: over the default, under the partner limit
    h = {"X-API-Key": key, "Idempotency-Key": "batch-1"}
    r = client.post(URL, json=big, headers=h)
    assert r.status_code == 200 and r.get_json()["summary"]["created"] == 29
    replay = client.post(URL, json=big, headers=h)
    assert replay.headers["Idempotent-Replayed"] == "true" and replay.get_json() == r.get_json()
    assert client.post("/v1/umkm", json=payload(address="x" * 5000),
                       headers=owner(settings)).status_code == 413


def test_bbi_partner_create_prints_a_working_key(tmp_path: Path, monkeypatch: Any) -> None:
    url = sqlite_url(tmp_path)
    monkeypatch.setenv("REGISTRATION_DATABASE_URL", url)
    app, _ = make_app(url)
    from devtools.cli import main
    out = CliRunner().invoke(main, ["partner", "create", "--code", "blibli", "--platform",
                                    "blibli", "--name", "Blibli"])
    assert out.exit_code == 0, out.output
    key = out.output.strip()
    r = app.test_client().post(URL, json=[item(1)], headers={"X-API-Key": key})
    assert r.status_code == 200 and r.get_json()["partner"] == "blibli"
