"""Pure campaign rules: window, band, ceiling, duplicates, eligibility, lifecycle, WIB times."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.campaign import domain
from services.campaign.domain import WIB, Band, DomainError

START = datetime(2020, 7, 1, 0, 0, tzinfo=WIB)
END = datetime(2020, 7, 1, 23, 59, 59, tzinfo=WIB)
BAND = Band(100_000, 200_000)
SKEW = timedelta(minutes=5)


def code_of(fn, *args) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(DomainError) as e:
        fn(*args)
    return e.value.code


def test_naive_times_are_wib_and_stored_as_utc() -> None:
    utc = domain.to_utc(datetime(2020, 7, 1, 8, 0))
    assert utc == datetime(2020, 7, 1, 1, 0, tzinfo=UTC) and utc.tzinfo == UTC
    assert domain.to_utc(datetime(2020, 7, 1, 8, 0, tzinfo=UTC)).hour == 8
    assert domain.to_wib(utc).isoformat() == "2020-07-01T08:00:00+07:00"


@pytest.mark.parametrize(("start", "end", "band", "code"), [
    (START, START, BAND, "window_invalid"),
    (END, START, BAND, "window_invalid"),
    (START, END, Band(200_001, 200_000), "band_invalid"),
    (START, END, Band(-1, 200_000), "band_invalid"),
    (START, END, Band(0, 0), "band_invalid"),
])
def test_bad_definitions_are_refused(start, end, band, code) -> None:  # type: ignore[no-untyped-def]
    assert code_of(domain.check_definition, start, end, band) == code


def test_good_definition_passes() -> None:
    domain.check_definition(START, END, BAND)
    domain.check_definition(START, END, Band(0, 1))


@pytest.mark.parametrize(("when", "ok"), [
    (START, True), (END, True), (START + timedelta(hours=9), True),
    (START - timedelta(seconds=1), False), (END + timedelta(seconds=1), False),
])
def test_purchase_must_be_inside_the_window(when: datetime, ok: bool) -> None:
    now = END + timedelta(days=1)
    if ok:
        domain.check_purchase_time("open", when, START, END, now, SKEW)
    else:
        assert code_of(domain.check_purchase_time, "open", when, START, END, now,
                       SKEW) == "outside_window"


@pytest.mark.parametrize("status", ["draft", "closed"])
def test_purchase_needs_an_open_campaign(status: str) -> None:
    assert code_of(domain.check_purchase_time, status, START, START, END, END,
                   SKEW) == "campaign_not_open"


def test_purchase_in_the_future_is_refused_beyond_skew() -> None:
    now = START + timedelta(hours=1)
    domain.check_purchase_time("open", now + timedelta(minutes=4), START, END, now, SKEW)
    assert code_of(domain.check_purchase_time, "open", now + timedelta(minutes=6), START, END,
                   now, SKEW) == "purchase_in_future"


@pytest.mark.parametrize(("amount", "code"), [
    (0, "amount_invalid"), (-5, "amount_invalid"), (1.5, "amount_invalid"),
    ("150000", "amount_invalid"), (True, "amount_invalid"),
    (10_000_001, "amount_above_ceiling"),
])
def test_amount_rules(amount: object, code: str) -> None:
    assert code_of(domain.check_amount, amount, 10_000_000) == code


def test_amount_at_ceiling_and_one_rupiah_pass() -> None:
    assert domain.check_amount(10_000_000, 10_000_000) == 10_000_000
    assert domain.check_amount(1, 10_000_000) == 1


def test_band_allows_up_to_max_only() -> None:
    domain.check_band(0, 200_000, BAND)
    domain.check_band(150_000, 50_000, BAND)
    assert code_of(domain.check_band, 150_000, 50_001, BAND) == "band_exceeded"


def test_progress_against_the_band() -> None:
    assert domain.progress(0, BAND)["state"] == "below"
    assert domain.progress(0, BAND)["remaining_to_min_idr"] == 100_000
    p = domain.progress(150_000, BAND)
    assert p["state"] == "within" and p["remaining_to_max_idr"] == 50_000
    assert domain.progress(200_001, BAND)["state"] == "above"


def test_a_clash_with_the_current_state_is_a_conflict_and_bad_input_is_invalid() -> None:
    def kind_of(fn, *args) -> str:  # type: ignore[no-untyped-def]
        with pytest.raises(DomainError) as e:
            fn(*args)
        return e.value.kind

    assert kind_of(domain.check_transition, domain.CLOSED, "open") == "conflict"
    assert kind_of(domain.check_can_join, domain.CLOSED) == "conflict"
    assert kind_of(domain.check_purchase_time, domain.DRAFT, START, START, END, END,
                   SKEW) == "conflict"
    key = domain.order_key("shopee", "A1")
    assert kind_of(domain.check_not_duplicate, key, {key}) == "conflict"
    assert kind_of(domain.check_amount, 0, 10) == "invalid"
    assert kind_of(domain.check_eligible, "a", "31", ["b"], []) == "invalid"


def test_duplicate_order_refs_per_platform() -> None:
    known = {domain.order_key("tokopedia", "INV/20200701/XX/1")}
    dup = domain.order_key("tokopedia", " inv/20200701/xx/1 ")
    assert code_of(domain.check_not_duplicate, dup, known) == "duplicate_order"
    # The same reference on another platform is another order.
    domain.check_not_duplicate(domain.order_key("shopee", "INV/20200701/XX/1"), known)


def test_eligibility_lists_restrict_when_set() -> None:
    domain.check_eligible("KemenKopUKM", "31", [], [])
    domain.check_eligible("KemenKopUKM", "31", ["KemenKopUKM"], ["31", "32"])
    assert code_of(domain.check_eligible, "BPS", "31", ["KemenKopUKM"], []) == \
        "agency_not_eligible"
    assert code_of(domain.check_eligible, "KemenKopUKM", "11", [], ["31"]) == \
        "region_not_eligible"


def test_lifecycle() -> None:
    assert domain.check_transition("draft", "open") == "open"
    assert domain.check_transition("open", "close") == "closed"
    for status, action in [("draft", "close"), ("open", "open"), ("closed", "open"),
                           ("closed", "close")]:
        assert code_of(domain.check_transition, status, action) == "invalid_transition"
    domain.check_can_join("draft")
    domain.check_can_join("open")
    assert code_of(domain.check_can_join, "closed") == "campaign_closed"
