"""Progress against the national targets, like with like (DESIGN §4). Its own module: pure
rules of the read side (queries.py), apart from the fold in domain.py that fills the counts.

Each target is measured over its own window of event time, in calendar months of WIB
(Asia/Jakarta, UTC+7: the national calendar the targets are set in):
- `new_in_year` ("2 million new in 2020"): what the portal counted within the target's year
  (nothing is new at the year's start, so its baseline is 0 on 1 January).
- `total` ("30 million in total in 2024"): a dated national figure from the reported figures
  (reference/baselines.csv) plus what the portal counted after it, up to the end of the year.
  The baseline is the latest figure of the same quantity dated no later than the target's
  year: the nearer the figure to the deadline, the less of the actual rests on the portal's
  own count (which sees only the portal's channel). A figure dated month M stands for the end
  of M; the portal counts from the first day of M+1, so nothing is counted twice (a figure
  may already hold month M). A total with no reported figure has no actual: the portal's
  count alone is not a national total.
"""

from __future__ import annotations

import csv
import functools
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from importlib import resources

from services.common.reference import Target
from services.common.wib import WIB
from services.metrics.domain import (
    COUNT_APPROVED,
    COUNT_ONBOARDED,
    COUNT_QRIS,
    national_targets,
)

NEW_IN_YEAR = "new_in_year"
TOTAL = "total"


@dataclass(frozen=True)
class Measure:
    """How the event stream measures a target metric."""

    kind: str
    count: str  # the monthly portal count (domain.COUNT_*) behind it
    reported: str | None  # the quantity in baselines.csv a total continues, if any


# The e-catalogue target counts businesses approved by curation, the portal's decision that
# puts a business in the procurement catalogue; "onto e-katalog in 2022" is a year's intake.
MEASURES: Mapping[str, Measure] = {
    "umkm_onboarded_new": Measure(NEW_IN_YEAR, COUNT_ONBOARDED, None),
    "umkm_online_total": Measure(TOTAL, COUNT_ONBOARDED, "umkm_in_digital_ecosystem"),
    "umkm_onboarded_total": Measure(TOTAL, COUNT_ONBOARDED, "umkm_in_digital_ecosystem"),
    "umkm_ekatalog_onboarded": Measure(NEW_IN_YEAR, COUNT_APPROVED, None),
    "umkm_qris_connected": Measure(TOTAL, COUNT_QRIS, None),
}
# Targets no event measures: exposed with their kind, without an actual.
UNMEASURED_KINDS: Mapping[str, str] = {"koperasi_modern_total": TOTAL}


@dataclass(frozen=True)
class Baseline:
    """A reported national figure: `value` as of the end of month `as_of` (YYYY-MM)."""

    metric: str
    as_of: str
    value: int
    source_seed: str
    note: str | None


@functools.cache
def _baselines() -> tuple[Baseline, ...]:
    text = (resources.files("services.common").joinpath("reference", "baselines.csv")
            .read_text(encoding="utf-8"))
    return tuple(
        Baseline(r["metric"], _month(r["as_of"]), int(r["value"]), r["source_seed"],
                 r["note"] or None)
        for r in csv.DictReader(io.StringIO(text))
    )


def baselines() -> list[Baseline]:
    """Every reported figure usable as a baseline, in file order."""
    return list(_baselines())


def _month(text: str) -> str:
    # Validated so that comparing the strings compares the months.
    year, month = text.split("-")
    if len(year) != 4 or not 1 <= int(month) <= 12 or len(month) != 2:
        raise ValueError(f"month must be YYYY-MM: {text!r}")
    return text


def kind_of(metric: str) -> str:
    """`new_in_year` or `total` for a target metric (KeyError for an unknown metric)."""
    m = MEASURES.get(metric)
    return m.kind if m else UNMEASURED_KINDS[metric]


def month_start(month: str) -> datetime:
    """The first instant of a WIB calendar month."""
    return datetime(int(month[:4]), int(month[5:]), 1, tzinfo=WIB)


def next_month(month: str) -> str:
    y, m = int(month[:4]), int(month[5:])
    return f"{y + m // 12:04d}-{m % 12 + 1:02d}"


@dataclass(frozen=True)
class Progress:
    """One target next to its actual, with both parts of the actual."""

    target: Target
    kind: str
    baseline: Baseline | None  # the reported figure a total starts from
    baseline_value: int | None  # that figure; 0 for a new-in-year target
    counted_from: datetime | None  # first instant whose portal events count (None: all of them)
    deadline: datetime  # first instant after the target's year
    portal: int | None  # counted by the portal inside the window
    actual: int | None  # baseline_value + portal; None when there is no like-with-like figure

    @property
    def ratio(self) -> float | None:
        return round(self.actual / self.target.value, 6) if self.actual is not None else None


def choose_baseline(quantity: str | None, last: str) -> Baseline | None:
    """The latest figure of `quantity` dated no later than month `last`."""
    best: Baseline | None = None
    for b in _baselines():
        if b.metric == quantity and b.as_of <= last and (best is None or b.as_of > best.as_of):
            best = b
    return best


def progress(counts: Mapping[str, Mapping[str, int]]) -> list[Progress]:
    """Every target (targets.csv) with its actual, from monthly counts {count: {month: n}}."""
    return [_one(t, counts) for t in national_targets()]


def _one(t: Target, counts: Mapping[str, Mapping[str, int]]) -> Progress:
    kind, last = kind_of(t.metric), f"{t.year}-12"
    deadline = month_start(next_month(last))
    m = MEASURES.get(t.metric)
    if m is None:
        return Progress(t, kind, None, None, None, deadline, None, None)
    b: Baseline | None = None
    value: int | None
    start: str | None
    if kind == NEW_IN_YEAR:
        value, start = 0, f"{t.year}-01"
    else:
        b = choose_baseline(m.reported, last)
        value, start = (b.value, next_month(b.as_of)) if b else (None, None)
    portal = sum_months(counts.get(m.count, {}).items(), start, last)
    return Progress(
        t, kind, b, value, month_start(start) if start else None, deadline, portal,
        value + portal if value is not None else None,
    )


def sum_months(items: Iterable[tuple[str, int]], first: str | None, last: str) -> int:
    """Sum of the monthly counts within [first, last] (first None: from the beginning)."""
    return sum(n for month, n in items if (first is None or month >= first) and month <= last)


def by_year(items: Iterable[tuple[str, int]]) -> dict[str, int]:
    """Monthly counts summed per calendar year (non-zero years only)."""
    out: dict[str, int] = {}
    for month, n in items:
        out[month[:4]] = out.get(month[:4], 0) + n
    return {y: n for y, n in sorted(out.items()) if n}
