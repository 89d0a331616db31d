"""Valid `bbi.umkm` events for tests of the services that consume them."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime

from services.common.messaging import contracts
from services.common.messaging.events import Event, make_event


def registered(uid: str | None = None, province: str = "32", *, owner: str | None = None,
               trade_name: str | None = None, nib: str | None = None,
               declared: tuple[str, ...] = ("tokopedia",), channel: str = "public") -> Event:
    """A registration; the owner and catalogue fields only when given (as older events)."""
    data = {
        "umkm_id": uid or str(uuid.uuid4()), "province_code": province, "regency_code": None,
        "scale": "mikro", "kbli_section": "C", "kbli_code": "10792",
        "platforms_declared": list(declared), "qris": True, "channel": channel,
        "partner_code": None, "registered_at": datetime.now(UTC)}
    extra = {"owner_subject": owner, "trade_name": trade_name, "nib": nib}
    return make_event(contracts.UMKM_REGISTERED, "registration",
                      data | {k: v for k, v in extra.items() if v is not None})


def onboarded(uid: str, platform: str, first: bool = True) -> Event:
    return make_event(contracts.UMKM_ONBOARDED, "registration", {
        "umkm_id": uid, "platform": platform, "first_platform": first,
        "onboarded_at": datetime.now(UTC)})


def claimed(uid: str, owner: str) -> Event:
    return make_event(contracts.UMKM_CLAIMED, "registration", {
        "umkm_id": uid, "owner_subject": owner, "claimed_at": datetime.now(UTC)})


def withdrawn(uid: str) -> Event:
    return make_event(contracts.UMKM_WITHDRAWN, "registration",
                      {"umkm_id": uid, "withdrawn_at": datetime.now(UTC)})


def umkm_samples() -> list[Event]:
    """One event of each bbi.umkm type that carries fields the metrics stream leaves out."""
    uid = str(uuid.uuid4())
    return [registered(uid, "94", owner="kc-5b1e0c7a", trade_name="Keripik Sagu Mama Yuli",
                       nib="9120000000001", channel="partner"),
            claimed(uid, "kc-5b1e0c7a")]
