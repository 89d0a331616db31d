"""Pure registration rules (DESIGN §4): identity numbers, phone, region, KBLI, scale, lifecycle."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Final

import phonenumbers

from services.common.errors import DomainError
from services.common.reference import kbli_section, province_name
from services.common.validators import RuleBroken
from services.common.validators import validate_nip as shared_validate_nip

_WHITESPACE: Final = re.compile(r"\s+")
_SEPARATORS: Final = re.compile(r"[\s.\-]+")  # what people put between digit groups


def _compact(value: object, pattern: re.Pattern[str] = _WHITESPACE) -> str | None:
    """The value without separators, or None if it is not a string."""
    if not isinstance(value, str):
        return None
    return pattern.sub("", value)


def _digits(value: str | None, length: int) -> bool:
    # ASCII only: str.isdigit() also accepts e.g. Arabic-Indic and superscript digits.
    return value is not None and len(value) == length and value.isascii() and value.isdigit()


def _real_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


# --- NIK ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Nik:
    """A valid NIK and what it encodes; the number and birth date are kept out of repr (PII)."""

    value: str = field(repr=False)
    province_code: str
    regency_code: str  # the 4-digit Kemendagri kabupaten/kota code PPRR, e.g. "3171"
    birth_date: date = field(repr=False)
    sex: str  # "F" or "M"
    last4: str

    @property
    def masked(self) -> str:
        """The NIK with all but its last four digits hidden."""
        return mask_nik(self.last4)


def _nik_error(code: str, message_id: str, message_en: str) -> DomainError:
    return DomainError(code, message_id, message_en, field="nik")


def validate_nik(nik: str, today: date | None = None) -> Nik:
    """Check a NIK (PP RR KK DDMMYY SSSS) and return what it encodes."""
    today = today or date.today()
    value = _compact(nik)
    if value is None or not _digits(value, 16):
        raise _nik_error(
            "nik_invalid_format", "NIK harus terdiri dari 16 angka.", "A NIK must be 16 digits."
        )
    # The region is where the NIK was first issued; it is never compared with the business
    # address. Our own Kemendagri table is used because python-stdnum's lacks 65 and 93-96.
    province = value[:2]
    if province_name(province) is None:
        raise _nik_error(
            "nik_invalid_province",
            f"Kode provinsi {province} pada NIK tidak dikenal.",
            f"The NIK's province code {province} is not a Kemendagri province.",
        )
    regency = int(value[2:4])  # 01-69 kabupaten, 71-99 kota; 00 and 70 are never issued
    if regency == 0 or regency == 70:
        raise _nik_error(
            "nik_invalid_regency",
            "Kode kabupaten/kota pada NIK tidak valid.",
            "The NIK's regency/city code is not valid.",
        )
    day, month, yy = int(value[6:8]), int(value[8:10]), int(value[10:12])
    sex = "M"
    if day > 40:  # women's birth day is recorded plus 40 (41-71)
        day, sex = day - 40, "F"
    # Two-digit year: this century unless that year has not come yet. A date later in the
    # current year is then caught as a future birth date rather than read as 100 years ago.
    year = 2000 + yy if 2000 + yy <= today.year else 1900 + yy
    birth_date = _real_date(year, month, day)
    if birth_date is None:
        raise _nik_error(
            "nik_invalid_birth_date",
            "Tanggal lahir pada NIK tidak valid.",
            "The NIK's date of birth is not a real date.",
        )
    if birth_date > today:
        raise _nik_error(
            "nik_future_birth_date",
            "Tanggal lahir pada NIK berada di masa depan.",
            "The NIK's date of birth is in the future.",
        )
    if value[12:] == "0000":
        raise _nik_error(
            "nik_invalid_serial",
            "Nomor urut NIK tidak boleh 0000.",
            "The NIK's serial number cannot be 0000.",
        )
    return Nik(value, province, value[:4], birth_date, sex, value[12:])


def mask_nik(last4: str) -> str:
    """A NIK shown with only its last four digits, e.g. '************1234'."""
    if not _digits(last4, 4):
        raise ValueError("last4 must be exactly four digits")
    return "*" * 12 + last4


# --- NIB, NPWP, NIP -------------------------------------------------------------------------


def validate_nib(nib: str) -> str:
    """Check an OSS business number: 13 digits (there is no public checksum)."""
    value = _compact(nib)
    if value is None or not _digits(value, 13):
        raise DomainError(
            "nib_invalid",
            "NIB harus terdiri dari 13 angka.",
            "A NIB must be 13 digits.",
            field="nib",
        )
    return value


def _luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def npwp_is_nik(npwp: str) -> bool:
    """Whether a validated 16-digit NPWP is an individual's NIK (legacy ones start with 0).
    Such an NPWP IS a NIK: keyed hash and masked, never kept or shown in clear."""
    return npwp[:1] != "0"


def validate_npwp(npwp: str, today: date | None = None) -> str:
    """Check an NPWP and return its 16-digit form: a NIK, or 0 + the legacy 15 digits."""
    value = _compact(npwp, _SEPARATORS)  # legacy NPWPs are written 01.234.567.8-901.000
    if value is not None and _digits(value, 15):
        value = "0" + value  # the legacy form; since 2024 it is written with a leading 0
    if value is None or not _digits(value, 16):
        raise DomainError(
            "npwp_invalid_format",
            "NPWP harus terdiri dari 16 angka (atau 15 angka format lama).",
            "An NPWP must be 16 digits (or 15 in the legacy format).",
            field="npwp",
        )
    if value[0] != "0":  # an individual's NPWP is their NIK
        try:
            validate_nik(value, today)
        except DomainError as e:
            raise DomainError(
                "npwp_invalid_nik",
                f"NPWP berbentuk NIK tetapi NIK tidak valid: {e.message_id}",
                f"The NPWP has the shape of a NIK but is not a valid NIK: {e.message_en}",
                field="npwp",
            ) from e
        return value
    # Legacy layout: 2-digit taxpayer type, 6-digit serial, a Luhn check digit over those 8,
    # then tax office and branch; as python-stdnum's id.npwp checks digits 1-9 of the 15.
    if not _luhn_valid(value[1:10]):
        raise DomainError(
            "npwp_invalid_checksum",
            "Digit pemeriksa NPWP tidak cocok.",
            "The NPWP check digit does not match.",
            field="npwp",
        )
    return value


def validate_nip(nip: str, today: date | None = None) -> str:
    """Check a civil servant's NIP with the shared rule (services.common.validators)."""
    try:
        return shared_validate_nip(nip, today)
    except RuleBroken as e:
        raise DomainError(e.code, e.message_id, e.message_en, field="nip") from None


