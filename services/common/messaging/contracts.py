"""The event contracts: every versioned event type, its topic, key and data schema.

One definition serves producers and consumers. Events carry no personal data: ids and the
attributes other services need (province, scale, KBLI section, platform...)."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from services.common.messaging.events import register
from services.common.reference import KBLI_SECTIONS, PLATFORMS, SCALES, provinces
from services.common.validators import Pattern

TOPIC_UMKM = "bbi.umkm"
TOPIC_TRAINING = "bbi.training"
TOPIC_CAMPAIGN = "bbi.campaign"
TOPIC_DEADLETTER = "bbi.deadletter"
DOMAIN_TOPICS = (TOPIC_UMKM, TOPIC_TRAINING, TOPIC_CAMPAIGN)

# Domain topics are the system's history (rebuildable read models); dead letters keep 30 days.
TOPIC_CONFIGS: dict[str, dict[str, str]] = {
    TOPIC_UMKM: {"retention.ms": "-1", "cleanup.policy": "delete"},
    TOPIC_TRAINING: {"retention.ms": "-1", "cleanup.policy": "delete"},
    TOPIC_CAMPAIGN: {"retention.ms": "-1", "cleanup.policy": "delete"},
    TOPIC_DEADLETTER: {"retention.ms": str(30 * 24 * 3600 * 1000), "cleanup.policy": "delete"},
}


class _Strict(Schema):
    class Meta:
        # Unknown fields are refused so a producer cannot leak an extra (personal) field.
        unknown = "raise"


def _uuid() -> fields.Field:
    return fields.UUID(required=True)


def _province(**kw: object) -> fields.Field:
    return fields.String(validate=validate.OneOf(sorted(provinces())), **kw)  # type: ignore[arg-type]


def _subject(**kw: object) -> fields.Field:
    # An account id (e.g. Keycloak's UUID subject). No '@' or spaces, so an e-mail address
    # or a person's name cannot pass for one; not digits alone, so neither can a NIK or NIP.
    return fields.String(validate=Pattern(r"^(?![0-9]+$)[A-Za-z0-9][A-Za-z0-9._:|-]{0,127}$"),
                         **kw)  # type: ignore[arg-type]


_scale = fields.String(required=True, validate=validate.OneOf(SCALES))
_section = fields.String(required=True, validate=validate.OneOf(sorted(KBLI_SECTIONS)))
_platform = fields.String(required=True, validate=validate.OneOf(sorted(PLATFORMS)))


# --- bbi.umkm (key: umkm id) -------------------------------------------------------------
class UmkmRegistered(_Strict):
    umkm_id = _uuid()
    province_code = _province(required=True)
    regency_code = fields.String(required=False, allow_none=True,
                                 validate=Pattern(r"^\d{4}$"))
    scale = fields.String(required=True, validate=validate.OneOf(SCALES))
    kbli_section = fields.String(required=True, validate=validate.OneOf(sorted(KBLI_SECTIONS)))
    kbli_code = fields.String(required=True, validate=Pattern(r"^\d{5}$"))
    platforms_declared = fields.List(fields.String(validate=validate.OneOf(sorted(PLATFORMS))),
                                     required=True)
    qris = fields.Boolean(required=True)
    channel = fields.String(required=True, validate=validate.OneOf(("public", "partner")))
    partner_code = fields.String(required=False, allow_none=True)
    registered_at = fields.AwareDateTime(required=True)
    # Optional, so events already in the topic (written before these fields) stay valid.
    # The owner's account subject: pseudonymous (an identity provider's user id, never a
    # NIK, name or e-mail); None for a partner-reported merchant until its owner claims it.
    owner_subject = _subject(required=False, allow_none=True)
    # What a public catalogue shows of the business, so officials can name who they bought
    # from (DESIGN §3): the trade name and the NIB, never anything about the owner.
    trade_name = fields.String(required=False, allow_none=True,
                               validate=validate.Length(min=1, max=200))
    nib = fields.String(required=False, allow_none=True, validate=Pattern(r"^\d{13}$"))


class UmkmVerified(_Strict):
    umkm_id = _uuid()
    verified_at = fields.AwareDateTime(required=True)


class UmkmOnboarded(_Strict):
    umkm_id = _uuid()
    platform = fields.String(required=True, validate=validate.OneOf(sorted(PLATFORMS)))
    # True on the business's first platform: the national "onboarded" count is of businesses.
    first_platform = fields.Boolean(required=True)
    onboarded_at = fields.AwareDateTime(required=True)


class UmkmCurated(_Strict):
    umkm_id = _uuid()
    decision = fields.String(required=True, validate=validate.OneOf(("approved", "rejected")))
    previous_decision = fields.String(allow_none=True,
                                      validate=validate.OneOf(("approved", "rejected")))
    curated_at = fields.AwareDateTime(required=True)


class UmkmWithdrawn(_Strict):
    umkm_id = _uuid()
    withdrawn_at = fields.AwareDateTime(required=True)


class UmkmClaimed(_Strict):
    """A signed-in owner proved a partner-reported business (NIK + NIB): it is theirs now."""

    umkm_id = _uuid()
    owner_subject = _subject(required=True)
    claimed_at = fields.AwareDateTime(required=True)


# --- bbi.training (key: session id, or course id for self-paced work) --------------------
class _Seat(_Strict):
    session_id = _uuid()
    umkm_id = _uuid()
    course_id = _uuid()
    province_code = _province(required=True)


class TrainingSessionScheduled(_Strict):
    session_id = _uuid()
    course_id = _uuid()
    capacity = fields.Integer(required=True, validate=validate.Range(min=1))
    starts_at = fields.AwareDateTime(required=True)


class TrainingSessionCancelled(_Strict):
    session_id = _uuid()
    course_id = _uuid()


class TrainingEnrolled(_Seat):
    pass


class TrainingWaitlisted(_Seat):
    position = fields.Integer(required=True, validate=validate.Range(min=1))


class TrainingPromoted(_Seat):
    pass


class TrainingCancelled(_Seat):
    previous_state = fields.String(required=True,
                                   validate=validate.OneOf(("enrolled", "waitlisted")))
    reason = fields.String(required=True, validate=validate.OneOf(
        ("umkm_cancelled", "session_cancelled", "withdrawn")))


class TrainingAttended(_Seat):
    pass


class TrainingCompleted(_Strict):
    key_id = _uuid()  # session id for a webinar, course id for self-paced work
    umkm_id = _uuid()
    course_id = _uuid()
    province_code = _province(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(("webinar", "elearning")))
    certificate_number = fields.String(required=True)


# --- bbi.campaign (key: campaign id) ------------------------------------------------------
class CampaignCreated(_Strict):
    campaign_id = _uuid()
    code = fields.String(required=True, validate=Pattern(r"^[a-z0-9][a-z0-9-]{1,62}$"))
    starts_at = fields.AwareDateTime(required=True)
    ends_at = fields.AwareDateTime(required=True)
    band_min_idr = fields.Integer(required=True, validate=validate.Range(min=0))
    band_max_idr = fields.Integer(required=True, validate=validate.Range(min=1))


class CampaignOpened(_Strict):
    campaign_id = _uuid()
    code = fields.String(required=True)


class CampaignJoined(_Strict):
    campaign_id = _uuid()
    code = fields.String(required=True)
    official_id = fields.String(required=True, validate=Pattern(r"^[0-9a-f]{32}$"))
    agency = fields.String(required=True, validate=validate.Length(min=1, max=100))


class CampaignPurchaseRecorded(_Strict):
    campaign_id = _uuid()
    code = fields.String(required=True)
    purchase_id = _uuid()
    official_id = fields.String(required=True, validate=Pattern(r"^[0-9a-f]{32}$"))
    agency = fields.String(required=True, validate=validate.Length(min=1, max=100))
    umkm_id = _uuid()
    province_code = _province(required=True)
    platform = fields.String(required=True, validate=validate.OneOf(sorted(PLATFORMS)))
    amount_idr = fields.Integer(required=True, validate=validate.Range(min=1))
    purchased_at = fields.AwareDateTime(required=True)


class CampaignClosed(_Strict):
    campaign_id = _uuid()
    code = fields.String(required=True)
    participants = fields.Integer(required=True, validate=validate.Range(min=0))
    purchases = fields.Integer(required=True, validate=validate.Range(min=0))
    amount_idr = fields.Integer(required=True, validate=validate.Range(min=0))
    distinct_umkm = fields.Integer(required=True, validate=validate.Range(min=0))


UMKM_REGISTERED = "bbi.umkm.registered.v1"
UMKM_VERIFIED = "bbi.umkm.verified.v1"
UMKM_ONBOARDED = "bbi.umkm.onboarded.v1"
UMKM_CURATED = "bbi.umkm.curated.v1"
UMKM_WITHDRAWN = "bbi.umkm.withdrawn.v1"
UMKM_CLAIMED = "bbi.umkm.claimed.v1"
TRAINING_SESSION_SCHEDULED = "bbi.training.session_scheduled.v1"
TRAINING_SESSION_CANCELLED = "bbi.training.session_cancelled.v1"
TRAINING_ENROLLED = "bbi.training.enrolled.v1"
TRAINING_WAITLISTED = "bbi.training.waitlisted.v1"
TRAINING_PROMOTED = "bbi.training.promoted.v1"
TRAINING_CANCELLED = "bbi.training.cancelled.v1"
TRAINING_ATTENDED = "bbi.training.attended.v1"
TRAINING_COMPLETED = "bbi.training.completed.v1"
CAMPAIGN_CREATED = "bbi.campaign.created.v1"
CAMPAIGN_OPENED = "bbi.campaign.opened.v1"
CAMPAIGN_JOINED = "bbi.campaign.joined.v1"
CAMPAIGN_PURCHASE_RECORDED = "bbi.campaign.purchase_recorded.v1"
CAMPAIGN_CLOSED = "bbi.campaign.closed.v1"

for _name, _topic, _schema, _key in (
    (UMKM_REGISTERED, TOPIC_UMKM, UmkmRegistered, "umkm_id"),
    (UMKM_VERIFIED, TOPIC_UMKM, UmkmVerified, "umkm_id"),
    (UMKM_ONBOARDED, TOPIC_UMKM, UmkmOnboarded, "umkm_id"),
    (UMKM_CURATED, TOPIC_UMKM, UmkmCurated, "umkm_id"),
    (UMKM_WITHDRAWN, TOPIC_UMKM, UmkmWithdrawn, "umkm_id"),
    (UMKM_CLAIMED, TOPIC_UMKM, UmkmClaimed, "umkm_id"),
    (TRAINING_SESSION_SCHEDULED, TOPIC_TRAINING, TrainingSessionScheduled, "session_id"),
    (TRAINING_SESSION_CANCELLED, TOPIC_TRAINING, TrainingSessionCancelled, "session_id"),
    (TRAINING_ENROLLED, TOPIC_TRAINING, TrainingEnrolled, "session_id"),
    (TRAINING_WAITLISTED, TOPIC_TRAINING, TrainingWaitlisted, "session_id"),
    (TRAINING_PROMOTED, TOPIC_TRAINING, TrainingPromoted, "session_id"),
    (TRAINING_CANCELLED, TOPIC_TRAINING, TrainingCancelled, "session_id"),
    (TRAINING_ATTENDED, TOPIC_TRAINING, TrainingAttended, "session_id"),
    (TRAINING_COMPLETED, TOPIC_TRAINING, TrainingCompleted, "key_id"),
    (CAMPAIGN_CREATED, TOPIC_CAMPAIGN, CampaignCreated, "campaign_id"),
    (CAMPAIGN_OPENED, TOPIC_CAMPAIGN, CampaignOpened, "campaign_id"),
    (CAMPAIGN_JOINED, TOPIC_CAMPAIGN, CampaignJoined, "campaign_id"),
    (CAMPAIGN_PURCHASE_RECORDED, TOPIC_CAMPAIGN, CampaignPurchaseRecorded, "campaign_id"),
    (CAMPAIGN_CLOSED, TOPIC_CAMPAIGN, CampaignClosed, "campaign_id"),
):
    register(_name, _topic, _schema, _key)
