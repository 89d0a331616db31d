"""The batch handler through the real BatchApplier on SQLite, and the web process reading it."""

from __future__ import annotations

import uuid
from collections import namedtuple
from pathlib import Path

import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from services.common.db.engine import make_engine
from services.common.db.migrations import upgrade
from services.common.messaging import contracts as c
from services.common.messaging.consumer import BatchApplier
from services.metrics import store
from services.metrics.app import create_app
from services.metrics.config import load_settings
from services.metrics.consumer import consumers
from services.metrics.domain import COUNT_ONBOARDED
from tests.fixtures.metrics_sample import (
    NOW,
    business_samples,
    ev,
    expected,
    expected_counts,
    mixed_stream,
    nonzero,
    registered,
)

Rec = namedtuple("Rec", "topic partition offset key value")


@pytest.fixture
def env(tmp_path: Path):  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'metrics.db'}"
    upgrade("metrics", url)
    engine = make_engine(url)
    applier = BatchApplier(engine, store.metadata, consumers()[0])
    app = create_app(load_settings(database_url=url), engine)
    return engine, applier, app.test_client()


def _records(events, start: int = 0) -> list[Rec]:  # type: ignore[no-untyped-def]
    return [Rec("bbi.umkm", 0, start + i, None, e.to_bytes()) for i, e in enumerate(events)]


def _value(client, name: str, **labels: str) -> float:  # type: ignore[no-untyped-def]
    for fam in text_string_to_metric_families(client.get("/metrics").data.decode()):
        for s in fam.samples:
            if s.name == name and s.labels == labels:
                return s.value
    return 0.0


def test_mixed_stream_in_batches_matches_naive_expectation(env) -> None:  # type: ignore[no-untyped-def]
    engine, applier, client = env
    events = mixed_stream(50, seed=11)
    for i in range(0, len(events), 37):
        applier.apply(_records(events[i : i + 37], i), lambda dead: None)
    assert business_samples(client.get("/metrics").data.decode()) == nonzero(expected(events))


def test_duplicate_event_ids_are_applied_once(env) -> None:  # type: ignore[no-untyped-def]
    engine, applier, client = env
    uid = str(uuid.uuid4())
    e = registered(uid, "31", "mikro")
    applier.apply(_records([e, e]), lambda dead: None)
    applier.apply(_records([e], 2), lambda dead: None)
    assert _value(client, "bbi_umkm_registered", province="31", scale="mikro") == 1
    assert _value(client, "bbi_metrics_events_applied_total", type=c.UMKM_REGISTERED) == 1


def test_withdrawal_and_curation_change_across_batches(env) -> None:  # type: ignore[no-untyped-def]
    engine, applier, client = env
    uid = str(uuid.uuid4())
    batches = [
        [
            registered(uid, "73", "kecil", qris=True),
            ev(
                c.UMKM_CURATED,
                {
                    "umkm_id": uid,
                    "decision": "approved",
                    "previous_decision": None,
                    "curated_at": NOW,
                },
            ),
        ],
        [
            ev(
                c.UMKM_CURATED,
                {
                    "umkm_id": uid,
                    "decision": "rejected",
                    "previous_decision": "approved",
                    "curated_at": NOW,
                },
            )
        ],
    ]
    off = 0
    for b in batches:
        applier.apply(_records(b, off), lambda dead: None)
        off += len(b)
    assert _value(client, "bbi_umkm_curated", province="73", decision="approved") == 0
    assert _value(client, "bbi_umkm_curated", province="73", decision="rejected") == 1
    applier.apply(
        _records([ev(c.UMKM_WITHDRAWN, {"umkm_id": uid, "withdrawn_at": NOW})], off),
        lambda dead: None,
    )
    assert _value(client, "bbi_umkm_registered", province="73", scale="kecil") == 0
    assert _value(client, "bbi_umkm_qris_adopted", province="73", scale="kecil") == 0
    assert _value(client, "bbi_umkm_curated", province="73", decision="rejected") == 0
    assert _value(client, "bbi_umkm_registrations_total", province="73", scale="kecil") == 1
    assert _value(client, "bbi_umkm_withdrawals_total", province="73", scale="kecil") == 1


