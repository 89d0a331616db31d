"""Business and pipeline metrics in Prometheus text format, read from the aggregate tables.

A separate CollectorRegistry per scrape with one custom collector: nothing goes through the
gunicorn multiprocess files, and a scrape reads a few bounded tables, never raw events."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.engine import Engine

from services.common.events import DEAD_LETTER_REASONS
from services.common.reference import SCALES, Target, provinces
from services.metrics import store
from services.metrics.domain import CATALOG, national_actuals, national_targets


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
        values = [(m, dict(lb), v) for m, lb, v in stored if m in _ACTUAL_METRICS]
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
        yield from _targets(values)
        yield from _pipeline(status, lag)


def _family(name: str) -> CounterMetricFamily | GaugeMetricFamily:
    kind, doc, labels = CATALOG[name]
    if kind == "counter":  # the client appends _total itself
        return CounterMetricFamily(name.removesuffix("_total"), doc, labels=list(labels))
    return GaugeMetricFamily(name, doc, labels=list(labels))


def _targets(values: list[tuple[str, dict[str, str], int]]) -> Iterator[Metric]:
    target = GaugeMetricFamily(
        "bbi_national_target",
        "National target (reference/targets.csv, with sources)",
        labels=["metric", "year"],
    )
    for t in national_targets():
        target.add_metric([t.metric, str(t.year)], t.value)
    actual = GaugeMetricFamily(
        "bbi_national_actual", "Current actual of a target metric", labels=["metric"]
    )
    for metric, v in sorted(actuals_from(values).items()):
        actual.add_metric([metric], v)
    final = GaugeMetricFamily(
        "bbi_national_target_final",
        "The last target of each metric (its latest year), which stands after that year",
        labels=["metric", "year"],
    )
    latest: dict[str, Target] = {}
    for t in national_targets():
        if t.metric not in latest or t.year > latest[t.metric].year:
            latest[t.metric] = t
    for t in latest.values():
        final.add_metric([t.metric, str(t.year)], t.value)
    yield target
    yield final
    yield actual


# The only metrics actuals_from reads (the collector hands it just these rows).
_ACTUAL_METRICS = frozenset(
    ("bbi_umkm_onboarded", "bbi_umkm_platform_onboarded", "bbi_umkm_qris_adopted")
)


def actuals_from(values: list[tuple[str, dict[str, str], int]]) -> dict[str, int]:
    """National actuals from aggregate rows."""

    def total(metric: str, pred: Callable[[dict[str, str]], bool] = lambda _: True) -> int:
        return sum(v for m, lb, v in values if m == metric and pred(lb))

    return national_actuals(
        onboarded=total("bbi_umkm_onboarded"),
        ekatalog=total(
            "bbi_umkm_platform_onboarded", lambda lb: lb.get("platform") == "lkpp_ekatalog"
        ),
        qris=total("bbi_umkm_qris_adopted"),
    )


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
