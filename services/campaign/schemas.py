"""Request/response schemas of the campaign API (also its OpenAPI document)."""
from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate

from services.common.errors import FieldMessage
from services.common.reference import PLATFORMS, provinces
from services.common.validators import Pattern
from services.common.wib import WibDateTime

# Rp1 quadrillion: above any real spending band, and far inside the BIGINT columns.
MAX_IDR = 10**15


def _rupiah(**kw: Any) -> fields.Integer:
    """Strict: "150000" or 1.5 is refused, rupiah are whole numbers."""
    return fields.Integer(strict=True, required=True, **kw)



class _In(Schema):
    class Meta:
        unknown = "raise"


class CampaignIn(_In):
    code = fields.String(required=True, validate=Pattern(
        r"^[a-z0-9][a-z0-9-]{1,62}$", error=FieldMessage(
            "code_invalid", "Kode: huruf kecil, angka dan '-' (2-63).",
            "Code: lowercase letters, digits and '-' (2-63).")))
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    description = fields.String(load_default="", validate=validate.Length(max=4000))
    starts_at = WibDateTime(required=True, metadata={"example": "2020-07-01T00:00:00"})
    ends_at = WibDateTime(required=True, metadata={"example": "2020-07-01T23:59:59"})
    band_min_idr = _rupiah(validate=validate.Range(min=0, max=MAX_IDR))
    band_max_idr = _rupiah(validate=validate.Range(min=1, max=MAX_IDR))
    eligible_agencies = fields.List(fields.String(validate=validate.Length(min=1, max=100)),
                                    load_default=list, validate=validate.Length(max=1000))
    eligible_regions = fields.List(fields.String(validate=validate.OneOf(sorted(provinces()))),
                                   load_default=list)


class CampaignOut(Schema):
    id = fields.String()
    code = fields.String()
    name = fields.String()
    description = fields.String()
    starts_at = WibDateTime()
    ends_at = WibDateTime()
    band_min_idr = fields.Integer()
    band_max_idr = fields.Integer()
    eligible_agencies = fields.List(fields.String())
    eligible_regions = fields.List(fields.String())
    status = fields.String()
    created_at = WibDateTime()
    opened_at = WibDateTime(allow_none=True)
    closed_at = WibDateTime(allow_none=True)


class PageArgs(_In):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0, max=1_000_000))


class CampaignListArgs(PageArgs):
    status = fields.String(validate=validate.OneOf(("draft", "open", "closed")),
                           metadata={"description": "operators only; officials always see the "
                                                    "open campaigns"})


class CampaignListOut(CampaignOut):
    # Officials only (null for operators): whether the token's agency and region may join.
    eligible = fields.Boolean(allow_none=True)


_NIB = Pattern(r"^\d{13}$", error=FieldMessage("nib_invalid", "NIB harus terdiri dari 13 angka.",
                                               "A NIB must be 13 digits."))


class SellerSearchArgs(_In):
    name = fields.String(validate=validate.Length(min=2, max=100), metadata={
        "description": "part of the trade name, any case"})
    province = fields.String(validate=validate.OneOf(sorted(provinces())))
    nib = fields.String(validate=_NIB)
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=50))


class SellerOut(Schema):
    """What a public catalogue shows of a business: never anything about its owner."""

    umkm_id = fields.String()
    trade_name = fields.String(allow_none=True)
    nib = fields.String(allow_none=True)
    province_code = fields.String()
    province_name = fields.String(allow_none=True)
    platforms = fields.List(fields.String(), metadata={
        "description": "onboarded on (confirmed by the platform or an operator)"})
    platforms_declared = fields.List(fields.String(), metadata={
        "description": "declared by the owner at registration"})


class PurchaseIn(_In):
    umkm_id = fields.UUID(metadata={"description": "the seller picked from /sellers; "
                                                   "give this or `nib`, not both"})
    nib = fields.String(validate=_NIB, metadata={"description": "the seller's NIB (13 digits)"})
    platform = fields.String(required=True, validate=validate.OneOf(sorted(PLATFORMS)))
    order_ref = fields.String(required=True, validate=[
        validate.Length(min=1, max=100),
        Pattern(r"^[\x21-\x7e][\x20-\x7e]*$", error=FieldMessage(
            "order_ref_invalid", "Nomor pesanan hanya karakter ASCII cetak.",
            "Order reference: printable ASCII only."))])
    amount_idr = _rupiah()
    purchased_at = fields.DateTime(required=True, metadata={
        "description": "without an offset: the official's local time (WIB, WITA or WIT by the "
                       "token's region); with one: any offset",
        "example": "2020-07-01T10:30:00"})


class PurchaseOut(Schema):
    id = fields.String()
    umkm_id = fields.String(allow_none=True)
    trade_name = fields.String(allow_none=True)
    nib = fields.String(allow_none=True)
    province_code = fields.String()
    platform = fields.String()
    order_ref = fields.String()
    amount_idr = fields.Integer()
    purchased_at = WibDateTime()
    recorded_at = WibDateTime()
    purchased_at_local = fields.String(metadata={"description": "in the official's zone"})
    time_zone = fields.String(metadata={"enum": ["WIB", "WITA", "WIT"]})


class ProgressOut(Schema):
    spent_idr = fields.Integer()
    band_min_idr = fields.Integer()
    band_max_idr = fields.Integer()
    remaining_to_min_idr = fields.Integer()
    remaining_to_max_idr = fields.Integer()
    state = fields.String(metadata={"enum": ["below", "within", "above"]})


class JoinOut(ProgressOut):
    code = fields.String()
    official_id = fields.String()
    agency = fields.String()
    region = fields.String()


class MyPurchasesOut(Schema):
    code = fields.String()
    official_id = fields.String()
    agency = fields.String()
    progress = fields.Nested(ProgressOut)
    total = fields.Integer()
    purchases = fields.List(fields.Nested(PurchaseOut))


class TotalsOut(Schema):
    code = fields.String()
    status = fields.String()
    participants = fields.Integer()
    purchases = fields.Integer()
    amount_idr = fields.Integer()
    distinct_umkm = fields.Integer()


class AgencyRowOut(Schema):
    rank = fields.Integer()
    agency = fields.String()
    participants = fields.Integer()
    purchases = fields.Integer()
    amount_idr = fields.Integer()


class ProvinceRowOut(Schema):
    rank = fields.Integer()
    province_code = fields.String()
    province_name = fields.String(allow_none=True)
    purchases = fields.Integer()
    amount_idr = fields.Integer()
    distinct_umkm = fields.Integer()
