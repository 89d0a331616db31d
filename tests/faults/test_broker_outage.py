"""Fault 1: the Kafka broker is SIGKILLed for 30 s while registrations, enrolments and
purchases keep arriving at the gunicorn webs. The webs hold no Kafka client, so every request
is answered as usual (no 5xx); each accepted request's event waits in its service's outbox and
is published once the broker is back on the same port and log dir; the metrics service then
counts exactly what was accepted.

The schedule follows the traffic, not the clock alone: the broker goes once requests are being
accepted, stays down for 30 s and until requests were answered during the outage, and the
traffic stops once requests were accepted after the restart; the counts are read once nothing
is left to publish or apply."""
from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from devtools import local_kafka
from tests.e2e.stack import Stack
from tests.faults.helpers import answered_since, eventually, scrape, settled, total
from tests.faults.results import Outcome
from tests.faults.traffic import Traffic

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
OUTAGE_S = 30.0
WARMUP = OUTAGE_CALLS = AFTER_CALLS = 20  # answered requests before, during, after the outage


@pytest.mark.timeout(420)
def test_broker_sigkilled_30s_under_traffic(own_broker: local_kafka.LocalBroker,
                                             pg_base_url: str, make_stack: Any,
                                             outcome: Outcome) -> None:
    stack: Stack = make_stack(own_broker.bootstrap, pg_base_url,
                              ("registration", "training", "campaign", "metrics"),
                              REGISTRATION_RATE_LIMIT="100000")
    traffic = Traffic(stack)
    traffic.setup()
    outcome.injected = (f"SIGKILL of the only Kafka broker, once {WARMUP} requests were "
                        f"accepted, for {OUTAGE_S:.0f} s and until {OUTAGE_CALLS} requests were "
                        "answered without it, then a restart on the same port and log dir, "
                        "under steady HTTP traffic (registrations, enrolments, purchases) that "
                        f"stops once {AFTER_CALLS} requests after the restart were accepted")
    stop = threading.Event()
    load = threading.Thread(target=traffic.run, args=(stop,), daemon=True)
    t_load = time.monotonic() - traffic._started  # the setup's own calls do not count
    load.start()
    try:
        eventually(lambda: _at_least(answered_since(traffic, t_load, 201), WARMUP), timeout=120)
        down_at = time.monotonic()
        own_broker.kill()
        dead_at = time.monotonic() - traffic._started  # requests from here find no broker
        eventually(lambda: _at_least(answered_since(traffic, dead_at), OUTAGE_CALLS),
                   timeout=180)
        time.sleep(max(0.0, down_at + OUTAGE_S - time.monotonic()))  # the outage's length
        broker = local_kafka.start(port=own_broker.port, data_dir=own_broker.data_dir)
        up_at = time.monotonic()
        eventually(lambda: _at_least(answered_since(traffic, up_at - traffic._started, 201),
                                     AFTER_CALLS), timeout=180)
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

    eventually(all_published, timeout=120, every=2)
    recovered_at = time.monotonic()
    # Nothing left to publish or apply: what is counted now cannot change later.
    eventually(lambda: settled(broker.bootstrap, stack), timeout=120, every=1)
    pub = traffic.published(broker.bootstrap)
    want = traffic.expected_metrics()
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


def _at_least(n: int, want: int) -> None:
    assert n >= want, f"{n} of {want} requests so far"