# --- phone, postal code, province, KBLI -----------------------------------------------------

# DESIGN §4: +62 8[1-35-9] and 7-10 more digits. phonenumbers' ID mobile pattern (9.0.x) is the
# same; we enforce both so a metadata change in either direction cannot widen what we accept.
_MOBILE_NSN: Final = re.compile(r"8[1-35-9][0-9]{7,10}")


def normalise_mobile(phone: str) -> str:
    """An Indonesian mobile number (08..., 628..., +628...) in E.164 form, +628..."""

    def error(code: str, message_id: str, message_en: str) -> DomainError:
        return DomainError(code, message_id, message_en, field="phone")

    invalid = error(
        "phone_invalid",
        "Nomor telepon tidak valid; gunakan format 08..., 628... atau +628...",
        "The phone number is not valid; use 08..., 628... or +628...",
    )
    value = _compact(phone, _SEPARATORS)
    if value is None or not re.fullmatch(r"\+?[0-9]+", value):
        raise invalid  # also keeps phonenumbers from reading letters as keypad digits
    if value.startswith("62"):
        value = "+" + value  # 62... without the plus is the country code, never a trunk prefix
    elif not value.startswith(("0", "+")):
        raise invalid  # a bare 812... is ambiguous; ask for one of the documented forms
    try:
        number = phonenumbers.parse(value, "ID")
    except phonenumbers.NumberParseException:
        raise invalid from None
    if number.country_code != 62:
        raise error(
            "phone_not_indonesian",
            "Nomor telepon harus nomor Indonesia (+62).",
            "The phone number must be Indonesian (+62).",
        )
    if not phonenumbers.is_valid_number(number):
        raise invalid
    nsn = phonenumbers.national_significant_number(number)
    is_mobile = phonenumbers.number_type(number) == phonenumbers.PhoneNumberType.MOBILE
    if not is_mobile or not _MOBILE_NSN.fullmatch(nsn):
        raise error(
            "phone_not_mobile",
            "Nomor telepon harus nomor seluler (08...), bukan telepon rumah/kantor.",
            "The phone number must be a mobile number (08...), not a landline.",
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def validate_postal_code(postal_code: str) -> str:
    """Check an Indonesian postal code: five digits, not starting with 0."""
    value = _compact(postal_code)
    if value is None or not re.fullmatch(r"[1-9][0-9]{4}", value):
        raise DomainError(
            "postal_code_invalid",
            "Kode pos harus 5 angka dan tidak diawali 0.",
            "A postal code must be 5 digits not starting with 0.",
            field="postal_code",
        )
    return value


def validate_province(code: str) -> str:
    """Check a two-digit Kemendagri province code."""
    value = _compact(code)
    if value is None or province_name(value) is None:
        raise DomainError(
            "province_invalid",
            "Kode provinsi tidak dikenal.",
            "Unknown province code.",
            field="province",
        )
    return value


def validate_kbli(code: str) -> tuple[str, str]:
    """Check a 5-digit KBLI 2020 code and return it with its section letter."""
    value = _compact(code)
    section = kbli_section(value) if value is not None and _digits(value, 5) else None
    if value is None or section is None:
        raise DomainError(
            "kbli_invalid",
            "Kode KBLI harus 5 angka dengan golongan pokok yang ada di KBLI 2020.",
            "A KBLI code must be 5 digits with a division that exists in KBLI 2020.",
            field="kbli",
        )
    return value, section


# --- scale (PP 7/2021 art. 35) --------------------------------------------------------------

# Upper limits, inclusive: the regulation says "sampai dengan paling banyak" (up to and
# including) for each class and "lebih dari" (more than) for the next.
_CAPITAL_LIMITS: Final = (
    ("mikro", 1_000_000_000),
    ("kecil", 5_000_000_000),
    ("menengah", 10_000_000_000),
)
_SALES_LIMITS: Final = (
    ("mikro", 2_000_000_000),
    ("kecil", 15_000_000_000),
    ("menengah", 50_000_000_000),
)


def _check_amount(amount: int | None, name: str) -> None:
    if amount is None:
        return
    # bool is an int subclass, and floats would let fractional rupiah in: refuse both.
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise DomainError(
            "amount_invalid",
            "Jumlah harus bilangan bulat rupiah.",
            "The amount must be a whole number of rupiah.",
            field=name,
        )
    if amount < 0:
        raise DomainError(
            "amount_negative",
            "Jumlah tidak boleh negatif.",
            "The amount cannot be negative.",
            field=name,
        )


def derive_scale(capital_idr: int | None, annual_sales_idr: int | None) -> str:
    """UMKM scale from capital excluding land and buildings, or else from annual sales."""
    _check_amount(capital_idr, "capital_idr")
    _check_amount(annual_sales_idr, "annual_sales_idr")
    if capital_idr is not None:  # capital is the criterion for establishing or registering
        amount, limits, name = capital_idr, _CAPITAL_LIMITS, "capital_idr"
    elif annual_sales_idr is not None:
        amount, limits, name = annual_sales_idr, _SALES_LIMITS, "annual_sales_idr"
    else:
        raise DomainError(
            "scale_basis_missing",
            "Isi modal usaha (tanpa tanah dan bangunan) atau hasil penjualan tahunan.",
            "Give the business capital (excluding land and buildings) or the annual sales.",
            field="capital_idr",
        )
    for scale, limit in limits:
        if amount <= limit:
            return scale
    raise DomainError(
        "scale_above_menengah",
        "Usaha melebihi batas usaha menengah (PP 7/2021) dan bukan UMKM.",
        "The business is above the medium-enterprise limits of PP 7/2021 and is not an UMKM.",
        field=name,
    )


# --- lifecycle ------------------------------------------------------------------------------


class Status(StrEnum):
    """Where a registration is in its lifecycle. Public and partner-reported businesses go
    the same way: registered -> verified (an operator) -> onboarded (verified, and on at least
    one digital platform) -> curated (the separate `curation` decision), or withdrawn from
    any state. A partner's report records its platform onboarding whatever the status; the
    status says `onboarded` once the business is also verified."""

    registered = "registered"
    verified = "verified"
    onboarded = "onboarded"
    withdrawn = "withdrawn"


class Curation(StrEnum):
    """The procurement-catalogue curation decision."""

    approved = "approved"
    rejected = "rejected"


_ACTIONS_ID: Final = {
    "verify": "diverifikasi",
    "onboard": "didaftarkan ke platform digital",
    "curate": "dikurasi",
    "withdraw": "ditarik",
}


def _invalid_transition(
    action: str, status: Status, detail_en: str = "", detail_id: str = ""
) -> DomainError:
    return DomainError(
        "invalid_transition",
        f"Pendaftaran berstatus '{status}' tidak dapat {_ACTIONS_ID[action]}{detail_id}.",
        f"Cannot {action} a registration whose status is '{status}'{detail_en}.",
        kind="conflict",
    )


def verify(status: Status | str, on_a_platform: bool = False) -> Status:
    """Operator verification: only a registered (not yet verified) UMKM can be verified; one
    already onboarded on a platform (reported by a partner) is then `onboarded`."""
    status = Status(status)
    if status is not Status.registered:
        raise _invalid_transition("verify", status)
    return Status.onboarded if on_a_platform else Status.verified


def onboard(status: Status | str) -> Status:
    """Onboarding onto a platform: after verification, and again for each further platform."""
    status = Status(status)
    if status not in (Status.verified, Status.onboarded):
        raise _invalid_transition("onboard", status)
    return Status.onboarded


def partner_onboard(status: Status | str) -> Status:
    """A partner platform reports a business it onboarded: recorded at any status but
    withdrawn; a verified business becomes `onboarded`, an unverified one stays `registered`
    until an operator verifies it."""
    status = Status(status)
    if status is Status.withdrawn:
        raise _invalid_transition("onboard", status)
    return Status.onboarded if status is Status.verified else status


def curate(
    status: Status | str, curation: Curation | str | None, decision: Curation | str
) -> Curation:
    """Curation for the catalogue: verified or onboarded UMKM, and only a changed decision."""
    status, decision = Status(status), Curation(decision)
    current = Curation(curation) if curation is not None else None
    if status not in (Status.verified, Status.onboarded):
        raise _invalid_transition("curate", status)
    if current is decision:
        raise _invalid_transition(
            "curate",
            status,
            f" and curation is already '{decision}'",
            f" karena kurasi sudah '{decision}'",
        )
    return decision


def withdraw(status: Status | str) -> Status:
    """Withdrawal by the data subject (UU 27/2022): from any state, once."""
    status = Status(status)
    if status is Status.withdrawn:
        raise _invalid_transition("withdraw", status)
    return Status.withdrawn


# --- duplicates -----------------------------------------------------------------------------

_NOT_WORD: Final = re.compile(r"[\W_]+", re.UNICODE)


def normalise_business_name(name: str) -> str:
    """The business name as compared for duplicates: case, spacing and punctuation ignored."""
    return " ".join(_NOT_WORD.sub(" ", name.casefold()).split())[:200]
