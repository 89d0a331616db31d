"""Registration domain rules (DESIGN §4)."""

from datetime import date
from decimal import Decimal

import pytest

from services.common.reference import provinces
from services.registration.domain import (
    Curation,
    DomainError,
    Nik,
    Status,
    curate,
    derive_scale,
    mask_nik,
    normalise_mobile,
    npwp_is_nik,
    onboard,
    partner_onboard,
    validate_kbli,
    validate_nib,
    validate_nik,
    validate_nip,
    validate_npwp,
    validate_postal_code,
    validate_province,
    verify,
    withdraw,
)

TODAY = date(2025, 6, 15)


def nik(pp="31", rr="71", kk="01", ddmmyy="170845", serial="0001") -> str:
    return pp + rr + kk + ddmmyy + serial


def refused(code, fn, *args, **kwargs) -> DomainError:
    """Assert fn raises DomainError with this code and bilingual messages; return it."""
    with pytest.raises(DomainError) as info:
        fn(*args, **kwargs)
    err = info.value
    assert err.code == code, err
    assert err.message_id and err.message_en
    assert err.message_id != err.message_en
    # A refused lifecycle step clashes with the current state; every other rule is bad input.
    assert err.kind == ("conflict" if code == "invalid_transition" else "invalid"), err
    return err


# --- NIK ------------------------------------------------------------------------------------


def test_valid_nik_man():
    got = validate_nik("3171011708450001", today=TODAY)
    assert got == Nik("3171011708450001", "31", "3171", date(1945, 8, 17), "M", "0001")


def test_valid_nik_woman_has_day_plus_40():
    got = validate_nik(nik(ddmmyy="570845"), today=TODAY)
    assert (got.birth_date, got.sex) == (date(1945, 8, 17), "F")


def test_nik_spaces_are_stripped():
    assert validate_nik(" 3171 0117 0845 0001 ", today=TODAY).value == "3171011708450001"


@pytest.mark.parametrize(
    "value",
    ["317101170845000", "31710117084500011", "", "3171-0117-0845-0001", "317101170845000a",
     "\uff13171011708450001", None, 3171011708450001],
)  # fmt: skip
def test_nik_format(value):
    err = refused("nik_invalid_format", validate_nik, value, today=TODAY)
    assert err.field == "nik"


@pytest.mark.parametrize("pp", sorted(provinces()))
def test_every_kemendagri_province_is_a_valid_nik_region(pp):
    assert validate_nik(nik(pp=pp), today=TODAY).province_code == pp


@pytest.mark.parametrize("pp", ["65", "91", "92", "93", "94", "95", "96"])
def test_kalimantan_utara_and_new_papua_provinces_are_valid(pp):
    assert validate_nik(nik(pp=pp), today=TODAY).province_code == pp


@pytest.mark.parametrize("pp", ["00", "99", "10", "20", "37", "66", "97"])
def test_unknown_province_is_refused(pp):
    refused("nik_invalid_province", validate_nik, nik(pp=pp), today=TODAY)


@pytest.mark.parametrize("rr", ["01", "69", "71", "99"])
def test_regency_codes_kabupaten_and_kota(rr):
    assert validate_nik(nik(rr=rr), today=TODAY).regency_code == "31" + rr


@pytest.mark.parametrize("rr", ["00", "70"])
def test_regency_00_and_70_are_refused(rr):
    refused("nik_invalid_regency", validate_nik, nik(rr=rr), today=TODAY)


