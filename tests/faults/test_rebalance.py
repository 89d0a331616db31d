"""Fault 5: a consumer-group rebalance in the middle of a stream. A second metrics worker
process joins (the group splits the partitions), applies part of the stream, then leaves with
a graceful SIGTERM (the group hands everything back to the first). Every event is applied by
exactly one of them, and the final aggregates equal the expected ones: no double count, no
gap.

The schedule follows progress the test controls: B is started once A applies; the middle of
the stream is released once the group has given both of them partitions; B leaves once it has
applied 1,000 events, between the last two steps of the stream, so it leaves mid-stream on a
fast machine and a slow one."""
from __future__ import annotations

import time
from typing import Any

import pytest

from services.metrics.consumer import CONSUMER_NAME, TOPICS
from tests.e2e.stack import Stack, free_port
from tests.faults.helpers import applied, drained, eventually, group_members, produce, scrape, total
from tests.faults.results import Outcome
from tests.fixtures.metrics_sample import business_samples, expected, nonzero

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
                        "applies part of it, then leaves (SIGTERM) between the last two steps "
                        "of the stream")
    chunks = [events[i:i + CHUNK] for i in range(0, len(events), CHUNK)]
    a_port, b_port = stack.worker_ports["metrics"], free_port()
    started = time.monotonic()
    produced = produce(kafka_bootstrap, stack.prefix, chunks[0])
    eventually(lambda: _assert(applied(stack) > 0, "the first worker applied nothing"),
               timeout=90)
    stack.start_worker("metrics", name="metrics_worker_b", metrics_port=b_port)
    joined_at = applied(stack)

    def both_assigned() -> None:  # the rebalance is done: each worker owns partitions
        state, members = group_members(kafka_bootstrap, stack.prefix + CONSUMER_NAME)
        assert state == "Stable" and len(members) == 2 and all(members), (state, members)

    eventually(both_assigned, timeout=120)
    for chunk in chunks[1:-2]:  # a steady stream while both own partitions
        produced += produce(kafka_bootstrap, stack.prefix, chunk)

    def b_applies() -> int:  # B really applies events (its /metrics may not be up yet)
        try:
            n = consumed(b_port)
        except Exception:  # noqa: BLE001
            n = 0
        assert n >= 1000, f"the second worker applied only {n}"
        return n

    b_final = eventually(b_applies, timeout=120)
    produced += produce(kafka_bootstrap, stack.prefix, chunks[-2])
    left_at = applied(stack)
    exit_code = stack.terminate("metrics_worker_b")
    produced += produce(kafka_bootstrap, stack.prefix, chunks[-1])
    # Every partition's end stored with the effects: all applied, no late copy can follow.
    eventually(lambda: drained(kafka_bootstrap, stack, "metrics", CONSUMER_NAME, TOPICS),
               timeout=180, every=1)
    got = business_samples(scrape_text(stack))
    n_applied = applied(stack)
    a_total = consumed(a_port)
    mismatched = {str(k): (got.get(k), want.get(k)) for k in set(got) | set(want)
                  if got.get(k) != want.get(k)}
    outcome.counts = {"accepted": len(events), "published": produced, "applied": n_applied,
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


def _assert(ok: bool, what: str) -> None:
    assert ok, what


def scrape_text(stack: Stack) -> str:
    import httpx

    return httpx.get(stack.url("metrics", "/metrics"), timeout=15).text
