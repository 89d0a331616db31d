"""One of every activity the dashboards chart, through the services' public APIs, so the live
Prometheus check has data of its own and needs no other test to have run before it.

Registrations (one withdrawn), verification, e-catalogue onboarding and curation, a webinar
with a waitlist, a cancellation, a promotion, attendance and an e-learning completion, a
cancelled session, a buying day with a purchase, and a few 4xx answers."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from devtools.dev_tokens import issue_token
from services.common.config import Settings
from services.common.messaging import contracts
from tests.e2e.stack import Stack, eventually
from tests.faults.helpers import scrape, total
from tests.unit.registration_helpers import payload

WIB = timedelta(hours=7)
NIP = "198507172010011002"
CAMPAIGN = "belanja-dasbor"


def _now_wib() -> datetime:
    return (datetime.now(UTC) + WIB).replace(tzinfo=None)


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="seconds")


def _ok(r: httpx.Response, *status: int) -> dict[str, Any]:
    assert r.status_code in (status or (200,)), r.text
    return r.json()  # type: ignore[no-any-return]


def _bearer(stack: Stack, role: str, sub: str, **claims: Any) -> dict[str, str]:
    s = Settings.from_env("registration", database_url=stack.env["REGISTRATION_DATABASE_URL"])
    return {"Authorization": "Bearer " + issue_token(s, sub, role, **claims)}


def produce(stack: Stack) -> None:
    """Do everything once, then wait until the metrics service has counted all of it."""
    reg, trn, camp = (lambda p: stack.url("registration", p)), (
        lambda p: stack.url("training", p)), (lambda p: stack.url("campaign", p))
    op = _bearer(stack, "operator", "ops-dasbor")
    # Each owner signs in (role umkm; the subject is the person's account) and registers.
    people = {n: _bearer(stack, "umkm", f"kc-dasbor-{n}") for n in ("ani", "budi", "citra")}
    ani = _ok(httpx.post(reg("/v1/umkm"), timeout=10, headers=people["ani"], json=payload(
        401, province_code="31", regency_code="3171", qris=True)), 201)
    budi = _ok(httpx.post(reg("/v1/umkm"), timeout=10, headers=people["budi"], json=payload(
        402, province_code="65", regency_code="6501", capital_idr=2_000_000_000)), 201)
    citra = _ok(httpx.post(reg("/v1/umkm"), timeout=10, headers=people["citra"],
                           json=payload(403)), 201)
    owner = {w["id"]: people[n] for n, w in (("ani", ani), ("budi", budi), ("citra", citra))}
    _ok(httpx.post(reg(f"/v1/umkm/{ani['id']}/verification"), json={}, headers=op))
    _ok(httpx.post(reg(f"/v1/umkm/{ani['id']}/platforms"), headers=op, json={
        "platform": "lkpp_ekatalog", "store_url": "https://katalog.example/d"}))
    _ok(httpx.post(reg(f"/v1/umkm/{ani['id']}/curation"), headers=op,
                   json={"decision": "approved"}))
    _ok(httpx.delete(reg(f"/v1/umkm/{citra['id']}"), headers=owner[citra["id"]]))
    for i in range(3):  # 4xx answers for the status-class panels
        assert httpx.get(reg(f"/v1/umkm/{i}")).status_code // 100 == 4

    # A one-seat webinar an hour away (enrolment stays open however slow the events are).
    course = _ok(httpx.post(trn("/v1/courses"), headers=op, json={
        "title": "Dasbor", "level": "dasar", "modules": [{"key": "m1", "title": "Modul 1"}]}),
        201)["id"]
    later = _iso(_now_wib() + timedelta(hours=1))
    sessions = [_ok(httpx.post(trn("/v1/sessions"), headers=op, json={
        "course_id": course, "starts_at": later, "duration_minutes": 60, "capacity": 1,
        "join_link": "https://zoom.example/j/d"}), 201)["id"] for _ in range(2)]
    _ok(httpx.post(trn(f"/v1/sessions/{sessions[1]}/cancel"), headers=op))
    for who, status in ((ani, 201), (budi, 202)):  # 409 until the registration event arrives
        eventually(lambda w=who, s=status: _ok(httpx.post(
            trn(f"/v1/sessions/{sessions[0]}/enrolments"), headers=owner[w["id"]],
            json={"umkm_id": w["id"]}), s))
    _ok(httpx.delete(trn(f"/v1/sessions/{sessions[0]}/enrolments/{ani['id']}"),
                     headers=owner[ani["id"]]))
    _ok(httpx.post(trn(f"/v1/me/courses/{course}/modules/m1/done"), headers=owner[ani["id"]],
                   json={"umkm_id": ani["id"]}))
    for _ in range(5):  # the test starts the webinar; a new time only if this call was slow
        r = httpx.patch(trn(f"/v1/sessions/{sessions[0]}"), headers=op,
                        json={"starts_at": _iso(_now_wib() + timedelta(seconds=5))})
        if r.status_code != 422 or r.json().get("code") != "starts_in_past":
            break
    _ok(r)
    eventually(lambda: _ok(httpx.post(  # 409 session_not_started for a few seconds
        trn(f"/v1/sessions/{sessions[0]}/attendance"), headers=op, json=[budi["id"]])))

    _ok(httpx.post(camp("/v1/campaigns"), headers=op, json={
        "code": CAMPAIGN, "name": "Belanja Serentak", "band_min_idr": 1, "band_max_idr": 10**9,
        "starts_at": _iso(_now_wib() - timedelta(hours=1)),
        "ends_at": _iso(_now_wib() + timedelta(hours=2))}), 201)
    _ok(httpx.post(camp(f"/v1/campaigns/{CAMPAIGN}/open"), headers=op))
    official = _bearer(stack, "official", NIP, agency="KemenKopUKM", region="31")
    _ok(httpx.post(camp(f"/v1/campaigns/{CAMPAIGN}/join"), headers=official), 200, 201)
    eventually(lambda: _ok(httpx.post(camp(f"/v1/campaigns/{CAMPAIGN}/purchases"),
                                      headers=official, json={
        "umkm_id": ani["id"], "platform": "shopee", "order_ref": "D-1",  # ani declared it
        "amount_idr": 150_000, "purchased_at": _iso(_now_wib())}), 201))
    eventually(lambda: _counted(stack))
    # The metrics worker stores its consumer lag every METRICS_LAG_INTERVAL_SECONDS (15 s):
    # its panel has data once it has (every partition, nothing left waiting).
    eventually(lambda: _lag_stored(stack))


EXPECTED = {  # what produce() must have made the metrics service count, exactly
    ("bbi_umkm_registrations_total", ()): 3, ("bbi_umkm_withdrawals_total", ()): 1,
    ("bbi_umkm_verified", ()): 1, ("bbi_umkm_curated", ()): 1,
    ("bbi_umkm_platform_onboarded", (("platform", "lkpp_ekatalog"),)): 1,
    ("bbi_training_enrolments_total", ()): 2, ("bbi_training_waitlisted_total", ()): 1,
    ("bbi_training_cancellations_total", (("reason", "umkm_cancelled"),)): 1,
    ("bbi_training_attendances_total", ()): 1, ("bbi_training_completions_total", ()): 2,
    ("bbi_training_sessions_scheduled_total", ()): 2,
    ("bbi_training_sessions_cancelled_total", ()): 1,
    ("bbi_campaign_participants", ()): 1, ("bbi_campaign_purchases_total", ()): 1,
}


def _counted(stack: Stack) -> None:
    m = scrape(stack.url("metrics", "/metrics"))
    got = {k: total(m, k[0], **dict(k[1])) for k in EXPECTED}
    assert got == EXPECTED, got


def _lag_stored(stack: Stack) -> None:
    m = scrape(stack.url("metrics", "/metrics"))
    lag = {lb: v for (n, lb), v in m.items() if n == "bbi_metrics_consumer_lag_events"}
    partitions = 3 * len(contracts.DOMAIN_TOPICS)  # tests/e2e/stack.py makes 3 per topic
    assert len(lag) == partitions and not any(lag.values()), lag
