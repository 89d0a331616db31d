"""Fault 1: the Kafka broker is SIGKILLed for 30 s while registrations, enrolments and
purchases keep arriving at the gunicorn webs. The webs hold no Kafka client, so every request
is answered as usual (no 5xx); each accepted request's event waits in its service's outbox and
is published once the broker is back on the same port and log dir; the metrics service then
counts exactly what was accepted."""
from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from services.common import local_kafka
from tests.e2e.stack import Stack
from tests.faults.helpers import eventually, scrape, total
from tests.faults.results import Outcome
from tests.faults.traffic import Traffic

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
OUTAGE_S = 30.0


@pytest.mark.timeout(420)
def test_broker_sigkilled_30s_under_traffic(own_broker: local_kafka.LocalBroker,
                                             pg_base_url: str, make_stack: Any,
                                             outcome: Outcome) -> None:
    stack: Stack = make_stack(own_broker.bootstrap, pg_base_url,
                              ("registration", "training", "campaign", "metrics"),
                              REGISTRATION_RATE_LIMIT="100000")
    traffic = Traffic(stack)
    traffic.setup()
    outcome.injected = (f"SIGKILL of the only Kafka broker for {OUTAGE_S:.0f} s, then a restart "
                        "on the same port and log dir, under steady HTTP traffic "
                        "(registrations, enrolments, purchases)")
    stop = threading.Event()
    load = threading.Thread(target=traffic.run, args=(stop,), daemon=True)
    load.start()
    try:
        time.sleep(5)
        down_at = time.monotonic()
        own_broker.kill()
        time.sleep(OUTAGE_S)
        broker = local_kafka.start(port=own_broker.port, data_dir=own_broker.data_dir)
        up_at = time.monotonic()
        time.sleep(5)
    finally:
        stop.set()
        load.join(60)
    outage = [x for x in traffic.calls if down_at - traffic._started <= x.t <= up_at -
              traffic._started]

    def all_published() -> dict[str, Any]:
        pub = traffic.published(broker.bootstrap)
        for kind in ("register", "enrol", "purchase"):
            missing = set(traffic.accepted(kind)) - set(pub[kind])
            assert not missing, f"{kind}: {len(missing)} accepted but not published yet"
        return pub

    pub = eventually(all_published, timeout=120, every=2)
    recovered_at = time.monotonic()
    want = traffic.expected_metrics()
    got = eventually(lambda: _equal(traffic.metrics_counts(), want), timeout=90, every=1)
    time.sleep(3)  # a late duplicate would show now
    got = traffic.metrics_counts()
    parked = {s: total(scrape(f"http://127.0.0.1:{stack.worker_ports[s]}/metrics"),
                       "bbi_outbox_parked_events_total") for s in ("registration", "training",
                                                                   "campaign")}
    accepted = sum(len(traffic.accepted(k)) for k in ("register", "enrol", "purchase"))
    published = sum(len(set(traffic.accepted(k)) & set(pub[k])) for k in ("register", "enrol",
                                                                         "purchase"))
    dup_in_topic = sum(n - 1 for k in ("register", "enrol", "purchase") for n in pub[k].values()
                       if n > 1)
    five_xx = [x for x in traffic.calls if x.status >= 500 or x.status == 0]
    outcome.counts = {
        "accepted": accepted, "published": published,
        "applied": got["register"] + got["enrol"] + got["purchase"],
        "lost": accepted - published,
        "duplicated": max(0, got["register"] + got["enrol"] + got["purchase"] - accepted),
        "accepted_during_outage": sum(1 for x in outage if x.status == 201),
        "requests_during_outage": len(outage), "http_5xx_or_no_answer": len(five_xx),
        "same_business_event_twice_in_topic": dup_in_topic,
        "event_redelivered_in_topic": sum(pub.get("redelivered_event_ids", {}).values()),
    }
    outcome.details = {
        "statuses": traffic.statuses(), "metrics": got, "expected_metrics": want,
        "setup_s": traffic.setup_s,
        "outbox_parked": parked,
        "seconds_from_broker_back_to_all_published": round(recovered_at - up_at, 1),
        "max_latency_s_during_outage": round(max((x.latency_s for x in outage), default=0), 2),
    }
    outcome.check(not five_xx, f"5xx or unanswered requests: {five_xx[:5]}")
    outcome.check(outcome.counts["accepted_during_outage"] > 0, "nothing accepted during outage")
    outcome.check(got == want, f"metrics {got} != accepted {want}")
    outcome.check(dup_in_topic == 0, f"{dup_in_topic} accepted requests published twice")
    outcome.check(not any(parked.values()), f"outbox rows parked: {parked}")
    outcome.verify()


def _equal(got: dict[str, int], want: dict[str, int]) -> dict[str, int]:
    assert got == want, (got, want)
    return got
