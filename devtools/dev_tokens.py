"""Development tokens for unit tests and `bbi token issue`: HS256 with BBI_JWT_SECRET, shaped
like the identity provider's (roles in `realm_access.roles`). Refuses to sign unless the
settings are BBI_AUTH_MODE=dev; production services verify identity-provider tokens only."""
from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import jwt

from services.common.config import Settings
from services.common.http.auth import DEV_ISSUER, ROLES, check_settings

DEFAULT_TTL_SECONDS = 3600


class NotDevMode(RuntimeError):
    """Asked to sign a token under a configuration that is not BBI_AUTH_MODE=dev."""


def issue_token(settings: Settings, subject: str, role: str | Iterable[str],
                ttl_seconds: int | None = None, **claims: Any) -> str:
    """A signed token for `subject` holding `role` (one role, or several)."""
    if settings.auth_mode != "dev":
        raise NotDevMode("development tokens exist only with BBI_AUTH_MODE=dev; sign in through "
                         "the identity provider instead (README: Sign in)")
    check_settings(settings)
    roles = [role] if isinstance(role, str) else list(role)
    if unknown := [r for r in roles if r not in ROLES]:
        raise ValueError(f"unknown role {', '.join(unknown)}")
    now = int(time.time())
    payload = {"sub": subject, "iss": settings.jwt_issuer or DEV_ISSUER,
               "aud": settings.jwt_audience, "iat": now,
               "exp": now + (ttl_seconds or DEFAULT_TTL_SECONDS), "typ": "Bearer",
               "realm_access": {"roles": roles}, **claims}
    return jwt.encode(payload, settings.jwt_secret, algorithm="HS256")