@pytest.mark.parametrize(
    ("ddmmyy", "birth", "sex"),
    [
        ("010190", date(1990, 1, 1), "M"),
        ("310190", date(1990, 1, 31), "M"),
        ("410190", date(1990, 1, 1), "F"),
        ("710190", date(1990, 1, 31), "F"),
        ("290204", date(2004, 2, 29), "M"),  # leap year
        ("690204", date(2004, 2, 29), "F"),
        ("290200", date(2000, 2, 29), "M"),  # 2000 is a leap year (1900 was not)
        ("290228", date(1928, 2, 29), "M"),  # 2028 is still to come, so 1928 (a leap year)
        ("150625", date(2025, 6, 15), "M"),  # born today
        ("010126", date(1926, 1, 1), "M"),  # 2026 is still to come
        ("311299", date(1999, 12, 31), "M"),
        ("010100", date(2000, 1, 1), "M"),
    ],
)
def test_birth_date_sex_and_century(ddmmyy, birth, sex):
    got = validate_nik(nik(ddmmyy=ddmmyy), today=TODAY)
    assert (got.birth_date, got.sex) == (birth, sex)


@pytest.mark.parametrize(
    "ddmmyy",
    [
        "000190",  # day 0
        "320190",  # 32-40 are neither a man's nor a woman's day
        "400190",  # 40 - 40 = day 0
        "720190",  # 72 - 40 = 32
        "990190",
        "290203",  # 2003 and 1903 are not leap years
        "690203",
        "300290",
        "310490",  # April has 30 days
        "710490",  # a woman's 31 April
        "010090",  # month 0
        "011390",  # month 13
    ],
)
def test_impossible_birth_dates_are_refused(ddmmyy):
    refused("nik_invalid_birth_date", validate_nik, nik(ddmmyy=ddmmyy), today=TODAY)


@pytest.mark.parametrize("ddmmyy", ["160625", "311225", "560625"])
def test_future_birth_date_is_refused(ddmmyy):
    refused("nik_future_birth_date", validate_nik, nik(ddmmyy=ddmmyy), today=TODAY)


def test_century_follows_the_injected_today():
    value = nik(ddmmyy="010130")
    assert validate_nik(value, today=date(2030, 1, 1)).birth_date == date(2030, 1, 1)
    assert validate_nik(value, today=date(2029, 12, 31)).birth_date == date(1930, 1, 1)


def test_today_defaults_to_the_real_date():
    assert validate_nik(nik(ddmmyy="170845")).birth_date == date(1945, 8, 17)


def test_serial_0000_is_refused():
    refused("nik_invalid_serial", validate_nik, nik(serial="0000"), today=TODAY)


@pytest.mark.parametrize("serial", ["0001", "9999"])
def test_serial_edges(serial):
    assert validate_nik(nik(serial=serial), today=TODAY).last4 == serial


def test_nik_repr_hides_number_and_birth_date():
    got = validate_nik("3171011708450001", today=TODAY)
    assert "3171011708450001" not in repr(got)
    assert "1945" not in repr(got)
    assert got.masked == "************0001"


def test_mask_nik():
    assert mask_nik("1234") == "************1234"
    assert len(mask_nik("0000")) == 16


@pytest.mark.parametrize("last4", ["123", "12345", "12a4", ""])
def test_mask_nik_needs_four_digits(last4):
    with pytest.raises(ValueError):
        mask_nik(last4)


# --- NIB ------------------------------------------------------------------------------------


def test_nib():
    assert validate_nib("1234567890123") == "1234567890123"
    assert validate_nib(" 1234567890123 ") == "1234567890123"


@pytest.mark.parametrize("value", ["123456789012", "12345678901234", "123456789012a", "", None])
def test_nib_must_be_13_digits(value):
    assert refused("nib_invalid", validate_nib, value).field == "nib"


# --- NPWP -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("01.312.166.0-091.000", "0013121660091000"),  # legacy 15-digit, dotted
        ("013121660091000", "0013121660091000"),
        ("0013121660091000", "0013121660091000"),  # 16-digit form of a legacy number
        ("0 01.312.166.0-091.000", "0013121660091000"),
        ("01.609.052.4-017.000", "0016090524017000"),
        ("3171011708450001", "3171011708450001"),  # an individual's NIK
        ("3171-0117-0845-0001", "3171011708450001"),
    ],
)
def test_valid_npwp(value, expected):
    assert validate_npwp(value, today=TODAY) == expected


