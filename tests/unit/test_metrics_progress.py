"""Progress against the national targets, like with like: each target's actual is counted
over its own window of event time (WIB calendar), a total starts from a dated reported
figure, and a withdrawal or a changed curation decision corrects the counts. Through the real
MetricsApplier on SQLite and the web process (summary JSON and /metrics)."""

from __future__ import annotations

import uuid
from collections import namedtuple
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.common.db.engine import make_engine
from services.common.db.migrations import upgrade
from services.common.messaging import contracts as c
from services.common.messaging.consumer import BatchApplier
from services.metrics import store
from services.metrics.app import create_app
from services.metrics.config import load_settings
from services.metrics.consumer import consumers
from services.metrics.domain import COUNT_ONBOARDED, Business, Fold
from services.metrics.progress import MEASURES, baselines, choose_baseline, kind_of
from tests.fixtures.metrics_sample import ev, registered

Rec = namedtuple("Rec", "topic partition offset key value")
# WIB is UTC+7: 17:00 UTC on 31 December is midnight of 1 January in Jakarta.
Y2020_FIRST = datetime(2019, 12, 31, 17, 0, tzinfo=UTC)
Y2020_LAST = datetime(2020, 12, 31, 16, 59, 59, tzinfo=UTC)


@pytest.fixture
def env(tmp_path: Path):  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'metrics.db'}"
    upgrade("metrics", url)
    engine = make_engine(url)
    applier = BatchApplier(engine, store.metadata, consumers()[0])
    client = create_app(load_settings(database_url=url), engine).test_client()
    offset = [0]

    def apply(events: list[Any]) -> None:
        recs = [Rec("bbi.umkm", 0, offset[0] + i, None, e.to_bytes()) for i, e in enumerate(events)]
        offset[0] += len(recs)
        assert applier.apply(recs, lambda dead: None) == []

    return apply, client


def _onboarded(uid: str, at: datetime, platform: str = "tokopedia") -> Any:
    return ev(c.UMKM_ONBOARDED, {"umkm_id": uid, "platform": platform, "first_platform": True,
                                 "onboarded_at": at})


def _curated(uid: str, decision: str, at: datetime, prev: str | None = None) -> Any:
    return ev(c.UMKM_CURATED, {"umkm_id": uid, "decision": decision, "previous_decision": prev,
                               "curated_at": at})


def _business(at: datetime, registered_at: datetime | None = None) -> list[Any]:
    uid = str(uuid.uuid4())
    return [registered(uid, at=registered_at or at), _onboarded(uid, at)]


def _target(client: Any, metric: str, year: int) -> dict[str, Any]:
    rows = [t for t in client.get("/v1/summary").get_json()["targets"]
            if (t["metric"], t["year"]) == (metric, year)]
    assert len(rows) == 1, rows
    return rows[0]


def _series(client: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = client.get("/metrics").data.decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples
            if s.name.startswith("bbi_national_")}


def _labels(metric: str, year: int, kind: str) -> tuple[tuple[str, str], ...]:
    return (("kind", kind), ("metric", metric), ("year", str(year)))


def test_progress_new_in_year_counts_only_that_years_onboardings(env) -> None:  # type: ignore[no-untyped-def]
    """Finding 3: "new in 2020" was the all-time count of every business ever onboarded."""
    apply, client = env
    events = (
        _business(datetime(2019, 12, 31, 16, 59, 59, tzinfo=UTC))  # 23:59:59 WIB: still 2019
        + _business(Y2020_FIRST)  # 00:00 WIB on 1 January 2020
        + _business(datetime(2020, 6, 15, tzinfo=UTC), registered_at=datetime(2018, 3, 1,
                                                                             tzinfo=UTC))
        + _business(Y2020_LAST)
        + _business(datetime(2020, 12, 31, 17, 0, tzinfo=UTC))  # 00:00 WIB: already 2021
        + _business(datetime(2025, 2, 1, tzinfo=UTC))
    )
    apply(events)
    summary = client.get("/v1/summary").get_json()
    assert summary["national"]["onboarded"] == 6
    new_2020 = _target(client, "umkm_onboarded_new", 2020)
    assert new_2020["actual"] == 3
    assert (new_2020["kind"], new_2020["baseline"], new_2020["portal_onboarded"]) == (
        "new_in_year", 0, 3)
    assert new_2020["counted_from"] == "2020-01-01T00:00:00+07:00"
    assert new_2020["deadline"] == "2021-01-01T00:00:00+07:00"
    assert new_2020["progress"] == round(3 / 2_000_000, 6)
    assert summary["national"]["onboarded_by_year"] == {"2019": 1, "2020": 3, "2021": 1,
                                                        "2025": 1}
    labels = _labels("umkm_onboarded_new", 2020, "new_in_year")
    series = _series(client)
    assert series[("bbi_national_actual", labels)] == 3
    assert series[("bbi_national_portal_onboarded", labels)] == 3
    assert series[("bbi_national_baseline", labels)] == 0
    assert series[("bbi_national_baseline_timestamp_seconds", labels)] == Y2020_FIRST.timestamp()
    assert series[("bbi_national_target_deadline_timestamp_seconds", labels)] == \
        datetime(2020, 12, 31, 17, 0, tzinfo=UTC).timestamp()


