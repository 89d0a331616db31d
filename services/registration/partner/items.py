"""The merchants of a partner batch: the body parsed into items, each item validated by the
registration schema (`PartnerItemIn`), the canonical rule, or by `fast_load` beside it.

Fast path, kept because the schema costs ~0.5 ms a merchant (bench/partner_bulk, one 10,000
batch in-process: 108 us CPU per business with it, 282-343 without). `fast_load` does the same
checks (the same domain rules, the same marshmallow validator objects) without the schema
machinery, only for inputs of the exact shape a well-behaved partner sends (JSON strings, ints,
bools, known keys). Anything else, and anything that fails a check, returns None and the item
is loaded with the schema: every refusal and its messages come from the schema, so accepted and
refused inputs and the messages are the same. tests/unit/test_registration_partner_fast.py
checks the two against each other."""
from __future__ import annotations

import functools
import hashlib
import json
import re
from datetime import date
from typing import Any, Final

import phonenumbers
from marshmallow import ValidationError
from phonenumbers import PhoneMetadata

from services.common.errors import FieldMessage
from services.common.http.errors import ApiError, field_errors
from services.common.reference import PLATFORMS
from services.registration import domain
from services.registration.config import RegistrationSettings
from services.registration.schemas import PartnerItemIn

_REQUIRED: Final = frozenset(("business_name", "owner_name", "nik", "phone", "province_code",
                              "regency_code", "address", "postal_code", "kbli_code", "qris",
                              "consent", "merchant_ref"))
_STRIPPED: Final = ("business_name", "owner_name", "address", "mentor_org")
# 08..., 628..., +628... and a mobile national number (the same pattern as domain._MOBILE_NSN).
_MOBILE: Final = re.compile(r"(?:\+62|62|0)(8[1-35-9][0-9]{7,10})")
_ID_MOBILE: Final = phonenumbers.PhoneNumberType.MOBILE
# Digest of phonenumbers' Indonesian type patterns (9.0.43) as analysed: under them a national
# number matching _MOBILE is always valid and MOBILE (mobile is 8[1-35-9]\d{7,10}; no other
# type's pattern can start with 8[1-35-9]). Other metadata: ask phonenumbers for every number.
_ANALYSED_ID_METADATA: Final = "9617855c031bb816b0125f48ade486d5b4510abbeeee399f8fd5a22da6afb274"
_DESCS: Final = ("general_desc", "fixed_line", "mobile", "toll_free", "premium_rate",
                 "shared_cost", "personal_number", "voip", "pager", "uan", "voicemail")


def parse_batch(body: bytes, content_type: str, max_items: int) -> list[Any]:
    """A JSON array or NDJSON (one merchant a line) -> list of items."""
    try:
        text = body.decode("utf-8")
        if "ndjson" in content_type:
            items = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            items = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ApiError(400, "body_invalid", "Isi permintaan bukan JSON/NDJSON yang valid.",
                       "The body is not valid JSON or NDJSON.") from None
    if not isinstance(items, list) or not items:
        raise ApiError(422, "batch_invalid", "Kirim daftar merchant yang tidak kosong.",
                       "Send a non-empty list of merchants.")
    if len(items) > max_items:
        raise ApiError(422, "batch_too_large", f"Paling banyak {max_items} merchant per batch.",
                       f"At most {max_items} merchants per batch.")
    return items


def validate_items(settings: RegistrationSettings, items: list[Any]
                   ) -> tuple[list[dict[str, Any] | None], list[tuple[int, Any]]]:
    """Per item: None (valid, in the second list with its index) or its `invalid` result."""
    version, today = settings.consent_version, date.today()
    schema = PartnerItemIn(consent_version=version)
    results: list[dict[str, Any] | None] = []
    valid: list[tuple[int, Any]] = []
    for i, item in enumerate(items):
        ref = item.get("merchant_ref") if isinstance(item, dict) else None
        try:
            if not isinstance(item, dict):
                raise ValidationError({"_schema": [FieldMessage(
                    "invalid_type", "Setiap merchant harus objek JSON.",
                    "Each merchant must be a JSON object.")]})
            data = fast_load(item, version, today)
            valid.append((i, data if data is not None else schema.load(item)))
            results.append(None)
        except ValidationError as e:
            results.append({"index": i, "merchant_ref": ref if isinstance(ref, str) else None,
                            "result": "invalid", "errors": field_errors(e.messages)})
    return results, valid


class _Decline(Exception):
    """Not for the fast path: load the item with the schema."""


@functools.cache
def _spec() -> tuple[frozenset[str], dict[str, Any]]:
    """Known keys and the schema's own validator objects (Email, URL, Regexp)."""
    fields = PartnerItemIn().fields
    return frozenset(fields), {n: tuple(f.validators) for n, f in fields.items()}


def _text(item: dict[str, Any], name: str, lo: int, hi: int) -> str:
    v = item[name]
    if type(v) is not str or not lo <= len(v) <= hi:
        raise _Decline
    return v