@pytest.mark.parametrize(
    "value", ["01.312.166.1-091.000", "013121661091000", "0013121661091000", "0103121660091000"]
)
def test_npwp_luhn_failure(value):
    assert refused("npwp_invalid_checksum", validate_npwp, value, today=TODAY).field == "npwp"


def test_npwp_luhn_covers_only_the_first_nine_legacy_digits():
    # Tax office and branch digits are outside the check.
    assert validate_npwp("01.312.166.0-999.999") == "0013121660999999"


@pytest.mark.parametrize(
    "value",
    ["9971011708450001", "3100011708450001", "3171013202900001", "3171011708450000"],
)
def test_npwp_shaped_like_a_nik_must_be_a_valid_nik(value):
    err = refused("npwp_invalid_nik", validate_npwp, value, today=TODAY)
    assert err.field == "npwp"
    assert isinstance(err.__cause__, DomainError)


@pytest.mark.parametrize(
    "value", ["12345678901234", "31710117084500011", "01.312.166.0-091.00a", "", None]
)
def test_npwp_format(value):
    refused("npwp_invalid_format", validate_npwp, value, today=TODAY)


# --- NIP ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("198001012005011001", "198001012005011001"),
        ("19800101 200501 1 001", "198001012005011001"),
        ("200002292024122999", "200002292024122999"),  # 29 Feb 2000, TMT Dec 2024, woman
    ],
)
def test_valid_nip(value, expected):
    assert validate_nip(value, today=TODAY) == expected


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("19800101200501100", "nip_invalid_format"),
        ("1980010120050110011", "nip_invalid_format"),
        ("19800101200501100a", "nip_invalid_format"),
        (None, "nip_invalid_format"),
        ("198002302005011001", "nip_invalid_birth_date"),
        ("190002292005011001", "nip_invalid_birth_date"),  # 1900 was not a leap year
        ("198000012005011001", "nip_invalid_birth_date"),
        ("203001012050011001", "nip_invalid_birth_date"),  # in the future
        ("198001012005131001", "nip_invalid_tmt"),
        ("198001012005001001", "nip_invalid_tmt"),
        ("198001012005010001", "nip_invalid_sex"),
        ("198001012005013001", "nip_invalid_sex"),
        ("198001012005011000", "nip_invalid_serial"),
    ],
)
def test_invalid_nip(value, code):
    assert refused(code, validate_nip, value, today=TODAY).field == "nip"


# --- phone ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "081234567890",
        "0812-3456-7890",
        "0812 3456 7890",
        "0812.3456.7890",
        " 0812 - 3456 - 7890 ",
        "6281234567890",
        "62 812 3456 7890",
        "62-812-3456-7890",
        "+6281234567890",
        "+62 812 3456 7890",
        "+62-812-3456-7890",
        "+62 812.3456.7890",
        "+62 0812 3456 7890",  # phonenumbers drops the redundant trunk 0 after +62
    ],
)
def test_every_input_form_normalises_to_e164(value):
    assert normalise_mobile(value) == "+6281234567890"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0812345678", "+62812345678"),  # shortest: 8X + 7 digits
        ("0812345678901", "+62812345678901"),  # longest: 8X + 10 digits
        ("0811234567", "+62811234567"),
        ("0821-1234-5678", "+6282112345678"),
        ("0831-1234-5678", "+6283112345678"),
        ("0851-1234-5678", "+6285112345678"),
        ("0877-1234-5678", "+6287712345678"),
        ("0881-1234-5678", "+6288112345678"),
        ("0895-1234-5678", "+6289512345678"),
    ],
)
def test_mobile_prefixes_and_lengths(value, expected):
    assert normalise_mobile(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "021-5551234",  # Jakarta
        "021 555 1234",
        "+62 21 5551234",
        "622155512345",
        "0361 123456",  # Denpasar
        "0361-1234567",
        "0274 512345",  # Yogyakarta
    ],
)
def test_landlines_are_refused(value):
    assert refused("phone_not_mobile", normalise_mobile, value).field == "phone"


