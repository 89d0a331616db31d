"""Bearer JWT auth. The algorithm is pinned by configuration, never read from the token."""
from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any

import jwt
from flask import current_app, g, request

from services.common.config import Settings
from services.common.errors import ApiError

ROLES = ("umkm", "official", "operator", "admin")


@dataclass(frozen=True)
class Principal:
    subject: str
    role: str
    claims: dict[str, Any]


def issue_token(settings: Settings, subject: str, role: str, ttl_seconds: int | None = None,
                **claims: Any) -> str:
    """Mint a token (local HS256 secret, or the configured RS256 private key)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role}")
    now = int(time.time())
    payload = {"sub": subject, "role": role, "iss": settings.jwt_issuer,
               "aud": settings.jwt_audience, "iat": now,
               "exp": now + (ttl_seconds or settings.jwt_ttl_seconds), **claims}
    key = settings.jwt_private_key if settings.jwt_algorithm == "RS256" else settings.jwt_secret
    return jwt.encode(payload, key, algorithm=settings.jwt_algorithm)


def verify_token(settings: Settings, token: str) -> Principal:
    """Check signature, expiry, issuer and audience; raise ApiError 401 otherwise."""
    key = settings.jwt_public_key if settings.jwt_algorithm == "RS256" else settings.jwt_secret
    try:
        claims = jwt.decode(token, key, algorithms=[settings.jwt_algorithm],
                            audience=settings.jwt_audience, issuer=settings.jwt_issuer,
                            options={"require": ["exp", "iat", "sub", "iss", "aud"]})
    except jwt.ExpiredSignatureError:
        raise unauthorized("token_expired", "Token kedaluwarsa.", "Token expired.") from None
    except jwt.PyJWTError:
        raise unauthorized("token_invalid", "Token tidak sah.", "Invalid token.") from None
    role = claims.get("role")
    if role not in ROLES:
        raise unauthorized("token_invalid", "Token tidak sah.", "Invalid token.")
    return Principal(subject=str(claims["sub"]), role=str(role), claims=claims)


def unauthorized(code: str, message_id: str, message_en: str) -> ApiError:
    return ApiError(401, code, message_id, message_en,
                    headers={"WWW-Authenticate": 'Bearer realm="bbi"'})


def forbidden() -> ApiError:
    return ApiError(403, "forbidden", "Anda tidak berhak mengakses sumber ini.",
                    "You are not allowed to access this resource.")


def current_principal() -> Principal | None:
    """The caller, if it sent a valid bearer token (cached per request)."""
    if "principal" in g:
        return g.principal  # type: ignore[no-any-return]
    header = request.headers.get("Authorization", "")
    principal = None
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise unauthorized("token_missing", "Token bearer diperlukan.",
                               "A bearer token is required.")
        principal = verify_token(current_app.config["BBI_SETTINGS"], token.strip())
    g.principal = principal
    return principal


def require_role(*roles: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Refuse the request with 401 (no/invalid token) or 403 (wrong role)."""

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            principal = current_principal()
            if principal is None:
                raise unauthorized("token_missing", "Token bearer diperlukan.",
                                   "A bearer token is required.")
            if principal.role not in roles:
                raise forbidden()
            return fn(*args, **kwargs)

        return wrapper

    return deco


def hash_secret(key: str, value: str) -> str:
    """Keyed hash (HMAC-SHA256) for API keys and personal identifiers kept for matching."""
    return hmac.new(key.encode(), value.encode(), hashlib.sha256).hexdigest()


def new_api_key() -> str:
    return "bbi_" + secrets.token_urlsafe(32)
