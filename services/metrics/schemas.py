"""Response schemas of the public progress endpoints (also their OpenAPI documentation)."""

from __future__ import annotations

from marshmallow import Schema, fields


class TotalsSchema(Schema):
    registered = fields.Integer(metadata={"description": "registered minus withdrawn"})
    registrations = fields.Integer()
    withdrawn = fields.Integer()
    verified = fields.Integer()
    onboarded = fields.Integer(metadata={"description": "onboarded to at least one platform"})
    qris_adopted = fields.Integer()
    curated_approved = fields.Integer()
    curated_rejected = fields.Integer()
    training_enrolments = fields.Integer()
    training_seats_used = fields.Integer()
    training_waitlisted = fields.Integer()
    training_completions = fields.Integer()


class NationalSchema(TotalsSchema):
    platforms = fields.Dict(keys=fields.String(), values=fields.Integer())
    campaign_participants = fields.Integer()
    campaign_purchases = fields.Integer()
    campaign_amount_idr = fields.Integer(metadata={"description": "integer rupiah"})


class TargetSchema(Schema):
    metric = fields.String()
    year = fields.Integer()
    target = fields.Integer()
    actual = fields.Integer(allow_none=True)
    progress = fields.Float(allow_none=True, metadata={"description": "actual / target"})
    source_seed = fields.String()
    note = fields.String(allow_none=True)


class ProvinceTotalsSchema(TotalsSchema):
    code = fields.String()
    name = fields.String()


class SummarySchema(Schema):
    national = fields.Nested(NationalSchema)
    targets = fields.List(fields.Nested(TargetSchema))
    provinces = fields.List(fields.Nested(ProvinceTotalsSchema))
    last_applied_at = fields.String(allow_none=True)


class ScaleSchema(Schema):
    registered = fields.Integer()
    onboarded = fields.Integer()
    qris_adopted = fields.Integer()


class ProvinceSchema(ProvinceTotalsSchema):
    by_scale = fields.Dict(keys=fields.String(), values=fields.Nested(ScaleSchema))
    onboarded_by_kbli_section = fields.Dict(keys=fields.String(), values=fields.Integer())
    last_applied_at = fields.String(allow_none=True)
