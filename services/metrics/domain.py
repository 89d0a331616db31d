"""Pure aggregation rules: fold events into per-(metric, labels) deltas and business rows.

Nothing here touches a database: the caller loads the attribute rows of the businesses a batch
mentions, folds the batch, then writes `deltas` and `changed` (see store.py)."""

from __future__ import annotations

import functools
import json
from collections import Counter
from datetime import datetime
from typing import Any, NamedTuple

from services.common.messaging import contracts as c
from services.common.reference import Target, targets
from services.common.wib import WIB

LabelKey = tuple[str, str]  # (metric name as exposed, labels as canonical JSON)

# name -> (type, help, label names). The single catalog both the fold and /metrics use.
CATALOG: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "bbi_umkm_registered": (
        "gauge",
        "UMKM currently registered (minus withdrawn)",
        ("province", "scale"),
    ),
    "bbi_umkm_registrations_total": (
        "counter",
        "UMKM registrations applied",
        ("province", "scale"),
    ),
    "bbi_umkm_withdrawals_total": ("counter", "UMKM withdrawals applied", ("province", "scale")),
    "bbi_umkm_verified": ("gauge", "UMKM verified, not withdrawn", ("province", "scale")),
    "bbi_umkm_onboarded": (
        "gauge",
        "UMKM onboarded to at least one platform, not withdrawn",
        ("province", "scale", "kbli_section"),
    ),
    "bbi_umkm_platform_onboarded": (
        "gauge",
        "UMKM currently onboarded per platform",
        ("platform",),
    ),
    "bbi_umkm_platform_onboardings_total": (
        "counter",
        "Platform onboardings applied",
        ("platform",),
    ),
    "bbi_umkm_curated": (
        "gauge",
        "UMKM by latest curation decision, not withdrawn",
        ("province", "decision"),
    ),
    "bbi_umkm_qris_adopted": ("gauge", "UMKM accepting QRIS, not withdrawn", ("province", "scale")),
    "bbi_training_enrolments_total": (
        "counter",
        "Training seats taken (enrolled + promoted)",
        ("province",),
    ),
    "bbi_training_waitlisted_total": ("counter", "Training waitlist entries", ("province",)),
    "bbi_training_waitlisted": ("gauge", "UMKM currently on a training waitlist", ("province",)),
    "bbi_training_seats_used": ("gauge", "Training seats currently held", ("province",)),
    "bbi_training_cancellations_total": (
        "counter",
        "Training seat/waitlist cancellations",
        ("province", "reason"),
    ),
    "bbi_training_attendances_total": ("counter", "Training attendances", ("province",)),
    "bbi_training_completions_total": ("counter", "Training completions", ("province", "kind")),
    "bbi_training_sessions_scheduled_total": ("counter", "Training sessions scheduled", ()),
    "bbi_training_sessions_cancelled_total": ("counter", "Training sessions cancelled", ()),
    "bbi_campaign_participants": ("gauge", "Officials who joined the campaign", ("campaign",)),
    "bbi_campaign_purchases_total": ("counter", "Campaign purchases recorded", ("campaign",)),
    "bbi_campaign_purchase_amount_rupiah_total": (
        "counter",
        "Rupiah spent in campaign purchases",
        ("campaign",),
    ),
    "bbi_metrics_events_applied_total": ("counter", "Events applied to the aggregates", ("type",)),
    "bbi_metrics_events_deadlettered_total": (
        "counter",
        "Events dead-lettered by the metrics consumer",
        ("reason",),
    ),
}
# Portal counts by event time for the progress against the national targets (progress.py):
# stored like the metrics above but never exposed as series (a month label would grow
# forever). Businesses, by the WIB calendar month of their first platform onboarding, of the
# curation approval in force, and of the registration of a QRIS-accepting business.
COUNT_ONBOARDED = "progress_onboarded_first"  # labels: month
COUNT_APPROVED = "progress_curated_approved"  # labels: month
COUNT_QRIS = "progress_qris_registered"  # labels: month
COUNT_ONBOARDED_PROVINCE = "progress_onboarded_first_by_province"  # labels: province, year
PROGRESS_COUNTS = (COUNT_ONBOARDED, COUNT_APPROVED, COUNT_QRIS)