@pytest.mark.parametrize(
    "value",
    [
        "081234567",  # 8X + 6 digits: too short
        "08123456789012",  # 8X + 11 digits: too long
        "0841234567890",  # 084 is not a mobile prefix
        "0801234567890",
        "81234567890",  # bare number without 0, 62 or +62
        "0812-FLOWERS",
        "(0812) 3456 7890",
        "",
        "+",
        None,
        81234567890,
    ],
)
def test_invalid_numbers_are_refused(value):
    refused("phone_invalid", normalise_mobile, value)


@pytest.mark.parametrize("value", ["+60 12-345 6789", "+1 650 253 0000", "+65 8123 4567"])
def test_foreign_numbers_are_refused(value):
    refused("phone_not_indonesian", normalise_mobile, value)


# --- postal code, province, KBLI ------------------------------------------------------------


@pytest.mark.parametrize("value", ["10110", "99999", " 80361 "])
def test_postal_code(value):
    assert validate_postal_code(value) == value.strip()


@pytest.mark.parametrize("value", ["01234", "00000", "1011", "101100", "1011a", "", None])
def test_postal_code_invalid(value):
    assert refused("postal_code_invalid", validate_postal_code, value).field == "postal_code"


@pytest.mark.parametrize("code", ["11", "31", "65", "93", "96"])
def test_validate_province(code):
    assert validate_province(code) == code


@pytest.mark.parametrize("code", ["00", "99", "3", "031", "", None])
def test_validate_province_invalid(code):
    assert refused("province_invalid", validate_province, code).field == "province"


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("47111", ("47111", "G")),
        ("01111", ("01111", "A")),
        ("10110", ("10110", "C")),
        ("33121", ("33121", "C")),
        ("56101", ("56101", "I")),
        ("99000", ("99000", "U")),
        (" 47111 ", ("47111", "G")),
    ],
)
def test_validate_kbli(code, expected):
    assert validate_kbli(code) == expected


@pytest.mark.parametrize(
    "code", ["00111", "04111", "34000", "40000", "89000", "4711", "471111", "4711a", "", None]
)
def test_validate_kbli_invalid(code):
    assert refused("kbli_invalid", validate_kbli, code).field == "kbli"


# --- scale ----------------------------------------------------------------------------------

B = 1_000_000_000


@pytest.mark.parametrize(
    ("capital", "scale"),
    [
        (0, "mikro"),
        (1 * B, "mikro"),
        (1 * B + 1, "kecil"),
        (5 * B, "kecil"),
        (5 * B + 1, "menengah"),
        (10 * B, "menengah"),
    ],
)
def test_scale_from_capital_boundaries(capital, scale):
    assert derive_scale(capital, None) == scale


@pytest.mark.parametrize(
    ("sales", "scale"),
    [
        (0, "mikro"),
        (2 * B, "mikro"),
        (2 * B + 1, "kecil"),
        (15 * B, "kecil"),
        (15 * B + 1, "menengah"),
        (50 * B, "menengah"),
    ],
)
def test_scale_from_sales_boundaries(sales, scale):
    assert derive_scale(None, sales) == scale


def test_above_menengah_capital_is_refused():
    err = refused("scale_above_menengah", derive_scale, 10 * B + 1, None)
    assert err.field == "capital_idr"


def test_above_menengah_sales_is_refused():
    err = refused("scale_above_menengah", derive_scale, None, 50 * B + 1)
    assert err.field == "annual_sales_idr"


@pytest.mark.parametrize(
    ("capital", "sales", "scale"),
    [
        (1 * B, 40 * B, "mikro"),
        (0, 3 * B, "mikro"),
        (6 * B, 1, "menengah"),
        (2 * B, 50 * B + 1, "kecil"),  # sales above the limit do not matter once capital is given
    ],
)
def test_capital_wins_over_sales(capital, sales, scale):
    assert derive_scale(capital, sales) == scale


def test_capital_above_limit_is_refused_even_with_small_sales():
    assert refused("scale_above_menengah", derive_scale, 11 * B, 1).field == "capital_idr"


