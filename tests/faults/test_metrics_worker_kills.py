"""Fault 2: the metrics worker process is SIGKILLed 10 times at random moments while it
consumes a stream of over 100,000 events; restarted each time, its final aggregates equal
exactly what the stream implies (services/metrics/sample.py `expected`): nothing lost,
nothing counted twice."""
from __future__ import annotations

import random
import threading
import time
from typing import Any

import pytest

from services.metrics.sample import business_samples, nonzero
from tests.e2e.stack import Stack
from tests.faults.helpers import applied, produce
from tests.faults.results import Outcome

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
KILLS = 10
SEED = 20200514  # the launch date of the movement; printed in the results for a replay



@pytest.mark.timeout(600)
def test_metrics_worker_sigkilled_10_times_while_consuming_100k(
        kafka_bootstrap: str, pg_base_url: str, make_stack: Any, big_stream: Any,
        outcome: Outcome) -> None:
    events, exp = big_stream
    want = nonzero(exp)
    stack: Stack = make_stack(kafka_bootstrap, pg_base_url, ("metrics",))
    rng = random.Random(SEED)
    outcome.injected = (f"SIGKILL of the metrics worker process {KILLS} times, each at a random "
                        f"moment 0-2 s after it was seen applying events (seed {SEED}), "
                        f"restarted at once; {len(events)} events produced meanwhile")
    produced: dict[str, Any] = {}

    def producer() -> None:
        try:
            produced["n"] = produce(kafka_bootstrap, stack.prefix, events)
        except Exception as exc:  # noqa: BLE001 - reported by the main thread
            produced["error"] = exc

    t = threading.Thread(target=producer, daemon=True)
    started = time.monotonic()
    t.start()
    kills: list[dict[str, float]] = []
    for i in range(KILLS):
        base = applied(stack)
        deadline = time.monotonic() + 90
        while applied(stack) <= base:  # wait until this incarnation really consumes
            assert time.monotonic() < deadline, f"worker made no progress before kill {i + 1}"
            time.sleep(0.3)
        time.sleep(rng.uniform(0, 2.0))
        stack.kill("metrics_worker")
        at = applied(stack)
        kills.append({"t_s": round(time.monotonic() - started, 1), "applied_at_kill": at})
        assert at < len(events), f"the stream was consumed before kill {i + 1}: not a fault test"
        stack.start_worker("metrics")
    t.join(180)
    assert not t.is_alive() and "error" not in produced, produced

    deadline = time.monotonic() + 300
    got = business_samples(scrape_text(stack))
    while got != want and time.monotonic() < deadline:
        time.sleep(2)
        got = business_samples(scrape_text(stack))
    time.sleep(3)  # a late second copy would show up now
    got = business_samples(scrape_text(stack))
    n_applied = applied(stack)
    mismatched = {str(k): (got.get(k), want.get(k)) for k in set(got) | set(want)
                  if got.get(k) != want.get(k)}
    outcome.counts = {"accepted": len(events), "published": produced["n"], "applied": n_applied,
                      "lost": max(0, len(events) - n_applied),
                      "duplicated": max(0, n_applied - len(events)),
                      "kills": len(kills), "series_checked": len(want),
                      "series_wrong": len(mismatched)}
    outcome.details = {"kills": kills, "seconds_to_exact": round(time.monotonic() - started, 1),
                       "mismatched_series_sample": dict(list(mismatched.items())[:10])}
    outcome.check(n_applied == len(events), f"applied {n_applied} of {len(events)} events")
    outcome.check(not mismatched, f"{len(mismatched)} series differ from expected")
    outcome.verify()


def scrape_text(stack: Stack) -> str:
    import httpx

    return httpx.get(stack.url("metrics", "/metrics"), timeout=15).text
