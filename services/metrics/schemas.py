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


def _by_year() -> fields.Dict:
    return fields.Dict(keys=fields.String(), values=fields.Integer(), metadata={
        "description": "businesses onboarded (first platform) per calendar year of the event "
                       "time in WIB, not withdrawn"})


class NationalSchema(TotalsSchema):
    onboarded_by_year = _by_year()
    platforms = fields.Dict(keys=fields.String(), values=fields.Integer())
    campaign_participants = fields.Integer()
    campaign_purchases = fields.Integer()
    campaign_amount_idr = fields.Integer(metadata={"description": "integer rupiah"})


class TargetSchema(Schema):
    metric = fields.String()
    year = fields.Integer()
    kind = fields.String(metadata={
        "description": "new_in_year: counted within the year; total: baseline plus the portal's "
                       "count since, up to the end of the year (services/metrics/METRICS.md)",
        "enum": ["new_in_year", "total"]})
    target = fields.Integer()
    baseline = fields.Integer(allow_none=True, metadata={
        "description": "reported national figure the actual starts from; 0 for a new-in-year "
                       "target without one; null for a total with no reported figure"})
    baseline_as_of = fields.String(allow_none=True, metadata={
        "description": "month (YYYY-MM) the baseline figure stands for, to its end"})
    baseline_source_seed = fields.String(allow_none=True)
    baseline_note = fields.String(allow_none=True)
    counted_from = fields.String(allow_none=True, metadata={
        "description": "first instant (WIB) whose portal events count toward the target; "
                       "null: from the first event"})
    deadline = fields.String(metadata={
        "description": "first instant after the target's year (WIB): events from then on "
                       "do not count toward it"})
    portal_onboarded = fields.Integer(allow_none=True, metadata={
        "description": "businesses the portal counted in the window, by event time "
                       "(null: no event measures this target)"})
    actual = fields.Integer(allow_none=True, metadata={
        "description": "baseline + portal_onboarded (null when there is no like-with-like "
                       "figure)"})
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
    onboarded_by_year = _by_year()
    last_applied_at = fields.String(allow_none=True)
