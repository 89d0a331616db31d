"""The partner batch fast path accepts only what the schema accepts, and returns the same data.

Refusals always come from the schema (the fast path declines), so equality on accepted items
plus "declined or accepted by the schema too" is the whole contract."""
from __future__ import annotations

import json
import random
from typing import Any

import pytest
from marshmallow import ValidationError

from services.registration import domain
from services.registration.partner import items as partner_fast
from services.registration.partner.items import _Decline, _mobile, fast_load
from services.registration.schemas import PartnerItemIn
from tests.unit.registration_helpers import CONSENT, payload

SCHEMA = PartnerItemIn(consent_version=CONSENT)
WEIRD: list[Any] = [None, "", " ", 0, 1, -5, 1.5, True, False, "true", "1", [], {}, ["a"],
                    "x" * 201, "x" * 501, "\u0663\u0661\u0667\u0661", "3171\n", " 31 ", "31\t",
                    "3172", "0000000000000", "https://", "not a url", "a@b", "Sri@Example.ID"]
MISSING = object()


def merchant(n: int) -> dict[str, Any]:
    return payload(n, merchant_ref=f"M-{n}", store_url=f"https://shop.example/m{n}",
                   phone=random.choice(["0812-3456-7890", "+62 812 3456 7890", "6281234567890",
                                        "0857 1234 5678", "08991234567"]),
                   platforms=random.choice([[], ["shopee"], ["shopee", "tokopedia", "shopee"]]),
                   capital_idr=random.choice([None, 0, 10**9, 5 * 10**9]),
                   annual_sales_idr=random.choice([None, 10**9, 60 * 10**9]),
                   npwp=random.choice([None, "01.234.567.8-901.000", "3171011708450001"]),
                   mentor_org=random.choice([None, " Rumah BUMN "]),
                   business_name=f"  Warung {n}  ", email=random.choice([None, "A@Example.id"]))


def schema_load(item: Any) -> dict[str, Any] | None:
    try:
        return SCHEMA.load(item)  # type: ignore[no-any-return]
    except ValidationError:
        return None


def check(item: Any) -> dict[str, Any] | None:
    """The contract for one input; returns the fast result."""
    fast = fast_load(item, CONSENT)
    if fast is not None:
        assert fast == schema_load(item), item
    return fast


def test_plain_valid_merchants_take_the_fast_path_with_identical_data() -> None:
    random.seed(7)
    items = [merchant(n) for n in range(1, 400)]
    taken = [check(m) for m in items]
    valid = [m for m in items if schema_load(m) is not None]
    assert len(valid) > 100 and sum(t is not None for t in taken) == len(valid)


@pytest.mark.parametrize("field", sorted(set(PartnerItemIn().fields) | {"extra"}))
def test_every_odd_value_of_every_field_is_declined_or_identical(field: str) -> None:
    random.seed(field)
    for value in [*WEIRD, MISSING]:
        item = merchant(3)
        if value is MISSING:
            item.pop(field, None)
        else:
            item[field] = value
        check(item)


@pytest.mark.parametrize("consent", [
    {"given": "true", "version": "2025-01"}, {"given": 1, "version": "2025-01"},
    {"given": True}, {"given": True, "version": "2024-01"}, {"given": False, "version": "2025-01"},
    {"given": True, "version": "2025-01", "extra": 1}, "yes", None, [],
])
def test_consent_variants(consent: Any) -> None:
    check({**merchant(4), "consent": consent})


def test_not_an_object_is_declined() -> None:
    for item in ("x", 1, None, [merchant(1)]):
        assert fast_load(item, CONSENT) is None


def test_cross_field_rules_still_apply() -> None:
    assert check(merchant(5) | {"regency_code": "3273"}) is None  # outside province 31
    assert check(merchant(5) | {"capital_idr": None, "annual_sales_idr": None}) is None
    assert check(merchant(5) | {"capital_idr": 11 * 10**9}) is None


