"""The production configuration under faults (tests/prodlike/stack.py: 3 Kafka nodes with
replication 3 and min.insync.replicas 2, nginx from the Ingress, Keycloak, PostgreSQL, every
process with the ConfigMap's names). Every fault schedule is driven by progress the test
controls: load is released in steps, and each next step waits for what the last one must
have caused (events on the topic, the ISR whole again), never for a fixed time. The outages'
lengths (60 s, 30 s) are the faults themselves, not verdicts.

Each scenario registers in provinces of its own, so the metrics service's count for them is
exactly that scenario's: accepted == published == applied, nothing twice."""
from __future__ import annotations

import os
import signal
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import jwt
import pytest
from kafka.errors import KafkaError

from devtools import local_kafka_cluster as lkc
from services.common.messaging import contracts as c
from tests.e2e.stack import eventually
from tests.integration.keycloak_helpers import add_rsa_key
from tests.prodlike.gunicorn_workers import answer_from_each
from tests.prodlike.load import Ingress5xx, Load, LogSince, bearer, client, province_counts
from tests.prodlike.results import Outcome
from tests.unit.registration_helpers import payload

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
KILLS = 5
BROKER_DOWN_S = 60.0
IDP_DOWN_S = 30.0
# (province, regency) pairs no other scenario registers in.
JOURNEY = ("11", "1171")
LEADER_LOSS = (("33", "3374"), ("34", "3471"))
BROKER_DOWN = (("35", "3578"), ("36", "3671"))
# Hang guards only (the stack starts inside the first test that needs it).
TIMEOUT = 1500
T = TypeVar("T")


class Overcounted(Exception):
    """More counted than accepted: fails at once instead of being polled away."""


def _kafka(call: Callable[[], T]) -> T:
    """A test client's Kafka call inside a poll: with a node down, kafka-python's metadata
    request may go to the dead node and raise; that is "not yet", the poll tries again."""
    try:
        return call()
    except KafkaError as exc:
        raise AssertionError(f"Kafka call failed: {exc!r}") from exc


def _full_isr(stack: Any) -> None:
    isr = _kafka(lambda: lkc.isr(stack.cluster.bootstrap, stack.prefix + c.TOPIC_UMKM))
    assert all(len(v) == 3 for v in isr.values()), isr


def _leader_of_partition_0(stack: Any) -> int:
    def alive_leader() -> int:
        leader = _kafka(lambda: lkc.leaders(stack.cluster.bootstrap,
                                            stack.prefix + c.TOPIC_UMKM))[0]
        assert leader in stack.cluster.alive(), leader
        return leader
    return eventually(alive_leader, timeout=60, every=1)


def _published(load: Load, timeout: float = 300) -> tuple[Counter[str], int, bool]:
    """Wait until every accepted registration's event is on bbi.umkm; (events per business,
    repeated records, whether all arrived)."""
    last: list[tuple[Counter[str], int]] = []

    def check() -> None:
        last[:] = [_kafka(load.published)]
        missing = [i for i in load.accepted() if last[0][0][i] == 0]
        assert not missing, f"{len(missing)} of {len(load.accepted())} not on the topic yet"

    try:
        eventually(check, timeout=timeout, every=2)
    except AssertionError:
        return (last[0][0], last[0][1], False) if last else (Counter(), 0, False)
    return last[0][0], last[0][1], True


def _counted(load: Load, timeout: float = 300) -> int:
    """Wait until the metrics service has counted every accepted registration."""
    expected = len(load.accepted())
    seen = [0]

    def check() -> None:
        seen[0] = load.counted()
        if seen[0] > expected:
            raise Overcounted(f"metrics counted {seen[0]} of {expected} accepted")
        assert seen[0] == expected, (seen[0], expected)

    try:
        eventually(check, timeout=timeout, every=1)
    except AssertionError:
        pass
    return seen[0]


