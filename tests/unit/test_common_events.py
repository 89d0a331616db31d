"""The CloudEvents envelope and the contract registry."""
from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from services.common.messaging import contracts
from services.common.messaging.events import EventError, make_event, parse_event, registered_types


def _withdrawn() -> dict:
    return {"umkm_id": str(uuid.uuid4()), "withdrawn_at": datetime.now(UTC)}


def test_envelope_has_every_cloudevents_attribute_and_round_trips() -> None:
    ev = make_event(contracts.UMKM_WITHDRAWN, "registration", _withdrawn(), "cid-1")
    doc = json.loads(ev.to_bytes())
    assert doc["specversion"] == "1.0" and doc["datacontenttype"] == "application/json"
    assert {"id", "source", "type", "time", "subject", "data", "correlationid"} <= set(doc)
    assert doc["time"].endswith("Z") and doc["correlationid"] == "cid-1"
    back = parse_event(ev.to_bytes())
    assert back == ev and back.topic == contracts.TOPIC_UMKM and back.key == ev.data["umkm_id"]


def test_invalid_data_is_a_programming_error() -> None:
    with pytest.raises(EventError) as err:
        make_event(contracts.UMKM_WITHDRAWN, "x", {"umkm_id": "nope", "withdrawn_at": "x"})
    assert err.value.reason == "schema_invalid"


def test_extra_fields_are_refused_so_personal_data_cannot_slip_in() -> None:
    data = _withdrawn() | {"nik": "3171014101900001"}
    with pytest.raises(EventError):
        make_event(contracts.UMKM_WITHDRAWN, "x", data)


@pytest.mark.parametrize("raw,reason", [
    (b"\xff\xfe", "not_json"), (b"[1]", "bad_envelope"), (b'{"specversion":"0.3"}', "bad_envelope"),
    (None, "not_json"),
])
def test_parse_rejects_garbage_with_a_reason(raw: bytes | None, reason: str) -> None:
    with pytest.raises(EventError) as err:
        parse_event(raw)
    assert err.value.reason == reason


def test_unknown_type_is_reported_as_such() -> None:
    doc = json.loads(make_event(contracts.UMKM_WITHDRAWN, "x", _withdrawn()).to_bytes())
    doc["type"] = "bbi.umkm.nope.v1"
    with pytest.raises(EventError) as err:
        parse_event(json.dumps(doc).encode())
    assert err.value.reason == "unknown_type"


def test_every_type_is_versioned_and_on_its_domain_topic() -> None:
    types = registered_types()
    assert len(types) == 19
    for name, et in types.items():
        assert name.startswith(et.topic + ".") and name.endswith(".v1")
        assert et.topic in contracts.DOMAIN_TOPICS
