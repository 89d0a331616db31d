"""Read use cases of the public progress page, from the aggregate tables only."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Engine

from services.common.http.errors import not_found
from services.common.reference import SCALES, province_name, provinces
from services.common.wib import WIB
from services.metrics import store
from services.metrics.domain import COUNT_ONBOARDED, COUNT_ONBOARDED_PROVINCE
from services.metrics.exposition import progress_counts
from services.metrics.progress import Progress, by_year, progress

Rows = list[tuple[str, dict[str, str], int]]


def _sum(rows: Rows, metric: str, **match: str) -> int:
    return sum(
        v for m, lb, v in rows if m == metric and all(lb.get(k) == x for k, x in match.items())
    )


def _by(rows: Rows, metric: str, label: str, **match: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for m, lb, v in rows:
        if m == metric and all(lb.get(k) == x for k, x in match.items()):
            out[lb[label]] = out.get(lb[label], 0) + v
    return dict(sorted(out.items()))


def _totals(rows: Rows, **match: str) -> dict[str, Any]:
    s: Callable[..., int] = lambda metric, **kw: _sum(rows, metric, **match, **kw)  # noqa: E731
    return {
        "registered": s("bbi_umkm_registered"),
        "registrations": s("bbi_umkm_registrations_total"),
        "withdrawn": s("bbi_umkm_withdrawals_total"),
        "verified": s("bbi_umkm_verified"),
        "onboarded": s("bbi_umkm_onboarded"),
        "qris_adopted": s("bbi_umkm_qris_adopted"),
        "curated_approved": s("bbi_umkm_curated", decision="approved"),
        "curated_rejected": s("bbi_umkm_curated", decision="rejected"),
        "training_enrolments": s("bbi_training_enrolments_total"),
        "training_seats_used": s("bbi_training_seats_used"),
        "training_waitlisted": s("bbi_training_waitlisted"),
        "training_completions": s("bbi_training_completions_total"),
    }


def _read(engine: Engine) -> tuple[Rows, dict[str, float]]:
    with engine.connect() as conn:
        return store.read_values(conn), store.read_status(conn)


def _target(p: Progress) -> dict[str, Any]:
    b = p.baseline
    return {
        "metric": p.target.metric,
        "year": p.target.year,
        "kind": p.kind,
        "target": p.target.value,
        "baseline": p.baseline_value,
        "baseline_as_of": b.as_of if b else None,
        "baseline_source_seed": b.source_seed if b else None,
        "baseline_note": b.note if b else None,
        "counted_from": _wib(p.counted_from),
        "deadline": _wib(p.deadline),
        "portal_onboarded": p.portal,
        "actual": p.actual,
        "progress": p.ratio,
        "source_seed": p.target.source_seed,
        "note": p.target.note,
    }


def summary(engine: Engine) -> dict[str, Any]:
    """National totals, progress against each target, and every province's totals."""
    rows, status = _read(engine)
    counts = progress_counts((m, tuple(lb.items()), v) for m, lb, v in rows)
    national = _totals(rows)
    national["onboarded_by_year"] = by_year(counts[COUNT_ONBOARDED].items())
    national["platforms"] = _by(rows, "bbi_umkm_platform_onboarded", "platform")
    national["campaign_participants"] = _sum(rows, "bbi_campaign_participants")
    national["campaign_purchases"] = _sum(rows, "bbi_campaign_purchases_total")
    national["campaign_amount_idr"] = _sum(rows, "bbi_campaign_purchase_amount_rupiah_total")
    return {
        "national": national,
        "targets": [_target(p) for p in progress(counts)],
        "provinces": [
            {"code": code, "name": name, **_totals(rows, province=code)}
            for code, name in sorted(provinces().items())
        ],
        "last_applied_at": _when(status.get("last_applied_timestamp_seconds")),
    }


def province(engine: Engine, code: str) -> dict[str, Any]:
    """One province's totals with breakdowns by scale and KBLI section; 404 if unknown."""
    name = province_name(code)
    if name is None:
        raise not_found("province")
    rows, status = _read(engine)
    by_scale = {
        s: {
            "registered": _sum(rows, "bbi_umkm_registered", province=code, scale=s),
            "onboarded": _sum(rows, "bbi_umkm_onboarded", province=code, scale=s),
            "qris_adopted": _sum(rows, "bbi_umkm_qris_adopted", province=code, scale=s),
        }
        for s in SCALES
    }
    return {
        "code": code,
        "name": name,
        **_totals(rows, province=code),
        "by_scale": by_scale,
        "onboarded_by_kbli_section": _by(rows, "bbi_umkm_onboarded", "kbli_section", province=code),
        "onboarded_by_year": {
            y: n for y, n in _by(rows, COUNT_ONBOARDED_PROVINCE, "year", province=code).items() if n
        },
        "last_applied_at": _when(status.get("last_applied_timestamp_seconds")),
    }


def _when(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat() if ts else None


def _wib(at: datetime | None) -> str | None:
    return at.astimezone(WIB).isoformat() if at is not None else None