def test_scale_needs_capital_or_sales():
    refused("scale_basis_missing", derive_scale, None, None)


@pytest.mark.parametrize(
    ("capital", "sales", "field"),
    [(-1, None, "capital_idr"), (None, -1, "annual_sales_idr"), (1, -1, "annual_sales_idr")],
)
def test_negative_amounts_are_refused(capital, sales, field):
    assert refused("amount_negative", derive_scale, capital, sales).field == field


@pytest.mark.parametrize("amount", [1.0, 1.5, True, False, Decimal("1"), "1000"])
def test_amounts_must_be_integer_rupiah(amount):
    refused("amount_invalid", derive_scale, amount, None)
    refused("amount_invalid", derive_scale, None, amount)


# --- lifecycle ------------------------------------------------------------------------------

ALL = list(Status)


@pytest.mark.parametrize("status", ALL)
def test_verify_only_from_registered(status):
    if status is Status.registered:
        assert verify(status) is Status.verified
    else:
        err = refused("invalid_transition", verify, status)
        assert status.value in err.message_en and status.value in err.message_id


@pytest.mark.parametrize("status", ALL)
def test_onboard_from_verified_or_onboarded(status):
    if status in (Status.verified, Status.onboarded):
        assert onboard(status) is Status.onboarded
    else:
        err = refused("invalid_transition", onboard, status)
        assert status.value in err.message_en and status.value in err.message_id


@pytest.mark.parametrize("status", ALL)
@pytest.mark.parametrize("current", [None, *Curation])
@pytest.mark.parametrize("decision", list(Curation))
def test_curate(status, current, decision):
    allowed = status in (Status.verified, Status.onboarded) and current is not decision
    if allowed:
        assert curate(status, current, decision) is decision
    else:
        err = refused("invalid_transition", curate, status, current, decision)
        assert status.value in err.message_en and status.value in err.message_id


def test_curation_may_be_reversed():
    assert curate(Status.onboarded, Curation.approved, Curation.rejected) is Curation.rejected
    assert curate(Status.verified, Curation.rejected, Curation.approved) is Curation.approved


@pytest.mark.parametrize("status", ALL)
def test_withdraw_from_anything_but_withdrawn(status):
    if status is Status.withdrawn:
        refused("invalid_transition", withdraw, status)
    else:
        assert withdraw(status) is Status.withdrawn


def test_nothing_happens_after_withdrawal():
    for action in (verify, onboard, withdraw):
        refused("invalid_transition", action, Status.withdrawn)
    refused("invalid_transition", curate, Status.withdrawn, None, Curation.approved)


def test_lifecycle_accepts_stored_strings():
    assert verify("registered") == "verified"
    assert onboard("verified") == "onboarded"
    assert curate("onboarded", None, "approved") == "approved"
    with pytest.raises(ValueError):
        verify("unknown")


def test_finding2_partner_reported_path_is_the_same_lifecycle():
    # A partner's report is recorded at any status but withdrawn; verification then
    # finds the business on a platform: onboarded.
    assert partner_onboard(Status.registered) is Status.registered
    assert partner_onboard(Status.verified) is Status.onboarded
    assert partner_onboard(Status.onboarded) is Status.onboarded
    refused("invalid_transition", partner_onboard, Status.withdrawn)
    status = verify(partner_onboard(Status.registered), on_a_platform=True)
    assert status is Status.onboarded
    assert curate(status, None, Curation.approved) is Curation.approved
    refused("invalid_transition", curate, Status.registered, None, Curation.approved)


def test_finding1_an_npwp_is_a_nik_unless_it_is_the_legacy_form():
    assert npwp_is_nik(validate_npwp(nik(), TODAY))
    assert not npwp_is_nik(validate_npwp("09.254.294.3-407.000", TODAY))


def test_full_path():
    status = verify(Status.registered)
    status = onboard(status)
    status = onboard(status)  # a second platform
    curation = curate(status, None, Curation.approved)
    assert (status, curation) == (Status.onboarded, Curation.approved)
    assert withdraw(status) is Status.withdrawn
