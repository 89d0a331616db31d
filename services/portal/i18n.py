"""Language (Bahasa Indonesia by default, English on request) and the way times and money
are shown: times in the zone of the province they belong to (WIB, WITA or WIT)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from flask import g, request

LANGS = ("id", "en")
LANG_COOKIE = "bbi_lang"  # a preference, not a secret: kept out of the session store
# Fixed offsets by law (Keppres 41/1987); ZoneInfo history would add odd minutes to old dates.
ZONES = {"WIB": timezone(timedelta(hours=7), "WIB"),
         "WITA": timezone(timedelta(hours=8), "WITA"),
         "WIT": timezone(timedelta(hours=9), "WIT")}
# Kemendagri province codes by time zone; every other province is WIB.
_WITA = {"51", "52", "53", "63", "64", "65", "71", "72", "73", "74", "75", "76"}
_WIT = {"81", "82", "91", "92", "93", "94", "95", "96"}
_MONTHS = {"id": ("Januari", "Februari", "Maret", "April", "Mei", "Juni", "Juli", "Agustus",
                  "September", "Oktober", "November", "Desember"),
           "en": ("January", "February", "March", "April", "May", "June", "July", "August",
                  "September", "October", "November", "December")}


def lang() -> str:
    if "lang" not in g:
        chosen = request.cookies.get(LANG_COOKIE, "")
        g.lang = chosen if chosen in LANGS else "id"
    return str(g.lang)


def t(text_id: str, text_en: str) -> str:
    """The Indonesian text, or the English one when the reader chose English."""
    return text_en if lang() == "en" else text_id


def zone_name(province_code: str | None) -> str:
    code = (province_code or "")[:2]
    return "WIT" if code in _WIT else "WITA" if code in _WITA else "WIB"


def parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def when(value: Any, province_code: str | None = None, with_time: bool = True,
         zone: str | None = None) -> str:
    """'5 Juli 2020 10.00 WITA': an API time shown in the province's (or given) zone."""
    moment = parse_time(value)
    if moment is None:
        return "-"
    name = zone if zone in ZONES else zone_name(province_code)
    local = moment.astimezone(ZONES[name])
    day = f"{local.day} {_MONTHS[lang()][local.month - 1]} {local.year}"
    if not with_time:
        return day
    sep = "." if lang() == "id" else ":"
    return f"{day} {local.hour:02d}{sep}{local.minute:02d} {name}"


def rupiah(amount: Any) -> str:
    """Rp1.500.000 (Indonesian digit grouping in both languages: it is the currency's)."""
    try:
        value = int(amount)
    except Exception:  # None, text or an undefined template value: shown as "-"
        return "-"
    return ("-" if value < 0 else "") + "Rp" + f"{abs(value):,}".replace(",", ".")


def number(value: Any) -> str:
    try:
        n = int(value)
    except Exception:  # None, text or an undefined template value: shown as "-"
        return "-"
    grouped = f"{n:,}"
    return grouped.replace(",", ".") if lang() == "id" else grouped


def platform_name(code: Any) -> str:
    from services.common.reference import PLATFORMS

    found = PLATFORMS.get(str(code))
    return found.name if found else str(code)


def province_name(code: Any) -> str:
    from services.common.reference import province_name as name

    return name(str(code)) or str(code)