def _settle(load: Load, outcome: Outcome, ingress: Ingress5xx, fault_end: float) -> None:
    """Every accepted registration published once and counted once; record the counts."""
    per, repeats, _ = _published(load)
    counted = _counted(load)
    recovered = time.monotonic() - fault_end
    accepted = load.accepted()
    lost = sum(1 for i in accepted if per[i] == 0)
    outcome.counts.update(
        accepted=len(accepted), published=len(accepted) - lost, applied=counted, lost=lost,
        duplicated=sum(max(0, per[i] - 1) for i in accepted) + max(0, counted - len(accepted)),
        http_5xx=len(ingress.lines()), seconds_to_recover=round(recovered, 1),
        requests=len(load.answers), records_repeated_on_topic=repeats)
    outcome.check(lost == 0, f"{lost} accepted registrations never published")
    outcome.check(counted == len(accepted), f"metrics counted {counted} of {len(accepted)}")
    outcome.check(outcome.counts["duplicated"] == 0, "a registration published or counted twice")
    outcome.check(not ingress.lines(), f"5xx at the ingress: {ingress.lines()[:3]}")
    outcome.check(not load.five_xx(), f"5xx or no answer: {load.five_xx()[:3]}")
    outcome.check(not load.refused(), f"requests refused: {load.refused()[:3]}")


def _now_wib() -> str:
    return (datetime.now(UTC) + timedelta(hours=7)).replace(tzinfo=None).isoformat(
        timespec="seconds")


@pytest.mark.timeout(TIMEOUT)
def test_journey_through_the_ingress_with_keycloak_tokens(prod_stack: Any,
                                                          outcome: Outcome) -> None:
    """An owner registers, an operator verifies and runs training and a buying day, an
    official buys from the business, and the public figures show it: every call through
    nginx with Keycloak's RS256 tokens, every event across the 3-node cluster."""
    outcome.injected = "none"
    ingress = Ingress5xx(prod_stack.nginx.workdir / "ingress.log")
    owner = bearer(prod_stack, "owner1@bbi.test")
    op = bearer(prod_stack, "operator1@bbi.test")
    official = bearer(prod_stack, "official1@bbi.test")
    province, regency = JOURNEY
    with client(prod_stack, 20) as http:
        r = http.post("/v1/umkm", json=payload(500, province_code=province,
                                               regency_code=regency), headers=owner)
        assert r.status_code == 201, r.text
        uid = r.json()["id"]
        r = http.post(f"/v1/umkm/{uid}/verification", json={}, headers=op)
        assert r.status_code == 200, r.text
        r = http.post("/v1/courses", headers=op, json={
            "title": "Go Digital", "level": "dasar",
            "modules": [{"key": "foto-produk", "title": "Foto produk"}]})
        assert r.status_code == 201, r.text
        assert http.get(f"/v1/courses/{r.json()['id']}", headers=op).status_code == 200
        now = datetime.now(UTC) + timedelta(hours=7)
        r = http.post("/v1/campaigns", headers=op, json={
            "code": "prodlike-journey", "name": "Belanja Serentak", "band_min_idr": 100_000,
            "band_max_idr": 200_000,
            "starts_at": (now - timedelta(hours=1)).replace(tzinfo=None).isoformat(
                timespec="seconds"),
            "ends_at": (now + timedelta(hours=2)).replace(tzinfo=None).isoformat(
                timespec="seconds")})
        assert r.status_code == 201, r.text
        assert http.post("/v1/campaigns/prodlike-journey/open", headers=op).is_success
        r = http.post("/v1/campaigns/prodlike-journey/join", headers=official)
        assert r.status_code in (200, 201), r.text

        def buy() -> None:  # 409 umkm_not_known_yet until the registration event arrives
            r = http.post("/v1/campaigns/prodlike-journey/purchases", headers=official, json={
                "umkm_id": uid, "platform": "shopee", "order_ref": "INV-PL-1",
                "amount_idr": 150_000, "purchased_at": _now_wib()})
            assert r.status_code == 201, r.text
        eventually(buy, timeout=120, every=1)

        def figures() -> dict[str, Any]:
            p = province_counts(prod_stack, province)
            assert (p["registrations"], p["verified"]) == (1, 1), p
            national = http.get("/v1/summary").json()["national"]
            assert national["campaign_purchases"] == 1, national
            return p
        eventually(figures, timeout=120, every=1)
        assert http.get("/v1/reference/provinces").status_code == 200
        # Only the Ingress's paths are reachable: the processes' own endpoints are not.
        assert [http.get(p).status_code for p in ("/metrics", "/readyz", "/docs")] == [404] * 3
    outcome.counts.update(accepted=1, published=1, applied=1, lost=0, duplicated=0,
                          http_5xx=len(ingress.lines()))
    outcome.check(not ingress.lines(), f"5xx at the ingress: {ingress.lines()[:3]}")
    outcome.verify()


