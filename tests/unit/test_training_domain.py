"""Pure training rules: seats and waitlist, enrolment windows, completion, attendance CSV."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from services.training import domain
from services.training.domain import DomainError

NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)


def test_seats_are_given_until_capacity_then_the_waitlist() -> None:
    states = [domain.seat_for(3, n) for n in range(5)]
    assert states == ["enrolled"] * 3 + ["waitlisted"] * 2


def test_promotion_takes_the_waitlist_head_in_arrival_order() -> None:
    assert domain.to_promote(10, 9, ["a", "b", "c"]) == ["a"]
    assert domain.to_promote(10, 7, ["a", "b"]) == ["a", "b"]
    assert domain.to_promote(10, 10, ["a"]) == []
    assert domain.seats_left(10, 12) == 0


def test_capacity_may_not_shrink_below_the_enrolled() -> None:
    domain.check_capacity(5, 5)
    with pytest.raises(DomainError) as e:
        domain.check_capacity(4, 5)
    assert (e.value.code, e.value.kind) == ("capacity_below_enrolled", "conflict")


@pytest.mark.parametrize(("status", "starts", "deadline", "code"), [
    ("cancelled", NOW + timedelta(days=1), NOW + timedelta(hours=1), "session_cancelled"),
    ("scheduled", NOW - timedelta(minutes=1), NOW - timedelta(hours=1), "session_past"),
    ("scheduled", NOW + timedelta(days=1), NOW - timedelta(seconds=1), "enrolment_closed"),
])
def test_enrolment_refused_with_its_own_code(status: str, starts: datetime, deadline: datetime,
                                             code: str) -> None:
    with pytest.raises(DomainError) as e:
        domain.check_enrolment_open(status, starts, deadline, NOW)
    assert (e.value.code, e.value.kind) == (code, "conflict")


def test_enrolment_open_until_the_deadline_inclusive() -> None:
    domain.check_enrolment_open("scheduled", NOW + timedelta(hours=1), NOW, NOW)


def test_schedule_rules() -> None:
    domain.check_schedule(NOW + timedelta(days=1), NOW + timedelta(days=1), NOW)
    with pytest.raises(DomainError, match="starts_in_past"):
        domain.check_schedule(NOW, NOW, NOW)
    with pytest.raises(DomainError, match="deadline_after_start"):
        domain.check_schedule(NOW + timedelta(days=1), NOW + timedelta(days=2), NOW)


def test_wib_conversion_of_naive_input_and_display() -> None:
    utc = domain.to_utc(datetime(2026, 12, 1, 10, 0))  # typed in WIB
    assert utc == datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
    assert domain.to_wib(utc).hour == 10 and domain.to_wib(utc).utcoffset() == timedelta(hours=7)


def test_course_complete_needs_every_current_module() -> None:
    assert domain.course_complete(["a", "b"], {"a", "b", "old"})
    assert not domain.course_complete(["a", "b"], {"a"})
    assert not domain.course_complete([], set())


def test_certificate_numbers_are_distinct_and_name_the_kind_and_wib_year() -> None:
    new_year_eve = datetime(2026, 12, 31, 18, 0, tzinfo=UTC)  # already 2027 in Jakarta
    a = domain.certificate_number("webinar", new_year_eve)
    b = domain.certificate_number("elearning", NOW)
    assert a.startswith("BBI-W-2027-") and b.startswith("BBI-E-2026-") and a != b


def test_csv_rows_with_line_numbers_and_malformed_rows() -> None:
    u = str(uuid.uuid4())
    rows, errors = domain.parse_attendance_csv(f"umkm_id\n{u}\n\na,b\n x \n")
    assert rows == [(2, u), (5, "x")]
    assert [(e.row, e.code) for e in errors] == [(4, "csv_row_malformed")]


@pytest.mark.parametrize("text", ["", "id\nabc\n", "umkm_id,name\n"])
def test_csv_header_must_be_umkm_id(text: str) -> None:
    rows, errors = domain.parse_attendance_csv(text)
    assert rows == [] and errors[0].code == "csv_header_invalid" and errors[0].row == 1


def test_csv_header_tolerates_a_bom_and_case() -> None:
    assert domain.parse_attendance_csv("\ufeffUMKM_ID\n")[1] == []


def test_attendance_of_a_withdrawn_business_is_refused_unless_already_recorded() -> None:
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    ids, errors = domain.check_attendance_rows([(2, a), (3, b)],
                                               {a: "enrolled", b: "attended"}, frozenset({a, b}))
    assert ids == [b] and [(e.row, e.code) for e in errors] == [(2, "umkm_withdrawn")]


def test_attendance_rows_must_name_seat_holders_once() -> None:
    a, b, c, d = (str(uuid.uuid4()) for _ in range(4))
    seats = {a: "enrolled", b: "waitlisted", c: "attended", d: "cancelled"}
    ids, errors = domain.check_attendance_rows(
        [(2, a), (3, b), (4, c), (5, "nope"), (6, a.upper()), (7, d), (8, str(uuid.uuid4()))],
        seats)
    assert ids == [a, c]
    assert [(e.row, e.code) for e in errors] == [
        (3, "not_enrolled"), (5, "not_uuid"), (6, "duplicate_row"), (7, "not_enrolled"),
        (8, "not_enrolled")]


def test_every_issued_certificate_number_is_one_the_public_check_looks_up() -> None:
    when = datetime(2026, 12, 31, 18, 0, tzinfo=UTC)  # already 2027 in WIB
    for kind in ("webinar", "elearning"):
        number = domain.certificate_number(kind, when)
        assert number.startswith("BBI-W-2027-" if kind == "webinar" else "BBI-E-2027-")
        assert domain.normal_certificate_number(number) == number
        assert domain.normal_certificate_number(f"  {number.lower()} ") == number
    for text in ("", "BBI-W-2027-7F3A9C21D", "BBI-W-2027-7F3A9C21D0X", "BBI-W-2027 7F3A9C21D0",
                 "BBI-W-２０２７-7F3A9C21D0", "BBI-Q-2027-7F3A9C21D0"):
        assert domain.normal_certificate_number(text) is None, text
