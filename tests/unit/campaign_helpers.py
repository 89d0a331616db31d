"""Helpers shared by the campaign tests: app, tokens, registered businesses, payloads."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask
from sqlalchemy.engine import Engine

from devtools.dev_tokens import issue_token
from services.campaign import consumer
from services.campaign.app import create_app
from services.common.config import Settings
from services.common.http.web import get_engine
from tests.event_factories import registered, withdrawn  # noqa: F401 (re-exported)


def nip(i: int) -> str:
    """A valid 18-digit NIP (born 1980-01-01, TMT 2005-01, male, serial i)."""
    return f"19800101200501{1}{i:03d}"


def auth(settings: Settings, role: str = "official", sub: str | None = None,
         **claims: Any) -> dict[str, str]:
    if role == "official":
        claims.setdefault("agency", "KemenKopUKM")
        claims.setdefault("region", "31")
    token = issue_token(settings, sub or (nip(1) if role == "official" else "op-1"), role,
                        **claims)
    return {"Authorization": f"Bearer {token}"}




def add_business(engine: Engine, province: str = "32", **kw: Any) -> str:
    """Apply a registration event to the read model as the consumer would (by default it
    declared Tokopedia and Shopee; `kw` as tests.event_factories.registered takes)."""
    kw.setdefault("declared", ("tokopedia", "shopee"))
    ev = registered(province=province, **kw)
    with engine.begin() as conn:
        consumer.on_registered(conn, ev)
    return str(ev.data["umkm_id"])


def campaign_body(code: str = "belanja-serentak-2020", **kw: Any) -> dict[str, Any]:
    """A campaign running now (the window spans today, in WIB)."""
    now = datetime.now(UTC)
    return {"code": code, "name": "Belanja Serentak", "description": "Hari belanja pejabat",
            "starts_at": (now - timedelta(hours=2)).isoformat(),
            "ends_at": (now + timedelta(hours=10)).isoformat(),
            "band_min_idr": 100_000, "band_max_idr": 200_000} | kw


def purchase_body(umkm_id: str, ref: str, amount: int = 100_000, **kw: Any) -> dict[str, Any]:
    return {"umkm_id": umkm_id, "platform": "tokopedia", "order_ref": ref,
            "amount_idr": amount,
            "purchased_at": (datetime.now(UTC) - timedelta(minutes=5)).isoformat()} | kw


def build(settings: Settings, engine: Engine | None = None) -> tuple[Flask, Engine]:
    """The app on its own database, migrated to head."""
    from services.common.db.migrations import upgrade

    upgrade("campaign", settings.database_url)
    app = create_app(settings, engine)
    with app.app_context():
        return app, get_engine()
