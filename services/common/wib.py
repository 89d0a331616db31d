"""Times are stored in UTC and shown where people read them: WIB (UTC+07:00) by default, or
the zone of a person's province (WIB, WITA UTC+08:00, WIT UTC+09:00)."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Final

from marshmallow import ValidationError, fields

from services.common.errors import FieldMessage

# WIB is UTC+7 by definition (Keppres 41/1987). Not ZoneInfo("Asia/Jakarta"): its history
# gives old dates offsets like +07:07:12, which RFC 3339 cannot write.
WIB: Final = timezone(timedelta(hours=7), "WIB")
WITA: Final = timezone(timedelta(hours=8), "WITA")  # Bali, Nusa Tenggara, Sulawesi, east Kalimantan
WIT: Final = timezone(timedelta(hours=9), "WIT")  # Maluku and Papua
ZONES: Final = {"WIB": WIB, "WITA": WITA, "WIT": WIT}


def zone_of(province_code: str | None) -> timezone:
    """The zone people in this province read clocks in (WIB when the province is unknown)."""
    from services.common.reference import province_zone

    return ZONES.get(province_zone(province_code or "") or "WIB", WIB)


def to_utc(value: datetime, zone: timezone = WIB) -> datetime:
    """A time people typed in `zone` (naive) or with an offset, as UTC."""
    aware = value.replace(tzinfo=zone) if value.tzinfo is None else value
    return aware.astimezone(UTC)


def to_local(value: datetime, zone: timezone) -> datetime:
    """A stored UTC time as people in `zone` read it."""
    return value.astimezone(zone)


def to_wib(value: datetime) -> datetime:
    """A stored UTC time as people read it (WIB)."""
    return value.astimezone(WIB)


class WibDateTime(fields.AwareDateTime):
    """Read: an offset, or a naive time taken as WIB; loaded as UTC. Written back in WIB."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(default_timezone=WIB, **kw)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kw: Any) -> datetime:
        try:
            utc = to_utc(super()._deserialize(value, attr, data, **kw))
            to_wib(utc)  # it must also be writable back, or it is stored and then a 500
        except OverflowError:  # the first or last hours of year 1 / 9999
            raise ValidationError(FieldMessage(
                "datetime_out_of_range", "Tanggal-waktu di luar rentang yang didukung.",
                "Date-time out of the supported range.")) from None
        return utc

    def _serialize(self, value: datetime | None, attr: Any, obj: Any, **kw: Any) -> Any:
        return None if value is None else super()._serialize(to_wib(value), attr, obj, **kw)