def test_total_is_the_dated_baseline_plus_the_portal_after_it_up_to_each_deadline(env) -> None:  # type: ignore[no-untyped-def]
    apply, client = env
    apply(
        _business(datetime(2022, 3, 31, 16, 0, tzinfo=UTC))  # inside the baseline's month
        + _business(datetime(2022, 3, 31, 17, 0, tzinfo=UTC))  # 1 April 2022, 00:00 WIB
        + _business(datetime(2023, 6, 1, tzinfo=UTC))
        + _business(datetime(2024, 12, 31, 16, 59, tzinfo=UTC))
        + _business(datetime(2025, 1, 2, tzinfo=UTC))  # after the last deadline
    )
    got = {y: _target(client, "umkm_onboarded_total", y) for y in (2022, 2023, 2024)}
    assert {y: (t["baseline"], t["portal_onboarded"], t["actual"]) for y, t in got.items()} == {
        2022: (17_500_000, 1, 17_500_001),
        2023: (17_500_000, 2, 17_500_002),
        2024: (17_500_000, 3, 17_500_003),
    }
    for t in got.values():
        assert (t["kind"], t["baseline_as_of"]) == ("total", "2022-03")
        assert t["baseline_source_seed"] == "003_179c76fd067dc04a.txt"
        assert t["counted_from"] == "2022-04-01T00:00:00+07:00"
    online_2020 = _target(client, "umkm_online_total", 2020)  # reported 11.7 M at its deadline
    assert (online_2020["baseline"], online_2020["portal_onboarded"], online_2020["actual"]) == (
        11_700_000, 0, 11_700_000)
    labels = _labels("umkm_onboarded_total", 2023, "total")
    series = _series(client)
    assert series[("bbi_national_baseline", labels)] == 17_500_000
    assert series[("bbi_national_portal_onboarded", labels)] == 2
    assert series[("bbi_national_actual", labels)] == 17_500_002
    assert series[("bbi_national_target", labels)] == 24_000_000
    assert series[("bbi_national_baseline_timestamp_seconds", labels)] == \
        datetime(2022, 3, 31, 17, 0, tzinfo=UTC).timestamp()


def test_withdrawal_and_an_earlier_onboarding_move_the_business_between_years(env) -> None:  # type: ignore[no-untyped-def]
    apply, client = env
    late, gone = str(uuid.uuid4()), str(uuid.uuid4())
    apply([registered(late, at=datetime(2020, 1, 5, tzinfo=UTC)),
           _onboarded(late, datetime(2021, 3, 1, tzinfo=UTC)),
           registered(gone, at=datetime(2020, 1, 5, tzinfo=UTC)),
           _onboarded(gone, datetime(2020, 2, 1, tzinfo=UTC))])
    assert _target(client, "umkm_onboarded_new", 2020)["actual"] == 2 - 1
    # A partner reports, late, that `late` was on Shopee since 2020: first onboarded in 2020.
    apply([_onboarded(late, datetime(2020, 9, 1, tzinfo=UTC), "shopee")])
    assert _target(client, "umkm_onboarded_new", 2020)["actual"] == 2
    # A later platform of the same business changes nothing.
    apply([_onboarded(late, datetime(2022, 1, 1, tzinfo=UTC), "gofood")])
    assert _target(client, "umkm_onboarded_new", 2020)["actual"] == 2
    apply([ev(c.UMKM_WITHDRAWN, {"umkm_id": gone, "withdrawn_at": datetime(2024, 1, 1,
                                                                           tzinfo=UTC)})])
    assert _target(client, "umkm_onboarded_new", 2020)["actual"] == 1
    by_year = client.get("/v1/provinces/31").get_json()["onboarded_by_year"]
    assert by_year == {"2020": 1}


