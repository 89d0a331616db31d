"""Times are stored in UTC and shown in WIB (Asia/Jakarta), where people read them."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from marshmallow import fields

WIB: Final = ZoneInfo("Asia/Jakarta")


def to_utc(value: datetime) -> datetime:
    """A time people typed in WIB (naive) or with an offset, as UTC."""
    aware = value.replace(tzinfo=WIB) if value.tzinfo is None else value
    return aware.astimezone(UTC)


def to_wib(value: datetime) -> datetime:
    """A stored UTC time as people read it (Asia/Jakarta)."""
    return value.astimezone(WIB)


class WibDateTime(fields.AwareDateTime):
    """Read: an offset, or a naive time taken as WIB; loaded as UTC. Written back in WIB."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(default_timezone=WIB, **kw)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kw: Any) -> datetime:
        return to_utc(super()._deserialize(value, attr, data, **kw))

    def _serialize(self, value: datetime | None, attr: Any, obj: Any, **kw: Any) -> Any:
        return None if value is None else super()._serialize(to_wib(value), attr, obj, **kw)
