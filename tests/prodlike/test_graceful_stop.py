"""Graceful stop while Kafka is unreachable: with the broker down, requests still accepted and
every worker visibly failing against Kafka (relays failing to publish, consumers in their
"consumer batch failed; retrying" loop), each worker process gets SIGTERM and must be gone
within 10 s. Then the broker and the workers come back: every accepted request's event is
published and counted by the metrics service exactly once."""
from __future__ import annotations

import os
import signal
import time
from typing import Any

import pytest

from devtools import local_kafka
from tests.e2e.stack import Stack
from tests.faults.helpers import eventually, scrape, total
from tests.faults.traffic import Traffic
from tests.prodlike.results import Outcome

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
SERVICES = ("registration", "training", "campaign", "metrics")
RELAYS = ("registration", "training", "campaign")
CONSUMERS = ("training", "campaign", "metrics")
STOP_LIMIT_S = 10.0  # the requirement: SIGTERM to exit


def _worker_metrics(stack: Stack, s: str) -> Any:
    return scrape(f"http://127.0.0.1:{stack.worker_ports[s]}/metrics")


def _failing_against_kafka(stack: Stack, s: str, failures_before: float) -> None:
    """The worker has noticed the broker is gone: its relay failed a publish and its
    consumers are in their retry loop (the state the old worker ignored SIGTERM in)."""
    m = _worker_metrics(stack, s)
    if s in RELAYS:
        assert total(m, "bbi_outbox_publish_failures_total") > failures_before, f"{s} relay"
    if s in CONSUMERS:
        assert total(m, "bbi_worker_kafka_up") == 0, f"{s} consumer still thinks Kafka is up"


def sigterm_and_time(stack: Stack, name: str, deadline_s: float = 90.0) -> tuple[float, int]:
    """SIGTERM a process and poll until it is gone; (seconds it took, exit code). The deadline
    only bounds the wait: the verdict is on the measured seconds."""
    proc = stack.procs[name]
    t0 = time.monotonic()
    os.killpg(proc.pid, signal.SIGTERM)
    while proc.poll() is None and time.monotonic() - t0 < deadline_s:
        time.sleep(0.05)
    took = time.monotonic() - t0
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        return took, -1
    return took, int(proc.returncode)


@pytest.mark.timeout(600)
def test_workers_stop_within_10s_while_kafka_is_unreachable(
        own_broker: local_kafka.LocalBroker, pg_base_url: str, make_stack: Any,
        outcome: Outcome) -> None:
    stack: Stack = make_stack(own_broker.bootstrap, pg_base_url, SERVICES,
                              REGISTRATION_RATE_LIMIT="100000")
    traffic = Traffic(stack, pre_registered=4, sessions=3)
    traffic.setup()
    outcome.injected = ("the only Kafka broker stopped (SIGKILL); 8 rounds of registration, "
                        "enrolment and purchase accepted while it is down; once every worker "
                        "fails against Kafka, SIGTERM to each worker process in turn; then the "
                        "broker and the workers restart and 4 more rounds arrive")
    before = {s: total(_worker_metrics(stack, s), "bbi_outbox_publish_failures_total")
              for s in RELAYS}
    own_broker.kill()
    for i in range(8):  # accepted while Kafka is down: the events wait in the outboxes
        traffic._register(2000 + i)
        traffic._enrol(traffic._owners[i % len(traffic._owners)],
                       traffic._session_ids[1 + i // len(traffic._owners)])
        traffic._purchase(traffic._owners[i % len(traffic._owners)], f"DOWN-{i}")
    for s in SERVICES:
        eventually(lambda s=s: _failing_against_kafka(stack, s, before.get(s, 0)),
                   timeout=120, every=1)

    stops: dict[str, dict[str, float]] = {}
    for s in SERVICES:
        took, code = sigterm_and_time(stack, f"{s}_worker")
        stops[s] = {"seconds": round(took, 2), "exit_code": code}

    broker = local_kafka.start(port=own_broker.port, data_dir=own_broker.data_dir)
    up_at = time.monotonic()
    for s in SERVICES:
        stack.start_worker(s)
    for i in range(4):
        traffic._register(3000 + i)
        traffic._purchase(traffic._owners[i % len(traffic._owners)], f"UP-{i}")

    def all_published() -> dict[str, Any]:
        pub = traffic.published(broker.bootstrap)
        for kind in ("register", "enrol", "purchase"):
            missing = set(traffic.accepted(kind)) - set(pub[kind])
            assert not missing, f"{kind}: {len(missing)} accepted but not published yet"
        return pub

    pub = eventually(all_published, timeout=180, every=2)
    want = traffic.expected_metrics()
    eventually(lambda: _equal(traffic.metrics_counts(), want), timeout=120, every=1)
    recovered_s = time.monotonic() - up_at
    got = traffic.metrics_counts()
    accepted = sum(len(traffic.accepted(k)) for k in ("register", "enrol", "purchase"))
    published = sum(len(set(traffic.accepted(k)) & set(pub[k]))
                    for k in ("register", "enrol", "purchase"))
    applied = got["register"] + got["enrol"] + got["purchase"]
    five_xx = [x for x in traffic.calls if x.status >= 500 or x.status == 0]
    not_accepted = [x for x in traffic.calls if x.status != 201]
    outcome.counts = {
        "accepted": accepted, "published": published, "applied": applied,
        "lost": accepted - published, "duplicated": max(0, applied - accepted),
        "http_5xx": len(five_xx), "seconds_to_recover": round(recovered_s, 1),
        "slowest_worker_stop_s": max(v["seconds"] for v in stops.values()),
    }
    outcome.details = {"worker_stops": stops, "statuses": traffic.statuses(),
                       "metrics": got, "expected_metrics": want, "setup_s": traffic.setup_s}
    for s, v in stops.items():
        outcome.check(v["exit_code"] == 0, f"{s} worker exit code {v['exit_code']}")
        outcome.check(v["seconds"] <= STOP_LIMIT_S,
                      f"{s} worker took {v['seconds']} s to stop after SIGTERM")
    outcome.check(not five_xx, f"5xx or unanswered: {five_xx[:3]}")
    outcome.check(not not_accepted, f"requests not accepted: {not_accepted[:3]}")
    outcome.check(got == want, f"metrics {got} != accepted {want}")
    outcome.verify()


def _equal(got: dict[str, int], want: dict[str, int]) -> dict[str, int]:
    assert got == want, (got, want)
    return got