# Pipeline rows that a rebuild keeps (dead letters are not re-sent, so not re-counted).
KEPT_ON_REBUILD = ("bbi_metrics_events_deadlettered_total",)


def labels_json(**labels: str) -> str:
    """Canonical label encoding: the aggregate table's key."""
    return json.dumps(labels, sort_keys=True, separators=(",", ":"))


@functools.lru_cache(maxsize=65_536)
def _cached_labels(items: tuple[tuple[str, str], ...]) -> str:
    # Label sets are bounded, so caching their encoding is safe and saves most of the fold.
    return labels_json(**dict(items))


@functools.lru_cache(maxsize=4096)
def _month_labels(month: str) -> str:
    return labels_json(month=month)


@functools.lru_cache(maxsize=16_384)
def _province_year_labels(province: str, year: str) -> str:
    return labels_json(province=province, year=year)


def when(text: str) -> datetime:
    """An event's own time (contract fields are ISO 8601 with an offset)."""
    return datetime.fromisoformat(text)


def month_of(at: datetime) -> str:
    """The WIB calendar month (YYYY-MM) of an instant: national targets count WIB years."""
    w = at.astimezone(WIB)
    return f"{w.year:04d}-{w.month:02d}"


class Business(NamedTuple):
    """What metrics keeps of one UMKM: enough to subtract exactly what it added.

    The times are event times; None on rows stored before they were kept (such a business
    is in no monthly count until `bbi metrics rebuild` recounts it from the topics). A named
    tuple: every applied event copies one with a field changed, and `_replace` costs a
    fraction of `dataclasses.replace` on a dozen fields."""

    umkm_id: str
    province: str
    scale: str
    kbli_section: str
    qris: bool
    verified: bool = False
    platforms: tuple[str, ...] = ()
    curation: str | None = None
    status: str = "registered"
    registered_at: datetime | None = None
    first_onboarded_at: datetime | None = None  # the earliest of its platform onboardings
    curated_at: datetime | None = None  # of the curation decision in force


class UnknownBusiness(Exception):
    """An umkm event for a business this service never saw registered."""


class Fold:
    """Accumulates one batch: `deltas` to add and `changed` business rows to write."""

    def __init__(self, known: dict[str, Business]) -> None:
        self.known = dict(known)
        self.deltas: Counter[LabelKey] = Counter()
        self.changed: dict[str, Business] = {}

    def add(self, metric: str, n: int = 1, **labels: str) -> None:
        self.deltas[(metric, _cached_labels(tuple(labels.items())))] += n

    def apply(self, type_: str, data: dict[str, Any]) -> None:
        """Fold one event (already validated against its contract)."""
        handler = _HANDLERS.get(type_)
        if handler is not None:
            handler(self, data)
        self.add("bbi_metrics_events_applied_total", type=type_)

    def _get(self, data: dict[str, Any]) -> Business:
        b = self.known.get(data["umkm_id"])
        if b is None:
            raise UnknownBusiness(data["umkm_id"])
        return b

    def _put(self, b: Business) -> None:
        self.known[b.umkm_id] = self.changed[b.umkm_id] = b

    def _in_month(self, count: str, at: datetime, n: int) -> str:
        month = month_of(at)
        self.deltas[(count, _month_labels(month))] += n
        return month

    def _onboarded_in(self, b: Business, at: datetime, n: int) -> None:
        year = self._in_month(COUNT_ONBOARDED, at, n)[:4]
        self.deltas[(COUNT_ONBOARDED_PROVINCE, _province_year_labels(b.province, year))] += n


