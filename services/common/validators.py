"""Field validators shared by the request schemas and the event contracts."""
from __future__ import annotations

import re
from datetime import date
from typing import Any, cast

from marshmallow import validate

from services.common.errors import FieldMessage


class Pattern(validate.Regexp):
    """A regular expression the WHOLE value must match, with ASCII character classes.

    marshmallow's Regexp uses `re.match`, so `^[0-9]{4}$` also accepts "3171\\n" (`$` matches
    before a final newline) and `\\d` accepts any Unicode digit ("٣١٧١"). The pattern in the
    OpenAPI document stays the portable `^...$` form."""

    def __init__(self, regex: str, error: str | None = None) -> None:
        super().__init__(regex, flags=re.ASCII, error=error)

    def __call__(self, value: Any) -> Any:
        regex = cast("re.Pattern[str]", self.regex)  # marshmallow types it loosely
        if not isinstance(value, str) or regex.fullmatch(value) is None:
            raise validate.ValidationError(self._format_error(value))
        return value

    def _format_error(self, value: Any) -> str:
        if isinstance(self.error, FieldMessage):  # str.format would drop its code and Indonesian
            return self.error
        return super()._format_error(value)


class RuleBroken(ValueError):
    """A value breaks a shared rule: a machine code and messages in Indonesian and English."""

    def __init__(self, code: str, message_id: str, message_en: str) -> None:
        super().__init__(f"{code}: {message_en}")
        self.code, self.message_id, self.message_en = code, message_id, message_en


def _real_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def validate_nip(nip: object, today: date | None = None) -> str:
    """A civil servant's NIP (18 digits: birth yyyymmdd, TMT yyyymm, sex 1/2, serial), compact.

    Shared because registration and campaign both read NIPs and no service imports another."""
    today = today or date.today()
    # Commonly written in groups: 19800101 200501 1 001.
    value = "".join(nip.split()) if isinstance(nip, str) else ""
    if len(value) != 18 or not value.isascii() or not value.isdigit():
        raise RuleBroken("nip_invalid_format", "NIP harus terdiri dari 18 angka.",
                         "A NIP must be 18 digits.")
    birth = _real_date(int(value[0:4]), int(value[4:6]), int(value[6:8]))
    if birth is None or birth > today:
        raise RuleBroken("nip_invalid_birth_date", "Tanggal lahir pada NIP tidak valid.",
                         "The NIP's date of birth is not a valid date.")
    if _real_date(int(value[8:12]), int(value[12:14]), 1) is None:
        raise RuleBroken("nip_invalid_tmt",
                         "Bulan TMT (terhitung mulai tanggal) pada NIP tidak valid.",
                         "The NIP's appointment month (TMT) is not a valid month.")
    if value[14] not in "12":
        raise RuleBroken("nip_invalid_sex", "Kode jenis kelamin pada NIP harus 1 atau 2.",
                         "The NIP's sex digit must be 1 or 2.")
    if value[15:] == "000":
        raise RuleBroken("nip_invalid_serial", "Nomor urut NIP tidak boleh 000.",
                         "The NIP's serial number cannot be 000.")
    return value
