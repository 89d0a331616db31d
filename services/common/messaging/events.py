"""CloudEvents 1.0 envelope (structured JSON mode) and the event-type registry.

The registry maps each versioned type to its marshmallow data schema and its topic; both the
producer (outbox) and every consumer validate against the same definition."""
from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields
from marshmallow import missing as MISSING
from marshmallow.validate import Validator

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
    from services.common.messaging import contracts  # noqa: F401  (fills the registry)

    try:
        return _REGISTRY[name]
    except KeyError:
        raise EventError("unknown_type", name) from None


@functools.cache
def _schema(et: EventType) -> Schema:
    """One instance per type: building a schema costs more than loading an event with it."""
    return et.schema()


def registered_types() -> dict[str, EventType]:
    from services.common.messaging import contracts  # noqa: F401

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
        raise EventError("bad_envelope",
                         {"missing": missing, "specversion": doc.get("specversion")})
    et = event_type(str(doc["type"]))
    data = _load_fast(et, doc["data"])
    if data is None:  # not the canonical form: marshmallow decides (and words the reasons)
        try:
            data = _schema(et).dump(_schema(et).load(doc["data"]))
        except ValidationError as exc:
            raise EventError("schema_invalid", exc.messages) from exc
    return Event(
        id=str(doc["id"]), type=et.name, source=str(doc["source"]), time=str(doc["time"]),
        subject=str(doc.get("subject") or data.get(et.key_field)), data=data,
        correlationid=str(doc.get("correlationid") or ""),
    )


# --- fast path -----------------------------------------------------------------------------
# Why it exists: 15 us per event against marshmallow's 38 (bench stream, CPU time), and parsing
# is a fifth of the metrics consumer's CPU; tests/unit/test_common_events_fast.py pins it to
# marshmallow's answers.
# marshmallow's load + dump was half of a consumer's apply time. For the field types of our
# contracts, the data that producers write (make_event: already loaded and dumped once) is
# checked here with the schema's own validators and returned exactly as load + dump would
# return it. Anything else -- a missing or unknown field, another type, a failed validator, a
# field feature not handled below -- returns None and goes through marshmallow, so inputs are
# accepted and rejected exactly as before, with marshmallow's own messages.
Convert = Callable[[Any], Any]
_Spec = tuple[str, Convert, bool, bool]  # name, load+dump of a non-null value, required, nullable


class _Slow(Exception):
    """The fast path cannot vouch for this value."""


def _load_fast(et: EventType, data: dict[str, Any]) -> dict[str, Any] | None:
    plan = _fast_plan(et)
    if plan is None:
        return None
    names, specs = plan
    for key in data:
        if key not in names:
            return None
    out: dict[str, Any] = {}
    try:
        for name, convert, required, allow_none in specs:
            if name not in data:
                if required:
                    return None
                continue
            value = data[name]
            if value is None:
                if not allow_none:
                    return None
                out[name] = None
            else:
                out[name] = convert(value)
    except Exception:  # noqa: BLE001 - any doubt at all: marshmallow decides
        return None
    return out


@functools.cache
def _fast_plan(et: EventType) -> tuple[frozenset[str], list[_Spec]] | None:
    """Per-field converters for a schema, or None when it uses anything not handled here."""
    schema = _schema(et)
    if schema.unknown != RAISE or any(schema._hooks.values()):
        return None
    if list(schema.load_fields) != list(schema.dump_fields):
        return None
    specs = []
    for name, field in schema.fields.items():
        convert = _converter(field)
        if convert is None or field.data_key is not None or field.attribute is not None:
            return None
        if field.load_default is not MISSING or field.dump_default is not MISSING:
            return None
        specs.append((name, convert, bool(field.required), bool(field.allow_none)))
    return frozenset(schema.fields), specs


def _converter(field: fields.Field) -> Convert | None:
    """load + dump of one non-null value of this field, raising when unsure."""
    if getattr(field, "pre_load", None) or getattr(field, "post_load", None):
        return None
    checks = list(field.validators)

    def validated(value: Any) -> Any:
        for check in checks:
            if check(value) is False and not isinstance(check, Validator):
                raise _Slow
        return value

    kind = type(field)
    if kind is fields.String:
        return lambda v: validated(v) if type(v) is str else _slow()
    if kind is fields.Boolean:
        return lambda v: validated(v) if type(v) is bool else _slow()
    if kind is fields.Integer and not field.as_string:  # type: ignore[attr-defined]
        return lambda v: validated(v) if type(v) is int else _slow()
    if kind is fields.UUID:
        return lambda v: str(validated(uuid.UUID(v))) if type(v) is str else _slow()
    if kind is fields.AwareDateTime and _iso_like_marshmallow(field):
        return lambda v: _aware(validated, v)
    if kind is fields.List:
        inner = _converter(field.inner)  # type: ignore[attr-defined]
        if inner is None or field.inner.allow_none:  # type: ignore[attr-defined]
            return None
        return lambda v: validated([inner(x) for x in v]) if type(v) is list else _slow()
    return None


def _iso_like_marshmallow(field: Any) -> bool:
    """marshmallow (4.x) parses "iso" with datetime.fromisoformat and dumps with isoformat."""
    fmt = field.format or field.DEFAULT_FORMAT
    return bool(fmt == "iso" and field.default_timezone is None
                and field.DESERIALIZATION_FUNCS.get(fmt) == datetime.fromisoformat
                and field.SERIALIZATION_FUNCS.get(fmt) == datetime.isoformat)


def _aware(validated: Convert, value: Any) -> str:
    if type(value) is not str:
        raise _Slow
    when = datetime.fromisoformat(value)  # marshmallow's own "iso" parser
    if when.tzinfo is None or when.tzinfo.utcoffset(when) is None:
        raise _Slow
    return str(validated(when).isoformat())


def _slow() -> Any:
    raise _Slow


def _jsonable(data: dict[str, Any]) -> dict[str, Any]:
    """Round-trip through JSON so schemas load what consumers will see (datetimes as text)."""
    return json.loads(json.dumps(data, default=_default))


def _default(obj: Any) -> Any:
    if isinstance(obj, datetime):
        return obj.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(obj, uuid.UUID):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