def _registered(f: Fold, d: dict[str, Any]) -> None:
    if d["umkm_id"] in f.known:
        return  # a second registration of one id adds nothing (counts stay exact)
    at = when(d["registered_at"])
    b = Business(d["umkm_id"], d["province_code"], d["scale"], d["kbli_section"], bool(d["qris"]),
                 registered_at=at)
    f._put(b)
    f.add("bbi_umkm_registered", province=b.province, scale=b.scale)
    f.add("bbi_umkm_registrations_total", province=b.province, scale=b.scale)
    if b.qris:
        f.add("bbi_umkm_qris_adopted", province=b.province, scale=b.scale)
        f._in_month(COUNT_QRIS, at, 1)


def _verified(f: Fold, d: dict[str, Any]) -> None:
    b = f._get(d)
    if b.status == "withdrawn" or b.verified:
        return
    f._put(b._replace(verified=True))
    f.add("bbi_umkm_verified", province=b.province, scale=b.scale)


def _onboarded(f: Fold, d: dict[str, Any]) -> None:
    b = f._get(d)
    platform = d["platform"]
    if b.status == "withdrawn" or platform in b.platforms:
        return
    at, first = when(d["onboarded_at"]), b.first_onboarded_at
    # "Onboarded" counts businesses: our own first-platform test, not the producer's flag.
    if not b.platforms:
        f.add("bbi_umkm_onboarded", province=b.province, scale=b.scale, kbli_section=b.kbli_section)
        f._onboarded_in(b, at, 1)
        first = at
    elif first is not None and at < first:
        # An earlier onboarding reported late (a partner's backlog): the business was first
        # onboarded then, so it moves to that month.
        f._onboarded_in(b, first, -1)
        f._onboarded_in(b, at, 1)
        first = at
    f._put(b._replace(platforms=tuple(sorted((*b.platforms, platform))), first_onboarded_at=first))
    f.add("bbi_umkm_platform_onboarded", platform=platform)
    f.add("bbi_umkm_platform_onboardings_total", platform=platform)


def _curated(f: Fold, d: dict[str, Any]) -> None:
    b = f._get(d)
    if b.status == "withdrawn" or b.curation == d["decision"]:
        return
    at = when(d["curated_at"])
    if b.curation:  # a changed decision moves the business, it does not add one
        f.add("bbi_umkm_curated", -1, province=b.province, decision=b.curation)
    if b.curation == "approved" and b.curated_at is not None:
        f._in_month(COUNT_APPROVED, b.curated_at, -1)
    f.add("bbi_umkm_curated", province=b.province, decision=d["decision"])
    if d["decision"] == "approved":
        f._in_month(COUNT_APPROVED, at, 1)
    f._put(b._replace(curation=d["decision"], curated_at=at))


def _withdrawn(f: Fold, d: dict[str, Any]) -> None:
    b = f._get(d)
    if b.status == "withdrawn":
        return
    p, s = b.province, b.scale
    f.add("bbi_umkm_registered", -1, province=p, scale=s)
    f.add("bbi_umkm_withdrawals_total", province=p, scale=s)
    if b.verified:
        f.add("bbi_umkm_verified", -1, province=p, scale=s)
    if b.qris:
        f.add("bbi_umkm_qris_adopted", -1, province=p, scale=s)
        if b.registered_at is not None:
            f._in_month(COUNT_QRIS, b.registered_at, -1)
    if b.platforms:
        f.add("bbi_umkm_onboarded", -1, province=p, scale=s, kbli_section=b.kbli_section)
        if b.first_onboarded_at is not None:
            f._onboarded_in(b, b.first_onboarded_at, -1)
    for platform in b.platforms:
        f.add("bbi_umkm_platform_onboarded", -1, platform=platform)
    if b.curation:
        f.add("bbi_umkm_curated", -1, province=p, decision=b.curation)
        if b.curation == "approved" and b.curated_at is not None:
            f._in_month(COUNT_APPROVED, b.curated_at, -1)
    f._put(b._replace(status="withdrawn"))


def _seat(metrics: tuple[tuple[str, int], ...]) -> Any:
    def handle(f: Fold, d: dict[str, Any]) -> None:
        for metric, n in metrics:
            f.add(metric, n, province=d["province_code"])

    return handle


