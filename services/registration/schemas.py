"""Request/response schemas (also the OpenAPI document). Field validators reuse domain.py."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from marshmallow import (
    Schema,
    ValidationError,
    fields,
    post_load,
    validate,
    validates_schema,
)

from services.common.errors import FieldMessage
from services.common.reference import PLATFORMS, SCALES, kbli_section
from services.common.validators import Pattern
from services.registration import config, domain

_PLATFORM = validate.OneOf(sorted(PLATFORMS))


class Rule(fields.String):
    """A string checked and normalised by a domain rule, once; a broken rule is the field's
    typed message."""

    def __init__(self, rule: Callable[[str], Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rule = rule

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return self.rule(text)
        except domain.DomainError as e:
            raise ValidationError(e.as_field_message()) from None


class ConsentIn(Schema):
    given = fields.Boolean(required=True, metadata={"description": "must be true"})
    version = fields.String(required=True, metadata={"description": "purpose version shown"})

    def __init__(self, *args: Any, current_version: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.current_version = current_version  # None: the serving app's settings

    @validates_schema
    def _explicit(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("given") is not True:
            raise ValidationError(FieldMessage(
                "consent_required", "Persetujuan pemilik wajib diberikan.",
                "The owner's consent is required."), "given")
        if data.get("version") != (self.current_version
                                     or config.current_settings().consent_version):
            raise ValidationError(FieldMessage(
                "consent_version_outdated",
                "Versi tujuan pemrosesan tidak berlaku; muat ulang formulir.",
                "The purpose version is not current; reload the form."), "version")


class RegistrationIn(Schema):
    """A public registration (DESIGN §4)."""

    business_name = fields.String(required=True, validate=validate.Length(1, 200))
    owner_name = fields.String(required=True, validate=validate.Length(1, 200))
    nik = Rule(lambda v: domain.validate_nik(v).value, required=True)
    nib = Rule(domain.validate_nib, load_default=None, allow_none=True)
    phone = Rule(domain.normalise_mobile, required=True)
    email = fields.Email(load_default=None, allow_none=True, validate=validate.Length(max=254))
    province_code = Rule(domain.validate_province, required=True)
    regency_code = fields.String(required=True, validate=Pattern(
        r"^\d{4}$", error=FieldMessage("regency_invalid", "Kode kabupaten/kota harus 4 angka.",
                                       "A regency/city code must be 4 digits.")))
    address = fields.String(required=True, validate=validate.Length(1, 500))
    postal_code = Rule(domain.validate_postal_code, required=True)
    kbli_code = Rule(lambda v: domain.validate_kbli(v)[0], required=True)
    capital_idr = fields.Integer(strict=True, load_default=None, allow_none=True)
    annual_sales_idr = fields.Integer(strict=True, load_default=None, allow_none=True)
    platforms = fields.List(fields.String(validate=_PLATFORM), load_default=list,
                            validate=validate.Length(max=len(PLATFORMS)))
    qris = fields.Boolean(required=True)
    mentor_org = fields.String(load_default=None, allow_none=True,
                               validate=validate.Length(1, 200))
    npwp = Rule(domain.validate_npwp, load_default=None, allow_none=True)
    consent = fields.Nested(ConsentIn, required=True)

    def __init__(self, *args: Any, consent_version: str | None = None, **kwargs: Any) -> None:
        """`consent_version`: the current purpose version (a batch passes its settings'); by
        default the serving app's settings decide."""
        super().__init__(*args, **kwargs)
        if consent_version is not None:  # this instance's own copy of the field
            consent = self.fields["consent"]
            assert isinstance(consent, fields.Nested)
            consent.nested = ConsentIn(current_version=consent_version)

    @validates_schema
    def _cross(self, data: dict[str, Any], **_: Any) -> None:
        province, regency = data.get("province_code"), data.get("regency_code")
        if province and regency and not regency.startswith(province.strip()):
            raise ValidationError(FieldMessage(
                "regency_outside_province", "Kabupaten/kota tidak berada di provinsi tersebut.",
                "The regency/city is not in that province."), "regency_code")
        try:
            domain.derive_scale(data.get("capital_idr"), data.get("annual_sales_idr"))
        except domain.DomainError as e:
            raise ValidationError(e.as_field_message(), e.field or "capital_idr") from None

    @post_load
    def _normalise(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        # The Rule fields already normalised NIK, NIB, NPWP, phone, province, postal, KBLI.
        data["email"] = data["email"].lower() if data["email"] else None
        data["kbli_section"] = kbli_section(data["kbli_code"])
        data["scale"] = domain.derive_scale(data["capital_idr"], data["annual_sales_idr"])
        data["platforms"] = sorted(set(data["platforms"]))
        data["consent_version"] = data.pop("consent")["version"]
        for k in ("business_name", "owner_name", "address", "mentor_org"):
            data[k] = data[k].strip() if data[k] else data[k]
        return data


class PartnerItemIn(RegistrationIn):
    """One merchant of a partner batch: a registration plus the partner's own reference."""

    merchant_ref = fields.String(required=True, validate=validate.Length(1, 100))
    store_url = fields.URL(load_default=None, allow_none=True, validate=validate.Length(max=500))


class RegistrationCreated(Schema):
    """The new registration; the owner follows it with their own sign-in (GET /v1/umkm/mine)."""

    id = fields.String()
    status = fields.String()
    scale = fields.String()


class ClaimIn(Schema):
    """Proof that the signed-in person owns a business reported without an owner."""

    nik = Rule(lambda v: domain.validate_nik(v).value, required=True)
    nib = Rule(domain.validate_nib, required=True)


class PlatformOut(Schema):
    platform = fields.String()
    store_url = fields.String(allow_none=True)
    onboarded_at = fields.AwareDateTime()


class UmkmOut(Schema):
    """What the owner sees: status and non-personal fields."""

    id = fields.String()
    status = fields.String()
    curation = fields.String(allow_none=True)
    curation_reason = fields.String(allow_none=True)
    business_name = fields.String(allow_none=True)
    nib = fields.String(allow_none=True)
    channel = fields.String()
    partner_code = fields.String(allow_none=True)
    province_code = fields.String()
    regency_code = fields.String()
    kbli_code = fields.String()
    kbli_section = fields.String()
    scale = fields.String()
    platforms_declared = fields.List(fields.String())
    platforms = fields.List(fields.Nested(PlatformOut))
    qris = fields.Boolean()
    registered_at = fields.AwareDateTime()
    verified_at = fields.AwareDateTime(allow_none=True)
    withdrawn_at = fields.AwareDateTime(allow_none=True)
    claimed_at = fields.AwareDateTime(allow_none=True)


class OwnedList(Schema):
    """The signed-in owner's businesses."""

    items = fields.List(fields.Nested(UmkmOut))


class UmkmOperatorOut(UmkmOut):
    """What an operator sees in addition: the masked NIK and contact data."""

    nik_masked = fields.String(allow_none=True)
    owner_name = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)
    email = fields.String(allow_none=True)
    address = fields.String(allow_none=True)
    postal_code = fields.String(allow_none=True)
    npwp = fields.String(allow_none=True, metadata={
        "description": "a legacy NPWP; one that is a NIK is masked like the NIK"})
    mentor_org = fields.String(allow_none=True)
    capital_idr = fields.Integer(allow_none=True)
    annual_sales_idr = fields.Integer(allow_none=True)
    consent_version = fields.String()
    consent_at = fields.AwareDateTime()


class ListArgs(Schema):
    province_code = Rule(domain.validate_province)
    status = fields.String(validate=validate.OneOf([s.value for s in domain.Status]))
    scale = fields.String(validate=validate.OneOf(SCALES))
    platform = fields.String(validate=_PLATFORM)
    curation = fields.String(validate=validate.OneOf(("approved", "rejected", "none")))
    cursor = fields.String(validate=validate.Length(max=200))
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 1000))


class UmkmPage(Schema):
    items = fields.List(fields.Nested(UmkmOperatorOut))
    next_cursor = fields.String(allow_none=True)


class VerificationIn(Schema):
    pass


class PlatformIn(Schema):
    platform = fields.String(required=True, validate=_PLATFORM)
    store_url = fields.URL(required=True, validate=validate.Length(max=500))


class CurationIn(Schema):
    decision = fields.String(required=True, validate=validate.OneOf(("approved", "rejected")))
    reason = fields.String(load_default=None, allow_none=True, validate=validate.Length(1, 1000))

    @validates_schema
    def _reason(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("decision") == "rejected" and not data.get("reason"):
            raise ValidationError(FieldMessage("reason_required", "Alasan penolakan wajib diisi.",
                                               "A rejection needs a reason."), "reason")


class StatusOut(Schema):
    id = fields.String()
    status = fields.String()
    curation = fields.String(allow_none=True)
