"""Business and pipeline metrics in Prometheus text format, read from the aggregate tables.
Its own module: /metrics is the service's main read, served by app.py outside the JSON API.

A separate CollectorRegistry per scrape with one custom collector: nothing goes through the
gunicorn multiprocess files, and a scrape reads a few bounded tables, never raw events."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.engine import Engine

from services.common.messaging.events import DEAD_LETTER_REASONS
from services.common.reference import SCALES, provinces
from services.metrics import store
from services.metrics.domain import CATALOG, PROGRESS_COUNTS
from services.metrics.progress import Progress, progress


class AggregateCollector(Collector):
    """Yields every metric of METRICS.md from one snapshot of the aggregate tables."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def describe(self) -> list[Metric]:
        return []  # names are dynamic; registering must not trigger a DB read

    def collect(self) -> Iterator[Metric]:
        with self.engine.connect() as conn:
            stored, status, lag = (
                store.read_value_items(conn),
                store.read_status(conn),
                store.read_lag(conn),
            )
        counts = progress_counts(stored)
        families = {name: _family(name) for name in CATALOG}
        rows = {(m, lb): v for m, lb, v in stored if m in CATALOG}
        for p in sorted(provinces()):  # always present, so "no UMKM yet" reads as 0, not absent
            for s in SCALES:
                rows.setdefault(("bbi_umkm_registered", (("province", p), ("scale", s))), 0)
        for m, (_kind, _doc, label_names) in CATALOG.items():
            if not label_names:  # unlabelled series read 0 before their first event
                rows.setdefault((m, ()), 0)
        for reason in DEAD_LETTER_REASONS:  # an alert on increase() needs the 0 first
            rows.setdefault(("bbi_metrics_events_deadlettered_total", (("reason", reason),)), 0)
        for (m, items), v in sorted(rows.items()):
            labels = dict(items)
            families[m].add_metric([labels.get(n, "") for n in CATALOG[m][2]], v)
        yield from families.values()
        yield from _targets(progress(counts))
        yield from _pipeline(status, lag)


def _family(name: str) -> CounterMetricFamily | GaugeMetricFamily:
    kind, doc, labels = CATALOG[name]
    if kind == "counter":  # the client appends _total itself
        return CounterMetricFamily(name.removesuffix("_total"), doc, labels=list(labels))
    return GaugeMetricFamily(name, doc, labels=list(labels))


def progress_counts(
    stored: Iterable[tuple[str, tuple[tuple[str, str], ...], int]],
) -> dict[str, dict[str, int]]:
    """The monthly portal counts {count: {month: n}} among the aggregate rows."""
    out: dict[str, dict[str, int]] = {name: {} for name in PROGRESS_COUNTS}
    for m, items, v in stored:
        if m in out:
            out[m][dict(items)["month"]] = v
    return out


# name -> (help, the Progress value it shows); one family each, labels metric, year, kind.
_PROGRESS_FAMILIES: tuple[tuple[str, str, Callable[[Progress], float | None]], ...] = (
    ("bbi_national_target", "National target (reference/targets.csv, with sources)",
     lambda p: p.target.value),
    ("bbi_national_target_deadline_timestamp_seconds",
     "End of the target's year (first instant of the next year, WIB)",
     lambda p: p.deadline.timestamp()),
    ("bbi_national_baseline",
     "Reported national figure the actual starts from (reference/baselines.csv); "
     "0 for a new-in-year target without one",
     lambda p: p.baseline_value),
    ("bbi_national_baseline_timestamp_seconds",
     "Instant the baseline stands for; the portal counts events from then",
     lambda p: p.counted_from.timestamp()
     if p.counted_from is not None and p.baseline_value is not None else None),
    ("bbi_national_portal_onboarded",
     "Businesses the portal counted toward the target, by event time, after the baseline "
     "and up to the deadline",
     lambda p: p.portal),
    ("bbi_national_actual", "Baseline plus portal count: the figure the target is compared with",
     lambda p: p.actual),
)


def _targets(rows: list[Progress]) -> Iterator[Metric]:
    for name, doc, value in _PROGRESS_FAMILIES:
        family = GaugeMetricFamily(name, doc, labels=["metric", "year", "kind"])
        for p in rows:
            v = value(p)
            if v is not None:
                family.add_metric([p.target.metric, str(p.target.year), p.kind], v)
        yield family


def _pipeline(status: dict[str, float], lag: list[tuple[str, int, int]]) -> Iterator[Metric]:
    lag_family = GaugeMetricFamily(
        "bbi_metrics_consumer_lag_events",
        "Events not yet applied (end offset - stored offset)",
        labels=["topic", "partition"],
    )
    for topic, part, n in lag:
        lag_family.add_metric([topic, str(part)], n)
    yield lag_family
    for name, key, doc in (
        (
            "bbi_metrics_consumer_lag_updated_timestamp_seconds",
            "lag_updated_timestamp_seconds",
            "Unix time the worker last stored the lag",
        ),
        (
            "bbi_metrics_last_applied_timestamp_seconds",
            "last_applied_timestamp_seconds",
            "Unix time of the last applied batch",
        ),
    ):
        if key in status:
            yield GaugeMetricFamily(name, doc, value=status[key])


def metrics_payload(engine: Engine) -> Callable[[], bytes]:
    """The callable web.py appends to /metrics (app.extensions['bbi_extra_metrics'])."""

    def payload() -> bytes:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(AggregateCollector(engine))
        return generate_latest(registry)

    return payload
