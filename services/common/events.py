"""CloudEvents 1.0 envelope (structured JSON mode) and the event-type registry.

The registry maps each versioned type to its marshmallow data schema and its topic; both the
producer (outbox) and every consumer validate against the same definition."""
from __future__ import annotations

import functools
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from marshmallow import Schema, ValidationError

SPEC_VERSION = "1.0"
DATA_CONTENT_TYPE = "application/json"
# Why a consumer dead-letters an event (the parse reasons, then a handler that raised).
DEAD_LETTER_REASONS = ("not_json", "bad_envelope", "unknown_type", "schema_invalid",
                       "handler_error")
# json.dumps with arguments builds a new encoder per call (~40% of encoding a small event).
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
ENVELOPE_FIELDS = ("specversion", "id", "source", "type", "time", "datacontenttype", "data")


class EventError(ValueError):
    """An event that cannot be accepted: not JSON, bad envelope, unknown type, invalid data."""

    def __init__(self, reason: str, detail: Any = None) -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class EventType:
    name: str
    topic: str
    schema: type[Schema]
    key_field: str


_REGISTRY: dict[str, EventType] = {}


def register(name: str, topic: str, schema: type[Schema], key_field: str) -> None:
    """Declare a versioned event type; called once per type by `contracts`."""
    if name in _REGISTRY:
        raise RuntimeError(f"event type {name} registered twice")
    _REGISTRY[name] = EventType(name, topic, schema, key_field)


def event_type(name: str) -> EventType:
    from services.common import contracts  # noqa: F401  (fills the registry)

    try:
        return _REGISTRY[name]
    except KeyError:
        raise EventError("unknown_type", name) from None


@functools.cache
def _schema(et: EventType) -> Schema:
    """One instance per type: building a schema costs more than loading an event with it."""
    return et.schema()


def registered_types() -> dict[str, EventType]:
    from services.common import contracts  # noqa: F401

    return dict(_REGISTRY)


@dataclass(frozen=True)
class Event:
    """A validated CloudEvent."""

    id: str
    type: str
    source: str
    time: str
    subject: str
    data: dict[str, Any]
    correlationid: str

    @property
    def topic(self) -> str:
        return event_type(self.type).topic

    @property
    def key(self) -> str:
        return self.subject

    def to_dict(self) -> dict[str, Any]:
        return {
            "specversion": SPEC_VERSION,
            "id": self.id,
            "source": self.source,
            "type": self.type,
            "time": self.time,
            "subject": self.subject,
            "datacontenttype": DATA_CONTENT_TYPE,
            "correlationid": self.correlationid,
            "data": self.data,
        }

    def to_bytes(self) -> bytes:
        return _ENCODER.encode(self.to_dict()).encode()


def make_event(
    type_: str, source: str, data: dict[str, Any], correlation_id: str | None = None,
    time: datetime | None = None,
) -> Event:
    """Build and validate an event; invalid data is a programming error (raises)."""
    et = event_type(type_)
    try:
        dumped = _schema(et).dump(_schema(et).load(_jsonable(data)))
    except ValidationError as exc:
        raise EventError("schema_invalid", exc.messages) from exc
    subject = str(dumped[et.key_field])
    when = (time or datetime.now(UTC)).astimezone(UTC)
    return Event(
        id=str(uuid.uuid4()), type=type_, source=source,
        time=when.isoformat().replace("+00:00", "Z"), subject=subject, data=dumped,
        correlationid=correlation_id or str(uuid.uuid4()),
    )


def parse_event(raw: bytes | None) -> Event:
    """Parse and validate bytes from Kafka; raises EventError with a reason code."""
    if raw is None:
        raise EventError("not_json", "empty message")
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EventError("not_json", str(exc)) from exc
    if not isinstance(doc, dict):
        raise EventError("bad_envelope", "not an object")
    missing = [f for f in ENVELOPE_FIELDS if f not in doc]
    if missing or doc.get("specversion") != SPEC_VERSION or not isinstance(doc.get("data"), dict):
        raise EventError("bad_envelope", {"missing": missing, "specversion": doc.get("specversion")})
    et = event_type(str(doc["type"]))
    try:
        data = _schema(et).load(doc["data"])
    except ValidationError as exc:
        raise EventError("schema_invalid", exc.messages) from exc
    return Event(
        id=str(doc["id"]), type=et.name, source=str(doc["source"]), time=str(doc["time"]),
        subject=str(doc.get("subject") or data.get(et.key_field)), data=_schema(et).dump(data),
        correlationid=str(doc.get("correlationid") or ""),
    )


def _jsonable(data: dict[str, Any]) -> dict[str, Any]:
    """Round-trip through JSON so schemas load what consumers will see (datetimes as text)."""
    return json.loads(json.dumps(data, default=_default))


def _default(obj: Any) -> Any:
    if isinstance(obj, datetime):
        return obj.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(obj, uuid.UUID):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