@pytest.mark.timeout(TIMEOUT)
def test_partition_leader_of_bbi_umkm_sigkilled_5_times(prod_stack: Any, whole_cluster: Any,
                                                        outcome: Outcome) -> None:
    """Kafka's ReplicationTest pattern: kill the leader, write, bring it back, repeat. After
    each kill the relay must get everything accepted so far onto the topic with one node down
    (two replicas in sync, acks=all) before the node comes back."""
    outcome.injected = (f"SIGKILL of the leader of {c.TOPIC_UMKM} partition 0, {KILLS} times; "
                        "after each kill a step of 4 public registrations (each from its own "
                        "address) and a partner batch of 5; the node restarted and the ISR "
                        "whole again before the next kill")
    cluster = prod_stack.cluster
    load = Load(prod_stack, 1000, *LEADER_LOSS)
    ingress = Ingress5xx(prod_stack.nginx.workdir / "ingress.log")
    failures_before = load.relay("bbi_outbox_publish_failures_total")
    producer_log = LogSince(prod_stack.workdir / "registration_worker.log")
    load.step()
    kills = []
    for _ in range(KILLS):
        victim = _leader_of_partition_0(prod_stack)
        cluster.kill_node(victim)
        killed_at = time.monotonic()
        load.step()
        _, _, all_there = _published(load, timeout=240)
        published_s = time.monotonic() - killed_at
        outcome.check(all_there, f"not all published with node {victim} down")
        cluster.start_node(victim)
        eventually(lambda: _full_isr(prod_stack), timeout=240, every=1)
        kills.append({"node": victim, "s_kill_to_all_published": round(published_s, 1),
                      "s_kill_to_isr_whole": round(time.monotonic() - killed_at, 1)})
    _settle(load, outcome, ingress, time.monotonic())
    # The leader losses' recovery is the relay's: from a SIGKILL to all accepted on the topic.
    outcome.counts["seconds_to_recover"] = max(k["s_kill_to_all_published"] for k in kills)
    outcome.details["kills"] = kills
    # Errors the producer retried itself (e.g. NOT_LEADER after the kill), and sends that
    # failed up to the relay, which retries them: both recovered without any restart.
    outcome.counts["producer_errors_retried"] = len(producer_log.lines(
        "Got error produce response"))
    outcome.counts["relay_publish_failures"] = int(
        load.relay("bbi_outbox_publish_failures_total") - failures_before)
    outcome.counts["parked"] = int(load.relay("bbi_outbox_parked_events_total"))
    outcome.check(outcome.counts["parked"] == 0, "outbox rows parked")
    outcome.verify()