def _optional(item: dict[str, Any], name: str) -> Any:
    v = item.get(name)
    if v is not None and type(v) is not str:
        raise _Decline
    return v


def _validated(v: str, validators: tuple[Any, ...]) -> str:
    for check in validators:
        check(v)  # marshmallow ValidationError -> the caller declines
    return v


@functools.cache
def _metadata_as_analysed() -> bool:
    md = PhoneMetadata.metadata_for_region("ID")
    if md is None:  # a phonenumbers build without Indonesia: never trust the fast path
        return False
    snap = repr([(n, d and d.national_number_pattern, d and tuple(d.possible_length))
                 for n in _DESCS for d in [getattr(md, n)]])
    snap += repr(md.same_mobile_and_fixed_line_pattern)
    return hashlib.sha256(snap.encode()).hexdigest() == _ANALYSED_ID_METADATA


def _mobile(phone: Any) -> str:
    """domain.normalise_mobile for the common forms, without phonenumbers.parse (~0.1 ms)."""
    if type(phone) is not str:
        raise _Decline
    m = _MOBILE.fullmatch(phone.replace(" ", "").replace("-", ""))
    if m is None:
        raise _Decline
    nsn = m.group(1)
    if not _metadata_as_analysed():  # valid and MOBILE, as the rule asks, by the metadata
        number = phonenumbers.PhoneNumber(country_code=62, national_number=int(nsn))
        if phonenumbers.number_type(number) != _ID_MOBILE:
            raise _Decline
    return "+62" + nsn


def fast_load(item: Any, consent_version: str, today: date | None = None
              ) -> dict[str, Any] | None:
    """What `PartnerItemIn(consent_version=...).load(item)` returns, or None when the schema
    must decide. A batch passes the current consent version and date once, not per item."""
    try:
        return _load(item, consent_version, today or date.today())
    except (_Decline, domain.DomainError, ValidationError):
        return None  # the schema decides, and words any refusal


def _load(item: Any, consent_version: str, today: date) -> dict[str, Any]:
    known, validators = _spec()
    if type(item) is not dict or not _REQUIRED <= item.keys() or not known >= item.keys():
        raise _Decline
    consent = item["consent"]
    if (type(consent) is not dict or consent.keys() != {"given", "version"}
            or consent["given"] is not True or type(consent["version"]) is not str
            or consent["version"] != consent_version):
        raise _Decline
    capital, sales = item.get("capital_idr"), item.get("annual_sales_idr")
    if (capital is not None and type(capital) is not int) or \
            (sales is not None and type(sales) is not int):
        raise _Decline
    platforms = item.get("platforms", [])
    if type(platforms) is not list or len(platforms) > len(PLATFORMS) or \
            not all(type(p) is str and p in PLATFORMS for p in platforms):
        raise _Decline
    qris = item["qris"]
    if type(qris) is not bool:
        raise _Decline
    nib, email, npwp = _optional(item, "nib"), _optional(item, "email"), _optional(item, "npwp")
    mentor, store_url = _optional(item, "mentor_org"), _optional(item, "store_url")
    if mentor is not None and not 1 <= len(mentor) <= 200:
        raise _Decline
    province = domain.validate_province(_text(item, "province_code", 0, 1 << 30))
    regency = _validated(_text(item, "regency_code", 0, 1 << 30), validators["regency_code"])
    if not regency.startswith(province):
        raise _Decline
    kbli, section = domain.validate_kbli(_text(item, "kbli_code", 0, 1 << 30))
    data = {
        "business_name": _text(item, "business_name", 1, 200),
        "owner_name": _text(item, "owner_name", 1, 200),
        "nik": domain.validate_nik(_text(item, "nik", 0, 1 << 30), today).value,
        "nib": domain.validate_nib(nib) if nib is not None else None,
        "phone": _mobile(item["phone"]),
        "email": _validated(email, validators["email"]).lower() if email is not None else None,
        "province_code": province, "regency_code": regency,
        "address": _text(item, "address", 1, 500),
        "postal_code": domain.validate_postal_code(_text(item, "postal_code", 0, 1 << 30)),
        "kbli_code": kbli, "capital_idr": capital, "annual_sales_idr": sales,
        "platforms": sorted(set(platforms)), "qris": qris, "mentor_org": mentor,
        "npwp": domain.validate_npwp(npwp, today) if npwp is not None else None,
        "merchant_ref": _text(item, "merchant_ref", 1, 100),
        "store_url": _validated(store_url, validators["store_url"])
        if store_url is not None else None,
        "kbli_section": section,  # validate_kbli's is kbli_section(kbli), as the schema's
        "scale": domain.derive_scale(capital, sales),
        "consent_version": consent["version"],
    }
    for k in _STRIPPED:
        if data[k]:
            data[k] = data[k].strip()
    return data
