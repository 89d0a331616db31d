"""Steady HTTP traffic against the gunicorn webs of a Stack: public registrations, webinar
enrolments and official purchases, each answer recorded, so a fault test can say which
requests were accepted and then check that every accepted one reached Kafka and the metrics.

Enrolments and purchases use businesses registered before the fault (a business the other
services have not heard of yet gets a documented 409 umkm_not_known_yet, not an acceptance)."""
from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from devtools.dev_tokens import issue_token
from services.common.config import Settings
from services.common.messaging import contracts as c
from tests.e2e.stack import Stack
from tests.faults.helpers import eventually, read_topic, scrape, total
from tests.unit.registration_helpers import payload

WIB = timedelta(hours=7)
NIP = "198507172010011002"
CAMPAIGN = "fault-belanja"
AMOUNT = 125_000
# A client waits this long at most; a fault must answer (201 or 503), never hang past it.
CLIENT_TIMEOUT_S = 15.0


def now_wib() -> str:
    return (datetime.now(UTC) + WIB).replace(tzinfo=None).isoformat(timespec="seconds")


@dataclass
class Call:
    kind: str  # register | enrol | purchase
    t: float  # seconds since the traffic started
    status: int  # 0: no answer (timeout / connection error)
    code: str = ""
    retry_after: str | None = None
    latency_s: float = 0.0
    ref: str = ""  # what an accepted call created: umkm id, "session/umkm", purchase id
    body: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class Traffic:
    stack: Stack
    pre_registered: int = 6
    sessions: int = 6
    calls: list[Call] = field(default_factory=list)
    _owners: list[dict[str, Any]] = field(default_factory=list)
    _session_ids: list[str] = field(default_factory=list)
    _started: float = 0.0
    setup_s: float = 0.0

    def _auth(self, role: str, sub: str, **claims: Any) -> dict[str, str]:
        s = Settings.from_env("registration",
                              database_url=self.stack.env["REGISTRATION_DATABASE_URL"])
        return {"Authorization": "Bearer " + issue_token(s, sub, role, **claims)}

    def setup(self) -> None:
        """A course with webinars, an open buying day with one official, and businesses that
        every service already knows (their registration events crossed Kafka)."""
        t0 = time.monotonic()
        op = self._auth("operator", "ops-faults")
        trn, camp = (lambda p: self.stack.url("training", p)), (
            lambda p: self.stack.url("campaign", p))
        r = httpx.post(trn("/v1/courses"), headers=op, timeout=30, json={
            "title": "Tahan Banting", "level": "dasar",
            "modules": [{"key": "m1", "title": "Modul 1"}]})
        assert r.status_code == 201, r.text
        course_id = r.json()["id"]
        starts = (datetime.now(UTC) + WIB + timedelta(days=1)).replace(tzinfo=None)
        for _ in range(self.sessions):
            r = httpx.post(trn("/v1/sessions"), headers=op, timeout=30, json={
                "course_id": course_id, "starts_at": starts.isoformat(timespec="seconds"),
                "duration_minutes": 60, "capacity": 10_000,
                "join_link": "https://zoom.example/j/f"})
            assert r.status_code == 201, r.text
            self._session_ids.append(r.json()["id"])
        r = httpx.post(camp("/v1/campaigns"), headers=op, timeout=30, json={
            "code": CAMPAIGN, "name": "Belanja Serentak (uji gangguan)", "band_min_idr": 0,
            "band_max_idr": 10**12,
            "starts_at": (datetime.now(UTC) + WIB - timedelta(hours=1)).replace(
                tzinfo=None).isoformat(timespec="seconds"),
            "ends_at": (datetime.now(UTC) + WIB + timedelta(hours=3)).replace(
                tzinfo=None).isoformat(timespec="seconds")})
        assert r.status_code == 201, r.text
        assert httpx.post(camp(f"/v1/campaigns/{CAMPAIGN}/open"), headers=op).is_success
        self.official = self._auth("official", NIP, agency="KemenKopUKM", region="31")
        r = httpx.post(camp(f"/v1/campaigns/{CAMPAIGN}/join"), headers=self.official)
        assert r.status_code in (200, 201), r.text
        self._started = time.monotonic()
        for n in range(1, self.pre_registered + 1):
            call = self._register(n)
            assert call.status == 201, call
            self._owners.append(call.body | {"owner": self._owner(n)})
        # Known everywhere once one enrolment and one purchase per business succeed.
        for i, owner in enumerate(self._owners):
            eventually(lambda o=owner: _expect(self._enrol(o, self._session_ids[0]), 201),
                       timeout=60)
            eventually(lambda o=owner, i=i: _expect(self._purchase(o, f"PRE-{i}"), 201),
                       timeout=60)
        self.calls = [x for x in self.calls if x.status == 201]  # drop the 409s of the wait
        self.setup_s = round(time.monotonic() - t0, 1)

    def _call(self, kind: str, method: str, url: str, ref_of: Any, **kw: Any) -> Call:
        t0 = time.monotonic()
        try:
            r = httpx.request(method, url, timeout=CLIENT_TIMEOUT_S, **kw)
        except httpx.HTTPError as exc:
            call = Call(kind, t0 - self._started, 0, type(exc).__name__,
                        latency_s=time.monotonic() - t0)
        else:
            body = r.json() if r.headers.get("content-type", "").endswith("json") else {}
            call = Call(kind, t0 - self._started, r.status_code, str(body.get("code", "")),
                        r.headers.get("Retry-After"), time.monotonic() - t0,
                        ref_of(body) if r.status_code == 201 else "", body)
        self.calls.append(call)
        return call

    def _owner(self, n: int) -> dict[str, str]:
        """Person n, signed in (role umkm): registers and enrols their own business."""
        return self._auth("umkm", f"kc-fault-{n}")

    def _register(self, n: int) -> Call:
        return self._call("register", "POST", self.stack.url("registration", "/v1/umkm"),
                          lambda b: b["id"], headers=self._owner(n),
                          json=payload(n, province_code="31", regency_code="3171"))

    def _enrol(self, owner: dict[str, Any], session_id: str) -> Call:
        return self._call("enrol", "POST",
                          self.stack.url("training", f"/v1/sessions/{session_id}/enrolments"),
                          lambda b: f"{b['session_id']}/{b['umkm_id']}",
                          headers=owner["owner"], json={"umkm_id": owner["id"]})

    def _purchase(self, owner: dict[str, Any], ref: str) -> Call:
        return self._call("purchase", "POST",
                          self.stack.url("campaign", f"/v1/campaigns/{CAMPAIGN}/purchases"),
                          lambda b: b["id"], headers=self.official,
                          json={"umkm_id": owner["id"], "platform": "shopee",  # declared
                                "order_ref": ref, "amount_idr": AMOUNT,
                                "purchased_at": now_wib()})

    def run(self, stop: threading.Event, pause: float = 0.05) -> None:
        """Register, enrol and buy in a loop until `stop` is set."""
        i = 0
        combos = [(o, s) for s in self._session_ids[1:] for o in self._owners]
        while not stop.is_set():
            self._register(1000 + i)
            if i < len(combos):
                self._enrol(*combos[i])
            self._purchase(self._owners[i % len(self._owners)], f"INV-{i}")
            i += 1
            time.sleep(pause)

    def accepted(self, kind: str) -> list[str]:
        return [x.ref for x in self.calls if x.kind == kind and x.status == 201]

    def statuses(self) -> dict[str, int]:
        return dict(Counter(f"{x.kind} {x.status} {x.code}".strip() for x in self.calls))

    def published(self, kafka: str) -> dict[str, Counter[str]]:
        """How many times each accepted thing appears as an event on its topic."""
        p = self.stack.prefix
        out: dict[str, Counter[str]] = {"register": Counter(), "enrol": Counter(),
                                        "purchase": Counter()}
        for topic in c.DOMAIN_TOPICS:
            seen_ids: set[str] = set()
            for rec in read_topic(kafka, p + topic):
                e = json.loads(rec.value)
                if e["id"] in seen_ids:
                    out.setdefault("redelivered_event_ids", Counter())[topic] += 1
                    continue  # the same event twice: consumers dedupe it by id
                seen_ids.add(e["id"])
                d = e["data"]
                if e["type"] == c.UMKM_REGISTERED:
                    out["register"][d["umkm_id"]] += 1
                elif e["type"] == c.TRAINING_ENROLLED:
                    out["enrol"][f"{d['session_id']}/{d['umkm_id']}"] += 1
                elif e["type"] == c.CAMPAIGN_PURCHASE_RECORDED:
                    out["purchase"][d["purchase_id"]] += 1
        return out

    def metrics_counts(self) -> dict[str, int]:
        m = scrape(self.stack.url("metrics", "/metrics"))
        return {"register": int(total(m, "bbi_umkm_registrations_total")),
                "enrol": int(total(m, "bbi_training_enrolments_total")),
                "purchase": int(total(m, "bbi_campaign_purchases_total", campaign=CAMPAIGN)),
                "amount_idr": int(total(m, "bbi_campaign_purchase_amount_rupiah_total",
                                        campaign=CAMPAIGN))}

    def expected_metrics(self) -> dict[str, int]:
        n = {k: len(self.accepted(k)) for k in ("register", "enrol", "purchase")}
        return n | {"amount_idr": n["purchase"] * AMOUNT}


def _expect(call: Call, status: int) -> Call:
    assert call.status == status, call
    return call