@pytest.mark.timeout(TIMEOUT)
def test_one_broker_down_60s(prod_stack: Any, whole_cluster: Any, outcome: Outcome) -> None:
    """With one of three nodes down for 60 s the cluster keeps serving (2 in sync = min ISR):
    before the node returns, every request accepted during the outage is on the topic and
    counted."""
    outcome.injected = (f"one Kafka node (the leader of {c.TOPIC_UMKM} partition 0) SIGKILLed "
                        f"for {BROKER_DOWN_S:.0f} s under steps of 2 registrations and a "
                        "partner batch of 3 (about one step a second), then restarted")
    cluster = prod_stack.cluster
    load = Load(prod_stack, 2000, *BROKER_DOWN)
    ingress = Ingress5xx(prod_stack.nginx.workdir / "ingress.log")
    producer_log = LogSince(prod_stack.workdir / "registration_worker.log")
    failures_before = load.relay("bbi_outbox_publish_failures_total")
    victim = _leader_of_partition_0(prod_stack)
    cluster.kill_node(victim)
    down_at = time.monotonic()
    steps = 0
    while time.monotonic() - down_at < BROKER_DOWN_S:  # the outage's length, not a verdict
        load.step(registrations=2, partner_batch=3)
        steps += 1
        time.sleep(1)
    accepted_while_down = len(load.accepted())
    _, _, all_there = _published(load, timeout=240)
    counted_while_down = _counted(load, timeout=240)
    down_s = time.monotonic() - down_at
    outcome.check(all_there, "requests accepted during the outage not published while down")
    outcome.check(counted_while_down == accepted_while_down,
                  f"counted {counted_while_down} of {accepted_while_down} while down")
    cluster.start_node(victim)
    up_at = time.monotonic()
    eventually(lambda: _full_isr(prod_stack), timeout=240, every=1)
    isr_s = time.monotonic() - up_at
    load.step(registrations=2, partner_batch=3)  # and after it, on the whole cluster again
    _settle(load, outcome, ingress, up_at)
    outcome.counts.update(
        accepted_while_down=accepted_while_down,
        published_and_counted_while_down=counted_while_down,
        producer_errors_retried=len(producer_log.lines("Got error produce response")),
        relay_publish_failures=int(load.relay("bbi_outbox_publish_failures_total")
                                   - failures_before),
        parked=int(load.relay("bbi_outbox_parked_events_total")))
    outcome.check(outcome.counts["parked"] == 0, "outbox rows parked")
    outcome.details.update(node=victim, steps=steps, seconds_down=round(down_s, 1),
                           seconds_restart_to_isr_whole=round(isr_s, 1))
    outcome.verify()


@pytest.mark.timeout(TIMEOUT)
def test_identity_provider_down_30s(prod_stack: Any, outcome: Outcome) -> None:
    """Cached keys keep verifying; a token signed by a key the services never saw gets 503
    with Retry-After while the provider is unreachable, and works once it is back, with no
    service restarted."""
    kc = prod_stack.keycloak
    floor = float(prod_stack.env["BBI_JWKS_MIN_REFRESH_SECONDS"])
    outcome.injected = (f"Keycloak frozen (SIGSTOP) for {IDP_DOWN_S:.0f} s after a new signing "
                        "key was added; an operator's list through nginx with a token of the "
                        "cached key and one of the new key, every 2 s")
    ingress = Ingress5xx(prod_stack.nginx.workdir / "ingress.log")
    old = bearer(prod_stack, "operator1@bbi.test")
    # Every registration web process fetches and caches the current keys.
    warm = answer_from_each(prod_stack, "registration", "/v1/umkm?limit=1", old)
    warmed_at = time.monotonic()
    assert set(warm.values()) == {200}, warm
    new_kid = add_rsa_key(kc, f"rotated-{int(time.time())}")
    new = bearer(prod_stack, "operator1@bbi.test")
    assert jwt.get_unverified_header(new["Authorization"].split()[1])["kid"] == new_kid
    answers: list[dict[str, Any]] = []
    os.killpg(kc.pid, signal.SIGSTOP)
    stopped_at = time.monotonic()
    try:
        # The outage's length; and at least 3 new-key answers past the refetch floor (a
        # process that fetched under `floor` seconds ago answers 401 unknown key instead).
        while (time.monotonic() - stopped_at < IDP_DOWN_S
               or sum(a["past_floor"] for a in answers) < 3):
            with client(prod_stack, 30) as http:
                cached = http.get("/v1/umkm?limit=1", headers=old)
                sent = time.monotonic()
                unknown = http.get("/v1/umkm?limit=1", headers=new)
            answers.append({"cached": cached.status_code, "new": unknown.status_code,
                            "retry_after": unknown.headers.get("Retry-After"),
                            "code": _code(unknown),
                            "past_floor": sent - warmed_at >= floor})
            time.sleep(2)
    finally:
        os.killpg(kc.pid, signal.SIGCONT)
    up_at = time.monotonic()
    # Recovered: every process verifies the new key (each refetches on its own).
    per_worker = eventually(lambda: _all_200(answer_from_each(
        prod_stack, "registration", "/v1/umkm?limit=1", new)), timeout=120, every=1)
    recovered = time.monotonic() - up_at
    with client(prod_stack, 31) as http:
        assert http.get("/v1/umkm?limit=1", headers=new).status_code == 200
    judged = [a for a in answers if a["past_floor"]]
    early = [a for a in answers if not a["past_floor"]]
    outcome.counts.update(
        accepted=sum(1 for a in answers if a["cached"] == 200), lost=0, duplicated=0,
        http_5xx=sum(1 for a in answers if a["cached"] >= 500),
        new_kid_503_with_retry_after=sum(
            1 for a in answers if a["new"] == 503 and a["retry_after"]),
        new_kid_requests=len(answers), seconds_to_recover=round(recovered, 1))
    outcome.details.update(during_outage=answers, workers_after=per_worker,
                           ingress_5xx=len(ingress.lines()))
    outcome.check(all(a["cached"] == 200 for a in answers),
                  f"cached-key token refused during the outage: {answers}")
    outcome.check(all(a["new"] == 503 and a["retry_after"] and
                      a["code"] == "identity_provider_unavailable" for a in judged),
                  f"new-kid token not 503 with Retry-After: {judged}")
    outcome.check(all(a["new"] == 503 or (a["new"], a["code"]) == (401, "token_unknown_key")
                      for a in early), f"new-kid token inside the refetch floor: {early}")
    outcome.check(all(" 503 " in ln for ln in ingress.lines()),
                  f"5xx other than the 503s: {ingress.lines()[:3]}")
    outcome.verify()


