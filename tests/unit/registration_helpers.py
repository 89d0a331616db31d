"""Shared helpers for the registration tests: a valid payload, an app, tokens, outbox reads."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask

from devtools.dev_tokens import issue_token
from services.common.config import Settings
from services.common.db.engine import make_engine
from services.registration.app import create_app
from services.registration.config import RegistrationSettings, load_settings
from services.registration.store import metadata


def nik(serial: int = 1) -> str:
    """A valid NIK: DKI Jakarta, Jakarta Selatan, born 17-08-1945, given serial."""
    return f"317101170845{serial:04d}"


def payload(n: int = 1, **over: Any) -> dict[str, Any]:
    """A valid public registration; `n` varies NIK, NIB and name."""
    body: dict[str, Any] = {
        "business_name": f"Warung Bu Sri {n}", "owner_name": "Sri Rahayu", "nik": nik(n),
        "nib": f"{9120000000000 + n}", "phone": "0812-3456-7890",
        "email": "sri@example.id", "province_code": "31", "regency_code": "3171",
        "address": "Jl. Melati No. 1", "postal_code": "12110", "kbli_code": "10792",
        "capital_idr": 50_000_000, "platforms": ["shopee"], "qris": True,
        "consent": {"given": True, "version": "2025-01"},
    }
    body.update(over)
    return body


def make_app(url: str, **settings: Any) -> tuple[Flask, RegistrationSettings]:
    """A registration app on a fresh database (schema via metadata: fast for unit tests)."""
    s = load_settings(database_url=url, **settings)
    engine = make_engine(url)
    metadata.create_all(engine)
    return create_app(s, engine), s


def with_knobs(app: Flask, **knobs: Any) -> None:
    """Change the running app's registration settings (e.g. rate_limit=2)."""
    app.config["BBI_SETTINGS"] = replace(app.config["BBI_SETTINGS"], **knobs)


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'reg.db'}"


def bearer(settings: Settings, role: str, sub: str = "op-1") -> dict[str, str]:
    return {"Authorization": "Bearer " + issue_token(settings, sub, role)}


CONSENT = "2025-01"  # the purpose version in force by default (REGISTRATION_CONSENT_VERSION)
OWNER = "kc-owner-1"  # a person's account subject at the identity provider (pseudonymous)


def owner(settings: Settings, sub: str = OWNER) -> dict[str, str]:
    """A signed-in owner (role umkm): registers businesses and follows their own."""
    return bearer(settings, "umkm", sub)


def outbox_events(app: Flask) -> list[dict[str, Any]]:
    """Every staged event (CloudEvents dicts) in id order."""
    t = metadata.tables["outbox"]
    with app.extensions["bbi_engine"].connect() as conn:
        return [json.loads(p) for p in
                conn.execute(sa.select(t.c.payload).order_by(t.c.id)).scalars()]


# The trade name ("Warung Bu Sri n") is not here: events carry it, as a public catalogue
# shows it, so officials can name who they bought from (DESIGN §3).
PII_VALUES = ("Sri Rahayu", "sri@example.id", "+6281234567890", "081234567890",
              nik(1), nik(2), nik(3), "Jl. Melati")


def assert_no_pii(texts: list[str]) -> None:
    """None of the personal values used by these tests appears in any text."""
    for text in texts:
        for value in PII_VALUES:
            assert value not in text, f"personal data {value!r} leaked: {text[:200]}"