def test_poison_in_a_batch_is_isolated_and_counted(env) -> None:  # type: ignore[no-untyped-def]
    engine, applier, client = env
    good, ghost = str(uuid.uuid4()), str(uuid.uuid4())
    recs = _records([registered(good), ev(c.UMKM_VERIFIED, {"umkm_id": ghost, "verified_at": NOW})])
    recs.append(Rec("bbi.umkm", 0, 2, None, b"not json"))
    dead = applier.apply(recs, lambda dead: None)
    assert sorted(d.reason for d in dead) == ["not_json", "unknown_umkm"]
    assert _value(client, "bbi_umkm_registered", province="31", scale="mikro") == 1
    assert _value(client, "bbi_metrics_events_deadlettered_total", reason="unknown_umkm") == 1
    assert _value(client, "bbi_metrics_events_deadlettered_total", reason="not_json") == 1


def test_batch_not_starting_at_stored_offset_is_refused(env) -> None:  # type: ignore[no-untyped-def]
    from services.common.messaging.consumer import OffsetsMoved

    engine, applier, client = env
    applier.apply(_records([registered(str(uuid.uuid4()))]), lambda dead: None)
    with pytest.raises(OffsetsMoved):
        applier.apply(_records([registered(str(uuid.uuid4()))], 5), lambda dead: None)
    assert _value(client, "bbi_umkm_registered", province="31", scale="mikro") == 1


def test_scrape_reads_only_aggregates_and_progress_json(env) -> None:  # type: ignore[no-untyped-def]
    engine, applier, client = env
    events = mixed_stream(30, seed=5)
    applier.apply(_records(events), lambda dead: None)
    statements: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    text = client.get("/metrics").data.decode()
    assert statements and all(
        "processed_events" not in s and "COUNT" not in s.upper() for s in statements
    )
    assert ('bbi_national_target{kind="total",metric="umkm_onboarded_total",year="2024"} 3e+07'
            in text)
    summary = client.get("/v1/summary").get_json()
    exp = expected(events)
    assert summary["national"]["registered"] == sum(
        v for (m, _), v in exp.items() if m == "bbi_umkm_registered"
    )
    assert len(summary["provinces"]) == 38
    onboarded = {t["year"]: t for t in summary["targets"] if t["metric"] == "umkm_onboarded_total"}
    assert set(onboarded) == {2022, 2023, 2024}
    months = expected_counts(events)[COUNT_ONBOARDED]
    for year, t in onboarded.items():  # the March 2022 figure plus the portal from April 2022
        portal = sum(n for m, n in months.items() if "2022-04" <= m <= f"{year}-12")
        assert (t["baseline"], t["portal_onboarded"], t["actual"]) == (
            17_500_000, portal, 17_500_000 + portal)
    assert summary["national"]["onboarded_by_year"] == {
        y: n for y in sorted({m[:4] for m in months})
        if (n := sum(v for m, v in months.items() if m.startswith(y)))}
    prov = summary["provinces"][0]["code"]
    detail = client.get(f"/v1/provinces/{prov}").get_json()
    assert detail["registered"] == summary["provinces"][0]["registered"]
    assert sum(s["registered"] for s in detail["by_scale"].values()) == detail["registered"]
    missing = client.get("/v1/provinces/99")
    assert missing.status_code == 404 and missing.mimetype == "application/problem+json"


def test_bbi_cli_has_metrics_rebuild() -> None:
    from devtools.cli import main

    assert "rebuild" in main.commands["metrics"].commands  # type: ignore[attr-defined]


def test_gauge_back_to_zero_inside_one_batch_still_exists(env) -> None:  # type: ignore[no-untyped-def]
    # Waitlisted then promoted in the same batch nets to 0; the series must still be scraped
    # (dashboards and alerts read it), exactly as when the two events land in separate batches.
    engine, applier, client = env
    seat = {"session_id": str(uuid.uuid4()), "umkm_id": str(uuid.uuid4()),
            "course_id": str(uuid.uuid4()), "province_code": "65"}
    applier.apply(_records([ev(c.TRAINING_WAITLISTED, {**seat, "position": 1}),
                            ev(c.TRAINING_PROMOTED, seat)]), lambda dead: None)
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for fam in text_string_to_metric_families(client.get("/metrics").data.decode())
               for s in fam.samples}
    assert samples[("bbi_training_waitlisted", (("province", "65"),))] == 0
    assert samples[("bbi_training_seats_used", (("province", "65"),))] == 1