def _training_cancelled(f: Fold, d: dict[str, Any]) -> None:
    p = d["province_code"]
    f.add("bbi_training_cancellations_total", province=p, reason=d["reason"])
    held = (
        "bbi_training_seats_used"
        if d["previous_state"] == "enrolled"
        else "bbi_training_waitlisted"
    )
    f.add(held, -1, province=p)


def _completed(f: Fold, d: dict[str, Any]) -> None:
    f.add("bbi_training_completions_total", province=d["province_code"], kind=d["kind"])


def _purchase(f: Fold, d: dict[str, Any]) -> None:
    f.add("bbi_campaign_purchases_total", campaign=d["code"])
    f.add("bbi_campaign_purchase_amount_rupiah_total", int(d["amount_idr"]), campaign=d["code"])


_HANDLERS: dict[str, Any] = {
    c.UMKM_REGISTERED: _registered,
    c.UMKM_VERIFIED: _verified,
    c.UMKM_ONBOARDED: _onboarded,
    c.UMKM_CURATED: _curated,
    c.UMKM_WITHDRAWN: _withdrawn,
    c.TRAINING_SESSION_SCHEDULED: lambda f, d: f.add("bbi_training_sessions_scheduled_total"),
    c.TRAINING_SESSION_CANCELLED: lambda f, d: f.add("bbi_training_sessions_cancelled_total"),
    c.TRAINING_ENROLLED: _seat(
        (("bbi_training_enrolments_total", 1), ("bbi_training_seats_used", 1))
    ),
    c.TRAINING_WAITLISTED: _seat(
        (("bbi_training_waitlisted_total", 1), ("bbi_training_waitlisted", 1))
    ),
    c.TRAINING_PROMOTED: _seat(
        (
            ("bbi_training_enrolments_total", 1),
            ("bbi_training_seats_used", 1),
            ("bbi_training_waitlisted", -1),
        )
    ),
    c.TRAINING_CANCELLED: _training_cancelled,
    c.TRAINING_ATTENDED: _seat((("bbi_training_attendances_total", 1),)),
    c.TRAINING_COMPLETED: _completed,
    c.CAMPAIGN_JOINED: lambda f, d: f.add("bbi_campaign_participants", campaign=d["code"]),
    c.CAMPAIGN_PURCHASE_RECORDED: _purchase,
}
# Every contract type is consumed (created/opened/closed only count as applied events).
CONSUMED_TYPES: tuple[str, ...] = tuple(
    t
    for t in (
        c.UMKM_REGISTERED,
        c.UMKM_VERIFIED,
        c.UMKM_ONBOARDED,
        c.UMKM_CURATED,
        c.UMKM_WITHDRAWN,
        c.TRAINING_SESSION_SCHEDULED,
        c.TRAINING_SESSION_CANCELLED,
        c.TRAINING_ENROLLED,
        c.TRAINING_WAITLISTED,
        c.TRAINING_PROMOTED,
        c.TRAINING_CANCELLED,
        c.TRAINING_ATTENDED,
        c.TRAINING_COMPLETED,
        c.CAMPAIGN_CREATED,
        c.CAMPAIGN_OPENED,
        c.CAMPAIGN_JOINED,
        c.CAMPAIGN_PURCHASE_RECORDED,
        c.CAMPAIGN_CLOSED,
    )
)
UMKM_TYPES = frozenset(
    (c.UMKM_REGISTERED, c.UMKM_VERIFIED, c.UMKM_ONBOARDED, c.UMKM_CURATED, c.UMKM_WITHDRAWN)
)


def national_targets() -> list[Target]:
    """Targets with one row per (metric, year): "superseded" rows dropped, then first wins."""
    out: dict[tuple[str, int], Target] = {}
    for t in targets():
        if "superseded" in (t.note or "").lower():
            continue
        out.setdefault((t.metric, t.year), t)
    return list(out.values())
