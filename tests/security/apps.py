"""Every service's web app on a fresh, migrated database, with tokens to call it."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask

from devtools.dev_tokens import issue_token
from services.common.config import Settings
from services.common.db.migrations import upgrade

SERVICES = ("registration", "training", "campaign", "metrics")


def _factory(service: str) -> Callable[..., Flask]:
    if service == "registration":
        from services.registration.app import create_app
    elif service == "training":
        from services.training.app import create_app  # type: ignore[assignment]
    elif service == "campaign":
        from services.campaign.app import create_app  # type: ignore[assignment]
    else:
        from services.metrics.app import create_app  # type: ignore[assignment]
    return create_app


def build(service: str, db_url: str, **settings: Any) -> tuple[Flask, Settings]:
    """The service's app on `db_url`, migrated to head like production (Alembic)."""
    s = Settings.from_env(service, database_url=db_url, kafka_bootstrap_servers="127.0.0.1:1",
                          **settings)
    upgrade(service, db_url)
    return _factory(service)(s), s


def bearer(settings: Settings, role: str, sub: str = "op-1", **claims: Any) -> dict[str, str]:
    if role == "official":
        claims.setdefault("agency", "KemenKopUKM")
        claims.setdefault("region", "31")
    return {"Authorization": "Bearer " + issue_token(settings, sub, role, **claims)}
