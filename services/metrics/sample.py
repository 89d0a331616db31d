"""A realistic, deterministic mixed event stream (tests, benchmarks) and its expected metrics,
computed naively from each business's final state, independently of the fold."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from services.common import contracts as c
from services.common.events import Event, make_event
from services.common.reference import PLATFORMS, SCALES, provinces
from services.metrics.domain import (
    COUNT_APPROVED,
    COUNT_ONBOARDED,
    COUNT_ONBOARDED_PROVINCE,
    COUNT_QRIS,
    PROGRESS_COUNTS,
)

NOW = datetime(2026, 5, 1, tzinfo=UTC)
EARLIEST = datetime(2019, 6, 1, tzinfo=UTC)  # event times of mixed_stream: EARLIEST..NOW
KBLI = ("10110", "47111", "56101", "13111", "01111", "62019", "96011")


def _uid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def ev(type_: str, data: dict[str, Any]) -> Event:
    """One valid CloudEvent of a contract type."""
    return make_event(type_, "test-sample", data)


def registered(
    uid: str, province: str = "31", scale: str = "mikro", kbli: str = "10110", qris: bool = True,
    at: datetime = NOW,
) -> Event:
    from services.common.reference import kbli_section

    return ev(
        c.UMKM_REGISTERED,
        {
            "umkm_id": uid,
            "province_code": province,
            "regency_code": None,
            "scale": scale,
            "kbli_section": kbli_section(kbli),
            "kbli_code": kbli,
            "platforms_declared": [],
            "qris": qris,
            "channel": "public",
            "partner_code": None,
            "registered_at": at,
        },
    )


def mixed_stream(n_umkm: int = 40, seed: int = 7) -> list[Event]:
    """Registrations and their lifecycle, training seats and a campaign, in a valid order.

    Event times spread over 2019-2026 (a second generator, so the rest of the stream is what
    it was when every event carried NOW); a business's platform onboardings arrive in random
    time order, so a later event can carry an earlier first onboarding."""
    rng, clock = random.Random(seed), random.Random(seed * 7919 + 1)
    provs, plats = sorted(provinces())[:6], sorted(PLATFORMS)
    out: list[Event] = []
    ids = [_uid(rng) for _ in range(n_umkm)]
    for uid in ids:
        at = EARLIEST + timedelta(seconds=clock.randrange(int((NOW - EARLIEST).total_seconds())))

        def later(days: int = 90, at: datetime = at) -> datetime:
            return min(NOW, at + timedelta(seconds=clock.randrange(days * 86_400)))

        out.append(
            registered(
                uid, rng.choice(provs), rng.choice(SCALES), rng.choice(KBLI), rng.random() < 0.6,
                at=at,
            )
        )
        if rng.random() < 0.8:
            out.append(ev(c.UMKM_VERIFIED, {"umkm_id": uid, "verified_at": later(10)}))
        for i, p in enumerate(rng.sample(plats, rng.randint(0, 3))):
            out.append(
                ev(
                    c.UMKM_ONBOARDED,
                    {"umkm_id": uid, "platform": p, "first_platform": i == 0,
                     "onboarded_at": later(400)},
                )
            )
        prev, decided = None, later(400)
        for decision in rng.choice([[], ["approved"], ["rejected"], ["approved", "rejected"]]):
            decided = min(NOW, decided + timedelta(days=clock.randrange(1, 200)))
            out.append(
                ev(
                    c.UMKM_CURATED,
                    {
                        "umkm_id": uid,
                        "decision": decision,
                        "previous_decision": prev,
                        "curated_at": decided,
                    },
                )
            )
            prev = decision
        if rng.random() < 0.15:
            out.append(ev(c.UMKM_WITHDRAWN, {"umkm_id": uid, "withdrawn_at": NOW}))
    out += _training(rng, ids, provs) + _campaign(rng, ids, provs)
    return out


def _training(rng: random.Random, ids: list[str], provs: list[str]) -> list[Event]:
    sid, cid = _uid(rng), _uid(rng)
    out = [
        ev(
            c.TRAINING_SESSION_SCHEDULED,
            {
                "session_id": sid,
                "course_id": cid,
                "capacity": 5,
                "starts_at": NOW + timedelta(days=3),
            },
        )
    ]
    for n, uid in enumerate(ids[:12]):
        seat = {
            "session_id": sid,
            "umkm_id": uid,
            "course_id": cid,
            "province_code": rng.choice(provs),
        }
        if n < 5:
            out.append(ev(c.TRAINING_ENROLLED, seat))
            if n == 0:
                out.append(
                    ev(
                        c.TRAINING_CANCELLED,
                        {**seat, "previous_state": "enrolled", "reason": "umkm_cancelled"},
                    )
                )
            else:
                out.append(ev(c.TRAINING_ATTENDED, seat))
                out.append(
                    ev(
                        c.TRAINING_COMPLETED,
                        {
                            "key_id": sid,
                            "umkm_id": uid,
                            "course_id": cid,
                            "province_code": seat["province_code"],
                            "kind": "webinar",
                            "certificate_number": f"BBI-{n:05d}",
                        },
                    )
                )
        else:
            out.append(ev(c.TRAINING_WAITLISTED, {**seat, "position": n - 4}))
            if n == 5:
                out.append(ev(c.TRAINING_PROMOTED, seat))
            elif n == 6:
                out.append(
                    ev(
                        c.TRAINING_CANCELLED,
                        {**seat, "previous_state": "waitlisted", "reason": "umkm_cancelled"},
                    )
                )
    out.append(ev(c.TRAINING_SESSION_CANCELLED, {"session_id": _uid(rng), "course_id": cid}))
    return out


def _campaign(rng: random.Random, ids: list[str], provs: list[str]) -> list[Event]:
    out: list[Event] = []
    for code in ("bbi-2026-05", "hari-umkm"):
        cid = _uid(rng)
        base = {"campaign_id": cid, "code": code}
        out += [
            ev(
                c.CAMPAIGN_CREATED,
                {
                    **base,
                    "starts_at": NOW,
                    "ends_at": NOW + timedelta(days=1),
                    "band_min_idr": 10_000,
                    "band_max_idr": 5_000_000,
                },
            ),
            ev(c.CAMPAIGN_OPENED, base),
        ]
        officials = [f"{rng.getrandbits(128):032x}" for _ in range(rng.randint(2, 4))]
        for o in officials:
            out.append(ev(c.CAMPAIGN_JOINED, {**base, "official_id": o, "agency": "KemenKopUKM"}))
        for _ in range(rng.randint(3, 6)):
            out.append(
                ev(
                    c.CAMPAIGN_PURCHASE_RECORDED,
                    {
                        **base,
                        "purchase_id": _uid(rng),
                        "official_id": rng.choice(officials),
                        "agency": "KemenKopUKM",
                        "umkm_id": rng.choice(ids),
                        "province_code": rng.choice(provs),
                        "platform": "lkpp_ekatalog",
                        "amount_idr": rng.randint(10_000, 5_000_000),
                        "purchased_at": NOW,
                    },
                )
            )
        out.append(
            ev(
                c.CAMPAIGN_CLOSED,
                {
                    **base,
                    "participants": len(officials),
                    "purchases": 0,
                    "amount_idr": 0,
                    "distinct_umkm": 0,
                },
            )
        )
    return out


def expected(events: list[Event]) -> Counter[tuple[str, tuple[tuple[str, str], ...]]]:
    """Expected business samples {(name, sorted labels): value}, from final business states."""
    exp: Counter[tuple[str, tuple[tuple[str, str], ...]]] = Counter()

    def add(name: str, n: int = 1, **lb: str) -> None:
        exp[(name, tuple(sorted(lb.items())))] += n

    biz: dict[str, dict[str, Any]] = {}
    for e in events:
        d = e.data
        add("bbi_metrics_events_applied_total", type=e.type)
        if e.type == c.UMKM_REGISTERED:
            biz[d["umkm_id"]] = {
                **d,
                "verified": False,
                "platforms": {},  # platform -> time of its (first) onboarding
                "curation": None,
                "curated_at": None,
                "withdrawn": False,
            }
        elif e.type == c.UMKM_VERIFIED:
            biz[d["umkm_id"]]["verified"] = True
        elif e.type == c.UMKM_ONBOARDED:
            biz[d["umkm_id"]]["platforms"].setdefault(d["platform"], d["onboarded_at"])
            add("bbi_umkm_platform_onboardings_total", platform=d["platform"])
        elif e.type == c.UMKM_CURATED:
            b = biz[d["umkm_id"]]
            if b["curation"] != d["decision"]:  # the time of the decision now in force
                b["curation"], b["curated_at"] = d["decision"], d["curated_at"]
        elif e.type == c.UMKM_WITHDRAWN:
            biz[d["umkm_id"]]["withdrawn"] = True
        elif e.type in (c.TRAINING_ENROLLED, c.TRAINING_PROMOTED):
            add("bbi_training_enrolments_total", province=d["province_code"])
            add("bbi_training_seats_used", province=d["province_code"])
            if e.type == c.TRAINING_PROMOTED:
                add("bbi_training_waitlisted", -1, province=d["province_code"])
        elif e.type == c.TRAINING_WAITLISTED:
            add("bbi_training_waitlisted_total", province=d["province_code"])
            add("bbi_training_waitlisted", province=d["province_code"])
        elif e.type == c.TRAINING_CANCELLED:
            add("bbi_training_cancellations_total", province=d["province_code"], reason=d["reason"])
            held = "seats_used" if d["previous_state"] == "enrolled" else "waitlisted"
            add(f"bbi_training_{held}", -1, province=d["province_code"])
        elif e.type == c.TRAINING_ATTENDED:
            add("bbi_training_attendances_total", province=d["province_code"])
        elif e.type == c.TRAINING_COMPLETED:
            add("bbi_training_completions_total", province=d["province_code"], kind=d["kind"])
        elif e.type == c.TRAINING_SESSION_SCHEDULED:
            add("bbi_training_sessions_scheduled_total")
        elif e.type == c.TRAINING_SESSION_CANCELLED:
            add("bbi_training_sessions_cancelled_total")
        elif e.type == c.CAMPAIGN_JOINED:
            add("bbi_campaign_participants", campaign=d["code"])
        elif e.type == c.CAMPAIGN_PURCHASE_RECORDED:
            add("bbi_campaign_purchases_total", campaign=d["code"])
            add("bbi_campaign_purchase_amount_rupiah_total", d["amount_idr"], campaign=d["code"])
    for b in biz.values():
        p, s = b["province_code"], b["scale"]
        add("bbi_umkm_registrations_total", province=p, scale=s)
        if b["withdrawn"]:
            add("bbi_umkm_withdrawals_total", province=p, scale=s)
            continue
        add("bbi_umkm_registered", province=p, scale=s)
        add("bbi_umkm_verified", int(b["verified"]), province=p, scale=s)
        add("bbi_umkm_qris_adopted", int(b["qris"]), province=p, scale=s)
        add(
            "bbi_umkm_onboarded",
            int(bool(b["platforms"])),
            province=p,
            scale=s,
            kbli_section=b["kbli_section"],
        )
        for pl in b["platforms"]:
            add("bbi_umkm_platform_onboarded", platform=pl)
        if b["curation"]:
            add("bbi_umkm_curated", province=p, decision=b["curation"])
        # The progress counts, by the WIB month of each business's own event time.
        if b["qris"]:
            add(COUNT_QRIS, month=_wib_month(b["registered_at"]))
        if b["platforms"]:
            first = _wib_month(min(b["platforms"].values(), key=datetime.fromisoformat))
            add(COUNT_ONBOARDED, month=first)
            add(COUNT_ONBOARDED_PROVINCE, province=p, year=first[:4])
        if b["curation"] == "approved":
            add(COUNT_APPROVED, month=_wib_month(b["curated_at"]))
    return exp


def _wib_month(iso: str) -> str:
    # Written out here rather than taken from domain.month_of, so the fold is checked.
    return (datetime.fromisoformat(iso) + timedelta(hours=7)).strftime("%Y-%m")


def business_samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Non-zero samples of the fold's metrics from a /metrics body, keyed like `expected`."""
    from prometheus_client.parser import text_string_to_metric_families

    from services.metrics.domain import CATALOG

    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name in CATALOG and s.value != 0 and s.name not in _NOT_FOLDED:
                out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def nonzero(
    exp: Counter[tuple[str, tuple[tuple[str, str], ...]]],
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Expected exposed samples without zeros (a row that went back to 0 and no row look the
    same); the progress counts are stored, not exposed as series."""
    from services.metrics.domain import CATALOG

    return {k: float(v) for k, v in exp.items()
            if v and k[0] in CATALOG and k[0] not in _NOT_FOLDED}


def expected_counts(events: list[Event]) -> dict[str, dict[str, int]]:
    """The monthly progress counts {count: {month: n}} the stream should leave (non-zero)."""
    out: dict[str, dict[str, int]] = {name: {} for name in PROGRESS_COUNTS}
    for (name, labels), v in expected(events).items():
        if name in out and v:
            out[name][dict(labels)["month"]] = v
    return out


# Counted by the applier from dead letters, not folded from events.
_NOT_FOLDED = ("bbi_metrics_events_deadlettered_total",)
