"""Pure aggregation rules: fold events into per-(metric, labels) deltas and business rows.

Nothing here touches a database: the caller loads the attribute rows of the businesses a batch
mentions, folds the batch, then writes `deltas` and `changed` (see store.py)."""

from __future__ import annotations

import functools
import json
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any

from services.common import contracts as c
from services.common.reference import Target, targets

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
# Pipeline rows that a rebuild keeps (dead letters are not re-sent, so not re-counted).
KEPT_ON_REBUILD = ("bbi_metrics_events_deadlettered_total",)


def labels_json(**labels: str) -> str:
    """Canonical label encoding: the aggregate table's key."""
    return json.dumps(labels, sort_keys=True, separators=(",", ":"))


@functools.lru_cache(maxsize=65_536)
def _cached_labels(items: tuple[tuple[str, str], ...]) -> str:
    # Label sets are bounded, so caching their encoding is safe and saves most of the fold.
    return labels_json(**dict(items))


@dataclass(frozen=True)
class Business:
    """What metrics keeps of one UMKM: enough to subtract exactly what it added."""

    umkm_id: str
    province: str
    scale: str
    kbli_section: str
    qris: bool
    verified: bool = False
    platforms: tuple[str, ...] = ()
    curation: str | None = None
    status: str = "registered"


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


def _registered(f: Fold, d: dict[str, Any]) -> None:
    if d["umkm_id"] in f.known:
        return  # a second registration of one id adds nothing (counts stay exact)
    b = Business(d["umkm_id"], d["province_code"], d["scale"], d["kbli_section"], bool(d["qris"]))
    f._put(b)
    f.add("bbi_umkm_registered", province=b.province, scale=b.scale)
    f.add("bbi_umkm_registrations_total", province=b.province, scale=b.scale)
    if b.qris:
        f.add("bbi_umkm_qris_adopted", province=b.province, scale=b.scale)


def _verified(f: Fold, d: dict[str, Any]) -> None:
    b = f._get(d)
    if b.status == "withdrawn" or b.verified:
        return
    f._put(replace(b, verified=True))
    f.add("bbi_umkm_verified", province=b.province, scale=b.scale)


def _onboarded(f: Fold, d: dict[str, Any]) -> None:
    b = f._get(d)
    platform = d["platform"]
    if b.status == "withdrawn" or platform in b.platforms:
        return
    # "Onboarded" counts businesses: our own first-platform test, not the producer's flag.
    if not b.platforms:
        f.add("bbi_umkm_onboarded", province=b.province, scale=b.scale, kbli_section=b.kbli_section)
    f._put(replace(b, platforms=tuple(sorted((*b.platforms, platform)))))
    f.add("bbi_umkm_platform_onboarded", platform=platform)
    f.add("bbi_umkm_platform_onboardings_total", platform=platform)


def _curated(f: Fold, d: dict[str, Any]) -> None:
    b = f._get(d)
    if b.status == "withdrawn" or b.curation == d["decision"]:
        return
    if b.curation:  # a changed decision moves the business, it does not add one
        f.add("bbi_umkm_curated", -1, province=b.province, decision=b.curation)
    f.add("bbi_umkm_curated", province=b.province, decision=d["decision"])
    f._put(replace(b, curation=d["decision"]))


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
    if b.platforms:
        f.add("bbi_umkm_onboarded", -1, province=p, scale=s, kbli_section=b.kbli_section)
    for platform in b.platforms:
        f.add("bbi_umkm_platform_onboarded", -1, platform=platform)
    if b.curation:
        f.add("bbi_umkm_curated", -1, province=p, decision=b.curation)
    f._put(replace(b, status="withdrawn"))


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


def national_actuals(onboarded: int, ekatalog: int, qris: int) -> dict[str, int]:
    """The actual behind each target metric the event stream can measure."""
    return {
        "umkm_onboarded_total": onboarded,
        "umkm_onboarded_new": onboarded,
        "umkm_online_total": onboarded,
        "umkm_ekatalog_onboarded": ekatalog,
        "umkm_qris_connected": qris,
    }
