"""The events of a partner batch: `registered` + `onboarded` for each new business (reported
without an owner: `owner_subject` is null until the owner claims it), and `onboarded` for a
business already known. `new_business_events` is the canonical form (what `UnitOfWork.publish`
takes); `outbox_rows` is the fast path beside it, used for the new businesses of a batch.

Fast path, kept because `publish` (make_event: a marshmallow load and dump per event) costs
~0.2 ms an event (bench/partner_bulk, one 10,000 batch in-process: 108 us CPU per business with
it, 315-350 with make_event). The payload is the JSON text `Event.to_bytes` would produce,
written from a template: the envelope constants and the repeated codes are encoded once per
batch, each value with the same encoder settings. Every value comes from a row the schema
validated and `new_row` shaped, so the contract holds by construction.
tests/unit/test_registration_partner_fast.py checks each payload byte for byte against
`Event(...).to_bytes()` of `new_business_events`, and with parse_event."""
from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from services.common.db.engine import new_ids
from services.common.messaging import contracts
from services.common.messaging.events import DATA_CONTENT_TYPE, SPEC_VERSION, event_type
from services.common.observability import correlation_id
from services.registration.handlers import SOURCE, registered_event

# Event.to_bytes's settings: compact separators, UTF-8 text.
_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def onboarded_event(umkm_id: str, platform: str, first_platform: bool,
                    at: datetime) -> dict[str, Any]:
    """bbi.umkm.onboarded.v1 data."""
    return {"umkm_id": umkm_id, "platform": platform, "first_platform": first_platform,
            "onboarded_at": at}


def new_business_events(row: dict[str, Any], platform: str,
                        now: datetime) -> list[tuple[str, dict[str, Any]]]:
    """(type, data) of the events of one new business a partner reported, in order."""
    return [(contracts.UMKM_REGISTERED, registered_event(row)),
            (contracts.UMKM_ONBOARDED, onboarded_event(row["id"], platform, True, now))]


def _cached(encode: Callable[[Any], str]) -> Callable[[Any], str]:
    """JSON of a value, remembered: codes (province, scale, KBLI...) repeat across a batch."""
    memo: dict[Any, str] = {}

    def get(value: Any) -> str:
        try:
            return memo[value]
        except KeyError:
            memo[value] = text = encode(value)
            return text

    return get


def outbox_rows(rows: list[dict[str, Any]], platform: str, now: datetime,
                topic_prefix: str) -> Iterator[dict[str, Any]]:
    """Per row: the outbox rows of `new_business_events`, as add_events stages them. Ids are
    UUID text (ours: nothing to escape); every other value goes through the encoder."""
    at = now.astimezone(UTC).isoformat()  # AwareDateTime's dump form
    when = at.replace("+00:00", "Z")  # the envelope's time, as make_event writes it
    reg_type, onb_type = contracts.UMKM_REGISTERED, contracts.UMKM_ONBOARDED
    # The envelope in Event.to_dict's key order, around id, subject, correlationid and data.
    start = '{"specversion":' + _json(SPEC_VERSION) + ',"id":"'
    reg_mid, onb_mid = ('","source":' + _json(SOURCE) + ',"type":' + _json(t) + ',"time":'
                        + _json(when) + ',"subject":"' for t in (reg_type, onb_type))
    corr_key = '","datacontenttype":' + _json(DATA_CONTENT_TYPE) + ',"correlationid":'
    reg_topic = topic_prefix + event_type(reg_type).topic
    onb_topic = topic_prefix + event_type(onb_type).topic
    stamp = _json(at)
    onb_tail = f'","platform":{_json(platform)},"first_platform":true,"onboarded_at":{stamp}}}}}'
    code = _cached(_json)
    declared = _cached(lambda text: _json([p for p in (text or "").split(",") if p]))
    cid = correlation_id.get()
    ids = iter(new_ids(len(rows) * (2 if cid else 4)))
    for r in rows:
        uid = r["id"]
        reg_data = (
            f'{{"umkm_id":"{uid}","province_code":{code(r["province_code"])},'
            f'"regency_code":{code(r["regency_code"])},"scale":{code(r["scale"])},'
            f'"kbli_section":{code(r["kbli_section"])},"kbli_code":{code(r["kbli_code"])},'
            f'"platforms_declared":{declared(r["platforms_declared"])},'
            f'"qris":{"true" if r["qris"] else "false"},"channel":{code(r["channel"])},'
            f'"partner_code":{code(r["partner_code"])},"registered_at":{stamp},'
            f'"owner_subject":null,"trade_name":{_json(r["business_name"])},'
            f'"nib":{_json(r["nib"])}}}}}')
        onb_data = '{"umkm_id":"' + uid + onb_tail
        for type_, topic, mid, data in ((reg_type, reg_topic, reg_mid, reg_data),
                                        (onb_type, onb_topic, onb_mid, onb_data)):
            eid = next(ids)
            corr = code(cid) if cid else f'"{next(ids)}"'
            payload = f"{start}{eid}{mid}{uid}{corr_key}{corr},\"data\":{data}"
            yield {"topic": topic, "key": uid, "event_id": eid, "event_type": type_,
                   "payload": payload.encode(), "created_at": now}
