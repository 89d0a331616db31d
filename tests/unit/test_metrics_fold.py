"""The pure fold: every event type, withdrawal correction, curation changes."""

from __future__ import annotations

import json
import uuid

import pytest

from services.common.messaging import contracts as c
from services.metrics.domain import (
    CONSUMED_TYPES,
    Business,
    Fold,
    UnknownBusiness,
    labels_json,
    national_targets,
)
from tests.fixtures.metrics_sample import NOW, ev, expected, mixed_stream, registered


def _fold(events, known=None) -> Fold:  # type: ignore[no-untyped-def]
    f = Fold(known or {})
    for e in events:
        f.apply(e.type, e.data)
    return f


def _v(f: Fold, metric: str, **labels: str) -> int:
    return f.deltas[(metric, labels_json(**labels))]


def test_registration_counts_gauge_counter_and_qris() -> None:
    uid = str(uuid.uuid4())
    f = _fold([registered(uid, "32", "kecil", "47111", qris=True)])
    assert _v(f, "bbi_umkm_registered", province="32", scale="kecil") == 1
    assert _v(f, "bbi_umkm_registrations_total", province="32", scale="kecil") == 1
    assert _v(f, "bbi_umkm_qris_adopted", province="32", scale="kecil") == 1
    assert f.changed[uid] == Business(uid, "32", "kecil", "G", True, registered_at=NOW)
    assert _v(f, "bbi_metrics_events_applied_total", type=c.UMKM_REGISTERED) == 1


def test_onboarding_counts_business_once_and_each_platform_once() -> None:
    uid = str(uuid.uuid4())
    on = [
        ev(
            c.UMKM_ONBOARDED,
            {"umkm_id": uid, "platform": p, "first_platform": False, "onboarded_at": NOW},
        )
        for p in ("shopee", "gofood", "shopee")
    ]
    f = _fold([registered(uid, "31", "mikro", "56101"), *on])
    assert _v(f, "bbi_umkm_onboarded", province="31", scale="mikro", kbli_section="I") == 1
    assert _v(f, "bbi_umkm_platform_onboarded", platform="shopee") == 1
    assert _v(f, "bbi_umkm_platform_onboardings_total", platform="gofood") == 1
    assert f.known[uid].platforms == ("gofood", "shopee")


def test_withdrawal_subtracts_exactly_what_the_business_added() -> None:
    uid = str(uuid.uuid4())
    f = _fold(
        [
            registered(uid, "51", "menengah", "10110", qris=True),
            ev(c.UMKM_VERIFIED, {"umkm_id": uid, "verified_at": NOW}),
            ev(
                c.UMKM_ONBOARDED,
                {
                    "umkm_id": uid,
                    "platform": "tokopedia",
                    "first_platform": True,
                    "onboarded_at": NOW,
                },
            ),
            ev(
                c.UMKM_CURATED,
                {
                    "umkm_id": uid,
                    "decision": "approved",
                    "previous_decision": None,
                    "curated_at": NOW,
                },
            ),
            ev(c.UMKM_WITHDRAWN, {"umkm_id": uid, "withdrawn_at": NOW}),
            ev(c.UMKM_WITHDRAWN, {"umkm_id": uid, "withdrawn_at": NOW}),
            ev(
                c.UMKM_ONBOARDED,
                {
                    "umkm_id": uid,
                    "platform": "shopee",
                    "first_platform": False,
                    "onboarded_at": NOW,
                },
            ),
        ]
    )
    business = {k: v for k, v in f.deltas.items() if k[0] != "bbi_metrics_events_applied_total"}
    nonzero = {k[0]: v for k, v in business.items() if v}
    assert nonzero == {
        "bbi_umkm_registrations_total": 1,
        "bbi_umkm_withdrawals_total": 1,
        "bbi_umkm_platform_onboardings_total": 1,
    }
    assert f.known[uid].status == "withdrawn"


def test_withdrawal_of_stored_business_uses_stored_attributes() -> None:
    uid = str(uuid.uuid4())
    stored = Business(uid, "11", "kecil", "C", False, True, ("gofood",), "rejected")
    f = _fold([ev(c.UMKM_WITHDRAWN, {"umkm_id": uid, "withdrawn_at": NOW})], {uid: stored})
    assert _v(f, "bbi_umkm_registered", province="11", scale="kecil") == -1
    assert _v(f, "bbi_umkm_verified", province="11", scale="kecil") == -1
    assert _v(f, "bbi_umkm_onboarded", province="11", scale="kecil", kbli_section="C") == -1
    assert _v(f, "bbi_umkm_platform_onboarded", platform="gofood") == -1
    assert _v(f, "bbi_umkm_curated", province="11", decision="rejected") == -1
    assert _v(f, "bbi_umkm_qris_adopted", province="11", scale="kecil") == 0


def test_curation_change_moves_the_business() -> None:
    uid = str(uuid.uuid4())
    stored = Business(uid, "35", "mikro", "C", False, curation="approved")
    f = _fold(
        [
            ev(
                c.UMKM_CURATED,
                {
                    "umkm_id": uid,
                    "decision": "rejected",
                    "previous_decision": "approved",
                    "curated_at": NOW,
                },
            ),
            ev(
                c.UMKM_CURATED,
                {
                    "umkm_id": uid,
                    "decision": "rejected",
                    "previous_decision": "rejected",
                    "curated_at": NOW,
                },
            ),
        ],
        {uid: stored},
    )
    assert _v(f, "bbi_umkm_curated", province="35", decision="approved") == -1
    assert _v(f, "bbi_umkm_curated", province="35", decision="rejected") == 1


@pytest.mark.parametrize(
    "type_", [c.UMKM_VERIFIED, c.UMKM_ONBOARDED, c.UMKM_CURATED, c.UMKM_WITHDRAWN]
)
def test_unknown_business_is_refused(type_: str) -> None:
    uid = str(uuid.uuid4())
    data = {
        c.UMKM_VERIFIED: {"verified_at": NOW},
        c.UMKM_ONBOARDED: {"platform": "shopee", "first_platform": True, "onboarded_at": NOW},
        c.UMKM_CURATED: {"decision": "approved", "previous_decision": None, "curated_at": NOW},
        c.UMKM_WITHDRAWN: {"withdrawn_at": NOW},
    }[type_]
    with pytest.raises(UnknownBusiness):
        _fold([ev(type_, {"umkm_id": uid, **data})])


def test_every_event_type_of_the_mixed_stream_folds_to_the_naive_expectation() -> None:
    events = mixed_stream(60, seed=3)
    assert {e.type for e in events} == set(CONSUMED_TYPES)
    f = _fold(events)
    got = {(m, tuple(sorted(json.loads(lb).items()))): v for (m, lb), v in f.deltas.items() if v}
    assert got == {k: v for k, v in expected(events).items() if v}


def test_targets_are_data_one_row_per_metric_and_year() -> None:
    ts = national_targets()
    keys = [(t.metric, t.year) for t in ts]
    assert len(keys) == len(set(keys))
    assert {(t.metric, t.year): t.value for t in ts}[("umkm_onboarded_total", 2022)] == 20_000_000
    assert all(t.source_seed for t in ts)
