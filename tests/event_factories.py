"""Valid `bbi.umkm` events for tests of the services that consume them."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime

from services.common import contracts
from services.common.events import Event, make_event


def registered(uid: str | None = None, province: str = "32") -> Event:
    return make_event(contracts.UMKM_REGISTERED, "registration", {
        "umkm_id": uid or str(uuid.uuid4()), "province_code": province, "regency_code": None,
        "scale": "mikro", "kbli_section": "C", "kbli_code": "10792",
        "platforms_declared": ["tokopedia"], "qris": True, "channel": "public",
        "partner_code": None, "registered_at": datetime.now(UTC)})


def withdrawn(uid: str) -> Event:
    return make_event(contracts.UMKM_WITHDRAWN, "registration",
                      {"umkm_id": uid, "withdrawn_at": datetime.now(UTC)})
