"""Times are stored in UTC and shown in WIB (UTC+07:00), where people read them."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Final

from marshmallow import ValidationError, fields

# WIB is UTC+7 by definition (Keppres 41/1987). Not ZoneInfo("Asia/Jakarta"): its history
# gives old dates offsets like +07:07:12, which RFC 3339 cannot write.
WIB: Final = timezone(timedelta(hours=7), "WIB")


def to_utc(value: datetime) -> datetime:
    """A time people typed in WIB (naive) or with an offset, as UTC."""
    aware = value.replace(tzinfo=WIB) if value.tzinfo is None else value
    return aware.astimezone(UTC)


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
            raise ValidationError("datetime_out_of_range|Tanggal-waktu di luar rentang yang "
                                  "didukung.|Date-time out of the supported range.") from None
        return utc

    def _serialize(self, value: datetime | None, attr: Any, obj: Any, **kw: Any) -> Any:
        return None if value is None else super()._serialize(to_wib(value), attr, obj, **kw)
