"""The bbi.umkm contracts: the owner's subject and the catalogue fields of a registration, the
claim, and what each consumer does with them. No personal data can pass for either."""
from __future__ import annotations

import json
from typing import Any

import pytest

from services.common.messaging import contracts
from services.common.messaging.events import EventError, make_event, parse_event
from tests.event_factories import claimed, registered

UID = "5f0c3a2e-1b7d-4a8e-9c1f-2d3e4f5a6b7c"


def _registration(**extra: Any) -> dict[str, Any]:
    return dict(registered(UID).data) | extra


def test_registration_carries_owner_trade_name_and_nib_and_round_trips() -> None:
    ev = make_event(contracts.UMKM_REGISTERED, "registration", _registration(
        owner_subject="f81d4fae-7dec-11d0-a765-00a0c91e6bf6", trade_name="Batik Tulis Lasem",
        nib="9120000000001"))
    back = parse_event(ev.to_bytes())
    assert back.data == ev.data and back.key == UID
    assert (back.data["owner_subject"], back.data["trade_name"], back.data["nib"]) == \
        ("f81d4fae-7dec-11d0-a765-00a0c91e6bf6", "Batik Tulis Lasem", "9120000000001")


def test_registrations_written_before_the_new_fields_and_unowned_partner_rows_stay_valid() -> None:
    old = make_event(contracts.UMKM_REGISTERED, "registration", _registration())
    assert "owner_subject" not in parse_event(old.to_bytes()).data
    partner = make_event(contracts.UMKM_REGISTERED, "registration", _registration(
        channel="partner", owner_subject=None, trade_name="Toko Berkah", nib=None))
    assert parse_event(partner.to_bytes()).data["owner_subject"] is None


@pytest.mark.parametrize("field, value", [
    ("owner_subject", "sri@example.id"),          # an e-mail address
    ("owner_subject", "Sri Rahayu"),              # a person's name
    ("owner_subject", "3171011708450001"),        # a NIK
    ("owner_subject", "198001012005011001"),      # a NIP
    ("owner_subject", ""),
    ("nib", "912000000000"),                      # 12 digits
    ("nib", "9120000000001\n"),
    ("trade_name", ""),
    ("trade_name", "x" * 201),
    ("owner_name", "Sri Rahayu"),                 # an extra (personal) field
])
def test_personal_data_or_malformed_values_are_refused(field: str, value: str) -> None:
    with pytest.raises(EventError) as err:
        make_event(contracts.UMKM_REGISTERED, "registration", _registration(**{field: value}))
    assert err.value.reason == "schema_invalid"


def test_claim_is_keyed_by_the_business_on_the_umkm_topic() -> None:
    ev = claimed(UID, "kc-7f3a")
    back = parse_event(ev.to_bytes())
    assert (back.type, back.topic, back.key) == ("bbi.umkm.claimed.v1", "bbi.umkm", UID)
    assert set(back.data) == {"umkm_id", "owner_subject", "claimed_at"}
    doc = json.loads(ev.to_bytes())
    del doc["data"]["owner_subject"]
    with pytest.raises(EventError):
        parse_event(json.dumps(doc).encode())


def test_training_and_campaign_keep_claims_and_onboardings_metrics_ignores_claims() -> None:
    from services.campaign.consumer import consumers as campaign
    from services.metrics.consumer import consumers as metrics
    from services.training.consumer import consumers as training

    for (c,) in (campaign(), training()):
        assert {contracts.UMKM_REGISTERED, contracts.UMKM_ONBOARDED, contracts.UMKM_CLAIMED,
                contracts.UMKM_WITHDRAWN} <= c.types, c.name
    # A claim changes who owns a business, not any count: the metrics runner skips it.
    assert contracts.UMKM_CLAIMED not in metrics()[0].types