@pytest.mark.parametrize("analysed", [True, False])
def test_mobile_fast_path_matches_the_domain_rule(analysed: bool, monkeypatch: Any) -> None:
    """With the analysed metadata (the pinned phonenumbers) and, as after an upgrade of it,
    asking phonenumbers for each number's type."""
    assert partner_fast._metadata_as_analysed(), (
        "phonenumbers' Indonesian metadata changed: re-check the analysis in partner_fast and "
        "update _ANALYSED_ID_METADATA (until then every phone costs a number_type call)")
    monkeypatch.setattr(partner_fast, "_metadata_as_analysed", lambda: analysed)
    rng = random.Random(62)
    forms = ("0{}", "62{}", "+62{}", "+62 {}", "0{}-", "+620{}", "62 0{}", "{}")
    accepted = 0
    for _ in range(10_000):
        nsn = str(rng.randint(1, 9)) + "".join(rng.choice("0123456789")
                                               for _ in range(rng.randint(6, 13)))
        if rng.random() < 0.6:
            nsn = "8" + nsn[1:]
        text = rng.choice(forms).format(nsn)
        try:
            got = _mobile(text)
        except _Decline:
            continue
        assert got == domain.normalise_mobile(text), text
        accepted += 1
    assert accepted > 500  # the fast path is really taken


def test_batch_events_equal_make_event_and_honour_the_contract(tmp_path: Any) -> None:
    from services.common.messaging.events import make_event, parse_event
    from services.registration.partner.handlers import create_partner
    from tests.unit.registration_helpers import make_app, outbox_events, sqlite_url

    app, settings = make_app(sqlite_url(tmp_path))
    key = create_partner(app.extensions["bbi_engine"], settings, "shopee", "shopee", "Shopee")
    random.seed(11)
    batch = [merchant(n) for n in range(1, 60)]
    r = app.test_client().post("/v1/partner/onboardings", json=batch,
                               headers={"X-API-Key": key, "X-Correlation-ID": "corr-1"})
    created = r.get_json()["summary"]["created"]
    events = outbox_events(app)
    assert created > 20 and len(events) == 2 * created
    for doc in events:
        parsed = parse_event(json.dumps(doc).encode())  # the consumers' contract check
        rebuilt = make_event(doc["type"], "registration", doc["data"])
        assert doc["data"] == rebuilt.data == parsed.data
        assert (doc["subject"], doc["source"], doc["correlationid"]) == \
            (rebuilt.subject, rebuilt.source, "corr-1")
        assert doc["time"].endswith("Z") and doc["data"]["umkm_id"] == doc["subject"]


@pytest.mark.parametrize("cid", ["", "corr-\"2\"\u00e9"])
def test_outbox_payloads_are_the_bytes_event_to_bytes_writes(cid: str) -> None:
    """The template-built payloads against the canonical events: Event objects with the
    (type, data) new_business_events gives, encoded by Event.to_bytes."""
    from services.common.db.engine import utcnow
    from services.common.messaging.events import Event, make_event, parse_event
    from services.common.observability import correlation_id
    from services.registration.config import load_settings
    from services.registration.handlers import SOURCE
    from services.registration.partner.events import new_business_events, outbox_rows
    from services.registration.store import new_row

    settings, now = load_settings(), utcnow()
    random.seed(5)
    items = [merchant(n) for n in range(1, 40)] + [
        payload(50, merchant_ref="M-50", address="Jl. Mawar 1\nRT 02 \"A\"")]  # escaped in JSON
    data = [d for d in (schema_load(i) for i in items) if d is not None]
    assert len(data) > 20 and any("\n" in d["address"] for d in data)
    rows = [new_row(settings, d, now, "partner", "onboarded", "toko\"pedia") for d in data]
    token = correlation_id.set(cid)
    try:
        out = list(outbox_rows(rows, "tokopedia", now, "pre."))
    finally:
        correlation_id.reset(token)
    assert len(out) == 2 * len(rows)
    at = now.isoformat()
    for k, o in enumerate(out):
        r = rows[k // 2]
        doc = json.loads(o["payload"])
        type_, canonical = new_business_events(r, "tokopedia", now)[k % 2]
        # The data as Event carries it: times in their dump form (all of them are `now`).
        ref_data = {key: at if key.endswith("_at") else v for key, v in canonical.items()}
        assert o["event_type"] == type_
        ref = Event(id=o["event_id"], type=type_, source=SOURCE,
                    time=at.replace("+00:00", "Z"), subject=r["id"], data=ref_data,
                    correlationid=cid or doc["correlationid"])
        assert o["payload"] == ref.to_bytes()
        assert (o["topic"], o["key"], o["created_at"]) == ("pre." + ref.topic, r["id"], now)
        assert parse_event(o["payload"]).data == make_event(ref.type, SOURCE, ref_data).data
    ids = [json.loads(o["payload"])["id"] for o in out]
    cids = {json.loads(o["payload"])["correlationid"] for o in out}
    assert len(set(ids)) == len(ids) and len(cids) == (1 if cid else len(out))
