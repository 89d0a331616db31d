"""Fault 2: the metrics worker process is SIGKILLed 10 times while it consumes a stream of over
100,000 events; restarted each time, its final aggregates equal exactly what the stream
implies (tests/fixtures/metrics_sample.py `expected`): nothing lost, nothing counted twice.

The schedule follows progress the test controls, never the worker's speed: the stream is
released in 11 steps, step k+1 only after kill k (while no worker runs), so every kill lands
before the stream has all been produced, on a fast machine and a slow one. The worker is then
started and killed once it has applied a random share (seeded) of the events waiting for it,
so each kill also finds the rest of its backlog still waiting."""
from __future__ import annotations

import random
import time
from typing import Any

import httpx
import pytest

from services.metrics.consumer import CONSUMER_NAME, TOPICS
from tests.e2e.stack import Stack
from tests.faults.helpers import applied, drained, eventually, produce
from tests.faults.results import Outcome
from tests.fixtures.metrics_sample import business_samples, nonzero

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
KILLS = 10
SEED = 20200514  # the launch date of the movement; printed in the results for a replay
SHARE = (0.05, 0.5)  # of the waiting events, applied by the running worker before its kill


@pytest.mark.timeout(900)  # about 2-4 min on the 2-core machine; a hang stops here
def test_metrics_worker_sigkilled_10_times_while_consuming_100k(
        kafka_bootstrap: str, pg_base_url: str, make_stack: Any, big_stream: Any,
        outcome: Outcome) -> None:
    events, exp = big_stream
    want = nonzero(exp)
    stack: Stack = make_stack(kafka_bootstrap, pg_base_url, ("metrics",))
    rng = random.Random(SEED)
    steps = [events[len(events) * k // (KILLS + 1):len(events) * (k + 1) // (KILLS + 1)]
             for k in range(KILLS + 1)]
    outcome.injected = (f"SIGKILL of the metrics worker process {KILLS} times; the "
                        f"{len(events)} events are produced in {KILLS + 1} steps, step k+1 "
                        f"only after kill k, then the worker restarted; kill k once it has "
                        f"applied {SHARE[0]:.0%}-{SHARE[1]:.0%} (seed {SEED}) of the events "
                        f"waiting for it")
    started = time.monotonic()
    assert stack.terminate("metrics_worker") == 0  # idle so far; each step waits for a worker
    produced, base = 0, applied(stack)
    kills: list[dict[str, float]] = []
    outcome.details["kills"] = kills  # saved as far as it got, also when the test fails
    for i in range(KILLS):
        produced += produce(kafka_bootstrap, stack.prefix, steps[i])
        stack.start_worker("metrics")
        target = base + max(1, int(rng.uniform(*SHARE) * (produced - base)))
        deadline = time.monotonic() + 120
        while (now := applied(stack)) < target:  # this incarnation really consumes
            assert time.monotonic() < deadline, \
                f"worker applied {now - base} of {target - base} events before kill {i + 1}"
            time.sleep(0.1)
        stack.kill("metrics_worker")
        base = applied(stack)  # what the killed worker committed
        kills.append({"t_s": round(time.monotonic() - started, 1), "produced": produced,
                      "applied_at_kill": base, "waiting_at_kill": produced - base})
        assert base < len(events), f"the stream was consumed before kill {i + 1}"
    produced += produce(kafka_bootstrap, stack.prefix, steps[KILLS])
    stack.start_worker("metrics")

    # Every partition's end stored with the effects: all applied, no late copy can follow.
    eventually(lambda: drained(kafka_bootstrap, stack, "metrics", CONSUMER_NAME, TOPICS),
               timeout=300, every=1)
    got = business_samples(httpx.get(stack.url("metrics", "/metrics"), timeout=15).text)
    n_applied = applied(stack)
    mismatched = {str(k): (got.get(k), want.get(k)) for k in set(got) | set(want)
                  if got.get(k) != want.get(k)}
    outcome.counts = {"accepted": len(events), "published": produced, "applied": n_applied,
                      "lost": max(0, len(events) - n_applied),
                      "duplicated": max(0, n_applied - len(events)),
                      "kills": len(kills), "series_checked": len(want),
                      "series_wrong": len(mismatched),
                      "kills_with_events_waiting": sum(k["waiting_at_kill"] > 0 for k in kills)}
    outcome.details |= {"seconds_to_exact": round(time.monotonic() - started, 1),
                        "mismatched_series_sample": dict(list(mismatched.items())[:10])}
    outcome.check(produced == len(events), f"produced {produced} of {len(events)} events")
    outcome.check(n_applied == len(events), f"applied {n_applied} of {len(events)} events")
    outcome.check(not mismatched, f"{len(mismatched)} series differ from expected")
    outcome.verify()
