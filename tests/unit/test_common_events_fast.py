"""parse_event's fast validation path accepts and rejects exactly what marshmallow does, with
the same data and the same reasons: every contract type, valid and mutated field by field."""
from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from marshmallow import ValidationError

from services.common.messaging import events
from services.common.messaging.events import Event, EventError, parse_event, registered_types
from tests.event_factories import umkm_samples
from tests.fixtures.metrics_sample import mixed_stream

ODD_VALUES: list[Any] = [
    None, "", " ", 0, 1, -1, 10**30, 1.0, 1.5, True, False, "true", "1", "yes", [], {}, ["x"],
    "x" * 300, "31", "99", "mikro", "tokopedia", "approved", "enrolled",
    "5f0c3a2e-1b7d-4a8e-9c1f-2d3e4f5a6b7c", "5F0C3A2E-1B7D-4A8E-9C1F-2D3E4F5A6B7C",
    "5f0c3a2e1b7d4a8e9c1f2d3e4f5a6b7c", "{5f0c3a2e-1b7d-4a8e-9c1f-2d3e4f5a6b7c}",
    "urn:uuid:5f0c3a2e-1b7d-4a8e-9c1f-2d3e4f5a6b7c", "not-a-uuid",
    "2026-05-01T00:00:00+00:00", "2026-05-01T00:00:00Z", "2026-05-01T07:00:00+07:00",
    "2026-05-01T00:00:00", "2026-05-01", "2026-05-01 00:00:00+00:00",
    "2026-05-01T00:00:00.123456+00:00", "2026-05-01T00:00:00.5+00:00", "2026-13-01T00:00:00Z",
    "2026-05-01T00:00:00+05:30:15", "0a" * 16, "0A" * 16, ["tokopedia"], ["tokopedia", "bogus"],
    [None], "bbi-2026-05", "-bad", "9120000000001", "912000000000", "91200000000012",
    "kc-3f2a", "3171011708450001", "a@b.id", "Warung Bu Sri 1", "x" * 201,
]


def _reference(raw: bytes) -> Event | tuple[str, Any]:
    """parse_event as it was: marshmallow load, then dump, for every event."""
    doc = json.loads(raw)
    et = events.event_type(doc["type"])
    schema = et.schema()
    try:
        data = schema.dump(schema.load(doc["data"]))
    except ValidationError as exc:
        return ("schema_invalid", exc.messages)
    return Event(id=str(doc["id"]), type=et.name, source=str(doc["source"]),
                 time=str(doc["time"]), subject=str(doc.get("subject") or data.get(et.key_field)),
                 data=data, correlationid=str(doc.get("correlationid") or ""))


def _actual(raw: bytes) -> Event | tuple[str, Any]:
    try:
        return parse_event(raw)
    except EventError as exc:
        return (exc.reason, exc.detail)


def _samples() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for e in mixed_stream(30, seed=5):
        out.setdefault(e.type, e.to_dict())
    # The metrics stream carries neither the catalogue fields of a registration nor claims:
    # take those from the contract samples, so every optional field is mutated too.
    for e in umkm_samples():
        out[e.type] = e.to_dict()
    return out


def test_every_contract_type_has_a_sample_and_takes_the_fast_path() -> None:
    samples = _samples()
    assert set(samples) == set(registered_types())
    for name, doc in samples.items():
        et = events.event_type(name)
        assert events._fast_plan(et) is not None, name
        assert events._load_fast(et, doc["data"]) is not None, name


@pytest.mark.parametrize("type_name", sorted(registered_types()))
def test_fast_path_matches_marshmallow_field_by_field(type_name: str) -> None:
    doc = _samples()[type_name]
    variants = [doc]
    for field in doc["data"]:
        gone = copy.deepcopy(doc)
        del gone["data"][field]
        variants.append(gone)
        for odd in ODD_VALUES:
            changed = copy.deepcopy(doc)
            changed["data"][field] = odd
            variants.append(changed)
    extra = copy.deepcopy(doc)
    extra["data"]["nik"] = "3171234567890001"  # an unknown (personal) field is refused
    variants.append(extra)
    accepted = rejected = 0
    for v in variants:
        raw = json.dumps(v).encode()
        want, got = _reference(raw), _actual(raw)
        assert got == want, (v["data"], got, want)
        accepted += isinstance(want, Event)
        rejected += not isinstance(want, Event)
    assert accepted and rejected  # the battery exercises both outcomes