def _code(r: Any) -> str:
    """The problem code of an answer ('' when it is not problem details, e.g. nginx's own)."""
    return str(r.json().get("code", "")) if "json" in r.headers.get("content-type", "") else ""


def _all_200(statuses: dict[int, int]) -> dict[int, int]:
    assert set(statuses.values()) == {200}, statuses
    return statuses


@pytest.mark.timeout(TIMEOUT)
def test_rate_limit_counts_each_real_client_behind_the_ingress(prod_stack: Any,
                                                               outcome: Outcome) -> None:
    """One client's quota used up through nginx: a forged X-Forwarded-For from the same
    client is refused too, other clients behind the same ingress are not."""
    outcome.injected = ("one client (127.0.0.2) uses up its registration quota through nginx; "
                        "then the same client with a forged X-Forwarded-For, and 6 others")
    owner = bearer(prod_stack, "owner1@bbi.test")
    with client(prod_stack, 2) as me:
        for attempt in range(1, 4):  # noqa: B007 - reported after the loop
            statuses: list[int] = []
            while not statuses or statuses[-1] != 429:
                statuses.append(me.post("/v1/umkm", json={}, headers=owner).status_code)
                assert len(statuses) <= 1000, "no 429 after 1000 requests"
            forged = me.post("/v1/umkm", json={}, headers=owner | {
                "X-Forwarded-For": "198.51.100.7"})
            confirm = me.post("/v1/umkm", json={}, headers=owner)
            # Fixed windows: the forged request lies between two refusals of one window,
            # so only a trusted forged address could get past. Else the window ended: again.
            if confirm.status_code == 429:
                break
        others = []
        for addr in range(3, 9):
            with client(prod_stack, addr) as other:
                others.append(other.post("/v1/umkm", json={}, headers=owner).status_code)
    outcome.counts.update(requests_until_429=len(statuses), http_5xx=sum(
        1 for s in [*statuses, forged.status_code, *others] if s >= 500))
    outcome.details.update(forged_status=forged.status_code, confirm_status=confirm.status_code,
                           other_clients=others, attempts=attempt,
                           retry_after=forged.headers.get("Retry-After"))
    outcome.check(confirm.status_code == 429, "the quota window never held three requests")
    outcome.check(len(statuses) > 1 and all(s == 422 for s in statuses[:-1]),
                  f"before the limit: {Counter(statuses[:-1])}")
    outcome.check(forged.status_code == 429, f"forged X-Forwarded-For trusted: {forged}")
    outcome.check(all(s == 422 for s in others), f"other clients limited: {others}")
    outcome.verify()
