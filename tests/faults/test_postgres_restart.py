"""Fault 3: the PostgreSQL server of every service is killed (pg_ctl stop -m immediate, like a
crash) and started again 10 s later while HTTP traffic continues. During the outage each
request is answered at once with 503 + Retry-After and a problem-details code (never a 500,
never a hang); afterwards the same web and worker processes serve again without a restart,
and nothing that was accepted (201) is lost on its way to Kafka and the metrics.

The schedule follows the traffic, not the clock alone: PostgreSQL goes once requests are being
accepted, stays down for 10 s and until requests were answered during the outage; recovery is
the moment every web's /readyz answers 200 again, and the traffic stops once requests started
after it were answered; the counts are read once nothing is left to publish or apply."""
from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import pytest

from devtools import local_postgres
from tests.e2e.stack import Stack
from tests.faults.helpers import answered_since, eventually, settled
from tests.faults.results import Outcome
from tests.faults.traffic import CLIENT_TIMEOUT_S, Traffic

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
OUTAGE_S = 10.0
WARMUP = OUTAGE_CALLS = AFTER_CALLS = 20  # answered requests before, during, after the outage
SERVICES = ("registration", "training", "campaign", "metrics")


@pytest.mark.timeout(420)
def test_postgres_restarted_under_traffic(kafka_bootstrap: str,
                                          own_postgres: local_postgres.LocalPostgres,
                                          make_stack: Any, outcome: Outcome) -> None:
    stack: Stack = make_stack(kafka_bootstrap, own_postgres.base_url, SERVICES,
                              REGISTRATION_RATE_LIMIT="100000")
    pids = {name: p.pid for name, p in stack.procs.items()}
    traffic = Traffic(stack)
    traffic.setup()
    outcome.injected = (f"PostgreSQL (every service's database) stopped with -m immediate, "
                        f"once {WARMUP} requests were accepted, for {OUTAGE_S:.0f} s and until "
                        f"{OUTAGE_CALLS} requests were answered without it, then started again, "
                        "under steady HTTP traffic that stops once every /readyz answers 200 "
                        f"and {AFTER_CALLS} requests after that were answered")
    stop = threading.Event()
    load = threading.Thread(target=traffic.run, args=(stop,), daemon=True)
    t_load = time.monotonic() - traffic._started  # the setup's own calls do not count
    load.start()
    readyz_down: dict[str, int] = {}
    try:
        eventually(lambda: _at_least(answered_since(traffic, t_load, 201), WARMUP), timeout=120)
        stopped = time.monotonic()
        down_at = stopped - traffic._started
        own_postgres.stop(mode="immediate")
        dead_at = time.monotonic() - traffic._started  # requests from here find no database
        eventually(lambda: _at_least(answered_since(traffic, dead_at), OUTAGE_CALLS),
                   timeout=180)
        readyz_down = {s: httpx.get(stack.url(s, "/readyz"), timeout=10).status_code
                       for s in SERVICES}
        time.sleep(max(0.0, stopped + OUTAGE_S - time.monotonic()))  # the outage's length
        local_postgres.start(port=own_postgres.port, data_dir=own_postgres.data_dir,
                             fsync=True)
        up_at = time.monotonic() - traffic._started
        eventually(lambda: _ready(stack), timeout=120)  # every pool re-connected
        ready_at = time.monotonic() - traffic._started
        eventually(lambda: _at_least(answered_since(traffic, ready_at), AFTER_CALLS),
                   timeout=180)
    finally:
        stop.set()
        load.join(60)

    during = [x for x in traffic.calls if down_at <= x.t <= up_at]
    after = [x for x in traffic.calls if x.t >= ready_at]
    bad = [x for x in traffic.calls if x.status not in (201, 503)]
    no_retry_after = [x for x in traffic.calls if x.status == 503 and not x.retry_after]

    def all_published() -> dict[str, Any]:
        pub = traffic.published(kafka_bootstrap)
        for kind in ("register", "enrol", "purchase"):
            missing = set(traffic.accepted(kind)) - set(pub[kind])
            assert not missing, f"{kind}: {len(missing)} accepted but not published yet"
        return pub

    eventually(all_published, timeout=120, every=2)
    # Nothing left to publish or apply: what is counted now cannot change later.
    eventually(lambda: settled(kafka_bootstrap, stack), timeout=120, every=1)
    pub = traffic.published(kafka_bootstrap)
    want = traffic.expected_metrics()
    got = traffic.metrics_counts()
    accepted = sum(len(traffic.accepted(k)) for k in ("register", "enrol", "purchase"))
    published = sum(len(set(traffic.accepted(k)) & set(pub[k]))
                    for k in ("register", "enrol", "purchase"))
    # Published without a 201: the client was told "failed" but the change happened.
    phantom = sum(len(set(pub[k]) - set(traffic.accepted(k)))
                  for k in ("register", "enrol", "purchase"))
    applied = got["register"] + got["enrol"] + got["purchase"]
    readyz_after = {s: httpx.get(stack.url(s, "/readyz"), timeout=10).status_code
                    for s in SERVICES}
    restarted = [n for n, p in stack.procs.items() if p.poll() is not None or
                 p.pid != pids[n]]
    outcome.counts = {
        "accepted": accepted, "published": published, "applied": applied,
        "lost": accepted - published, "duplicated": max(0, applied - accepted),
        "requests_during_outage": len(during),
        "503_during_outage": sum(1 for x in during if x.status == 503),
        "500_or_other": len(bad), "unanswered": sum(1 for x in traffic.calls if x.status == 0),
        "503_without_retry_after": len(no_retry_after),
        "published_without_201": phantom,
        "accepted_after_recovery": sum(1 for x in after if x.status == 201),
    }
    outcome.details = {
        "statuses": traffic.statuses(), "metrics": got, "expected_metrics": want,
        "setup_s": traffic.setup_s,
        "readyz_during_outage": readyz_down, "readyz_after": readyz_after,
        "max_latency_s_during_outage": round(max((x.latency_s for x in during), default=0), 2),
        "503_codes": sorted({x.code for x in traffic.calls if x.status == 503}),
        "seconds_from_postgres_up_to_all_ready": round(ready_at - up_at, 1),
        "processes_restarted_or_dead": restarted,
    }
    outcome.check(not bad, f"answers other than 201/503: {bad[:5]}")
    outcome.check(not no_retry_after, f"503 without Retry-After: {no_retry_after[:3]}")
    outcome.check(outcome.counts["503_during_outage"] > 0, "no 503 seen: was the DB down?")
    outcome.check(all(x.latency_s < CLIENT_TIMEOUT_S / 2 for x in during),
                  "a request took longer than 7.5 s during the outage")
    outcome.check(set(readyz_down.values()) == {503}, f"readyz during outage {readyz_down}")
    outcome.check(set(readyz_after.values()) == {200}, f"readyz after {readyz_after}")
    outcome.check(all(x.status == 201 for x in after) and after,
                  "requests after recovery were not all accepted")
    outcome.check(not restarted, f"processes died or were restarted: {restarted}")
    outcome.check(published == accepted, f"{accepted - published} accepted requests lost")
    outcome.check(phantom == 0, f"{phantom} changes published though the client got no 201")
    outcome.check(got == want, f"metrics {got} != accepted {want}")
    outcome.verify()


def _at_least(n: int, want: int) -> None:
    assert n >= want, f"{n} of {want} requests so far"


def _ready(stack: Stack) -> None:
    codes: dict[str, Any] = {}
    for s in SERVICES:
        try:
            codes[s] = httpx.get(stack.url(s, "/readyz"), timeout=10).status_code
        except httpx.HTTPError as exc:
            codes[s] = type(exc).__name__
    assert set(codes.values()) == {200}, codes
