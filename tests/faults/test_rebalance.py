"""Fault 5: a consumer-group rebalance in the middle of a stream. A second metrics worker
process joins (the group splits the partitions), applies part of the stream, then leaves with
a graceful SIGTERM (the group hands everything back to the first). Every event is applied by
exactly one of them, and the final aggregates equal the expected ones: no double count, no
gap."""
from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from services.metrics.sample import business_samples, expected, nonzero
from tests.e2e.stack import Stack, free_port
from tests.faults.helpers import applied, produce, scrape, total
from tests.faults.results import Outcome

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
EVENTS = 30_000
CHUNK = 1_500


def consumed(port: int) -> int:
    """Events the worker process on `port` applied (its own counter since it started)."""
    m = scrape(f"http://127.0.0.1:{port}/metrics")
    return int(total(m, "bbi_consumer_events_total", consumer="metrics-aggregates"))



@pytest.mark.timeout(420)
def test_second_metrics_worker_joins_then_leaves_mid_stream(
        kafka_bootstrap: str, pg_base_url: str, make_stack: Any, big_stream: Any,
        outcome: Outcome) -> None:
    events = big_stream[0][:EVENTS]  # a prefix of a valid stream is a valid stream
    want = nonzero(expected(events))
    stack: Stack = make_stack(kafka_bootstrap, pg_base_url, ("metrics",))
    outcome.injected = ("a second metrics worker process joins the consumer group mid-stream, "
                        "applies part of it, then leaves (SIGTERM) while events keep coming")
    produced: dict[str, Any] = {"n": 0}

    def producer() -> None:  # a steady stream, so both rebalances happen inside it
        try:
            for i in range(0, len(events), CHUNK):
                produced["n"] += produce(kafka_bootstrap, stack.prefix, events[i:i + CHUNK])
                time.sleep(0.5)
        except Exception as exc:  # noqa: BLE001 - reported by the main thread
            produced["error"] = exc

    a_port, b_port = stack.worker_ports["metrics"], free_port()
    t = threading.Thread(target=producer, daemon=True)
    t.start()
    started = time.monotonic()
    deadline = started + 60
    while applied(stack) == 0:
        assert time.monotonic() < deadline, "the first worker applied nothing"
        time.sleep(0.3)
    stack.start_worker("metrics", name="metrics_worker_b", metrics_port=b_port)
    joined_at = applied(stack)
    deadline = time.monotonic() + 90
    b_applied = 0
    while b_applied < 1000:  # B really owns partitions and applies events
        assert time.monotonic() < deadline, f"the second worker applied only {b_applied}"
        time.sleep(0.5)
        try:
            b_applied = consumed(b_port)
        except Exception:  # noqa: BLE001 - its /metrics is not up yet
            b_applied = 0
    b_final = consumed(b_port)
    left_at = applied(stack)
    exit_code = stack.terminate("metrics_worker_b")
    t.join(180)
    assert not t.is_alive() and "error" not in produced, produced

    deadline = time.monotonic() + 180
    got = business_samples(scrape_text(stack))
    while got != want and time.monotonic() < deadline:
        time.sleep(1)
        got = business_samples(scrape_text(stack))
    time.sleep(3)  # a late second copy would show now
    got = business_samples(scrape_text(stack))
    n_applied = applied(stack)
    a_total = consumed(a_port)
    mismatched = {str(k): (got.get(k), want.get(k)) for k in set(got) | set(want)
                  if got.get(k) != want.get(k)}
    outcome.counts = {"accepted": len(events), "published": produced["n"], "applied": n_applied,
                      "lost": max(0, len(events) - n_applied),
                      "duplicated": max(0, n_applied - len(events)),
                      "applied_by_first_worker": a_total,
                      # B's counter dies with it; what A did not apply, B did (if no double).
                      "applied_by_second_worker": n_applied - a_total,
                      "second_worker_seen_applying": b_final,
                      "series_checked": len(want), "series_wrong": len(mismatched)}
    outcome.details = {"applied_when_second_joined": joined_at,
                       "applied_when_second_left": left_at,
                       "second_worker_exit_code": exit_code,
                       "seconds": round(time.monotonic() - started, 1),
                       "mismatched_series_sample": dict(list(mismatched.items())[:10])}
    outcome.check(n_applied == len(events), f"applied {n_applied} of {len(events)}")
    outcome.check(not mismatched, f"{len(mismatched)} series differ from expected")
    outcome.check(a_total + b_final <= n_applied,
                  f"workers applied {a_total} + at least {b_final} > {n_applied}: double apply")
    outcome.check(a_total < len(events), "the first worker applied everything alone")
    outcome.check(left_at < len(events), "the stream ended before the second worker left")
    outcome.check(exit_code == 0, f"the second worker exited with {exit_code}")
    outcome.verify()


def scrape_text(stack: Stack) -> str:
    import httpx

    return httpx.get(stack.url("metrics", "/metrics"), timeout=15).text