def test_e_catalogue_counts_approvals_in_force_made_within_2022(env) -> None:  # type: ignore[no-untyped-def]
    apply, client = env
    ids = [str(uuid.uuid4()) for _ in range(5)]
    apply([registered(u, at=datetime(2021, 1, 1, tzinfo=UTC)) for u in ids])
    apply([
        _curated(ids[0], "approved", datetime(2022, 5, 1, tzinfo=UTC)),
        _curated(ids[1], "approved", datetime(2021, 12, 31, 16, 0, tzinfo=UTC)),  # 2021 WIB
        _curated(ids[2], "approved", datetime(2022, 2, 1, tzinfo=UTC)),
        _curated(ids[2], "rejected", datetime(2022, 3, 1, tzinfo=UTC), "approved"),
        _curated(ids[3], "rejected", datetime(2021, 3, 1, tzinfo=UTC)),
        _curated(ids[3], "approved", datetime(2022, 7, 1, tzinfo=UTC), "rejected"),
        _curated(ids[4], "approved", datetime(2022, 8, 1, tzinfo=UTC)),
        ev(c.UMKM_WITHDRAWN, {"umkm_id": ids[4], "withdrawn_at": datetime(2023, 1, 1,
                                                                          tzinfo=UTC)}),
    ])
    t = _target(client, "umkm_ekatalog_onboarded", 2022)
    assert (t["kind"], t["baseline"], t["portal_onboarded"], t["actual"]) == (
        "new_in_year", 0, 2, 2)


def test_a_total_without_a_reported_figure_has_no_actual(env) -> None:  # type: ignore[no-untyped-def]
    apply, client = env
    apply([registered(str(uuid.uuid4()), qris=True, at=datetime(2021, 6, 1, tzinfo=UTC)),
           registered(str(uuid.uuid4()), qris=True, at=datetime(2022, 6, 1, tzinfo=UTC))])
    qris = _target(client, "umkm_qris_connected", 2021)
    assert (qris["kind"], qris["baseline"], qris["portal_onboarded"], qris["actual"],
            qris["progress"], qris["counted_from"]) == ("total", None, 1, None, None, None)
    kop = _target(client, "koperasi_modern_total", 2024)
    assert (kop["portal_onboarded"], kop["actual"]) == (None, None)
    series = _series(client)
    assert ("bbi_national_actual", _labels("umkm_qris_connected", 2021, "total")) not in series
    assert series[("bbi_national_portal_onboarded",
                   _labels("umkm_qris_connected", 2021, "total"))] == 1
    assert series[("bbi_national_target", _labels("koperasi_modern_total", 2024, "total"))] == 500
    # Every progress series carries exactly the bounded labels metric, year and kind.
    assert {tuple(k for k, _ in labels) for _, labels in series} == {("kind", "metric", "year")}


def test_baseline_is_the_latest_reported_figure_dated_by_the_end_of_the_targets_year() -> None:
    chosen = {(m, y): choose_baseline(MEASURES[m].reported, f"{y}-12")
              for m, y in [("umkm_online_total", 2020), ("umkm_onboarded_total", 2021),
                           ("umkm_onboarded_total", 2022), ("umkm_onboarded_total", 2024),
                           ("umkm_qris_connected", 2021)]}
    assert {k: (b.as_of, b.value) if b else None for k, b in chosen.items()} == {
        ("umkm_online_total", 2020): ("2020-12", 11_700_000),
        ("umkm_onboarded_total", 2021): ("2020-12", 11_700_000),
        ("umkm_onboarded_total", 2022): ("2022-03", 17_500_000),
        ("umkm_onboarded_total", 2024): ("2022-03", 17_500_000),
        ("umkm_qris_connected", 2021): None,
    }
    assert choose_baseline("umkm_in_digital_ecosystem", "2020-11") == baselines()[0]  # 8 M
    assert all(b.source_seed and b.note for b in baselines())


def test_every_target_metric_has_a_kind() -> None:
    from services.common.reference import targets

    assert {kind_of(t.metric) for t in targets()} == {"new_in_year", "total"}


def test_withdrawing_a_business_stored_before_event_times_were_kept_subtracts_no_month() -> None:
    # Rows from before the migration have no times: they were never in a monthly count.
    uid = str(uuid.uuid4())
    old = Business(uid, "31", "mikro", "C", True, platforms=("shopee",), curation="approved")
    f = Fold({uid: old})
    f.apply(c.UMKM_WITHDRAWN, {"umkm_id": uid, "withdrawn_at": "2026-01-01T00:00:00+00:00"})
    assert not [k for k, v in f.deltas.items() if k[0].startswith("progress_") and v]
    f = Fold({uid: old})
    f.apply(c.UMKM_ONBOARDED, {"umkm_id": uid, "platform": "gofood", "first_platform": False,
                               "onboarded_at": "2020-01-01T00:00:00+00:00"})
    assert not [k for k, v in f.deltas.items() if k[0] == COUNT_ONBOARDED and v]
