"""Bearer tokens of the identity provider (OpenID Connect): every service is a resource
server that only verifies them; no service signs a user token.

Production (`BBI_AUTH_MODE=oidc`, the default): RS256/ES256 access tokens verified against
the JWKS discovered from `BBI_JWT_ISSUER` (services/common/http/jwks.py); issuer, audience,
expiry and not-before are checked with a bounded leeway, the algorithm is pinned by
configuration (never taken from the token), and roles come from Keycloak's
`realm_access.roles`. `BBI_AUTH_MODE=dev` verifies HS256 tokens made with `BBI_JWT_SECRET`
by devtools.dev_tokens, for unit tests only. A web app refuses to start on a configuration
that is neither (check_settings).
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any

import jwt
from flask import Flask, current_app, g, request

from services.common.config import Settings
from services.common.http.errors import ApiError
from services.common.http.jwks import IdentityProviderUnavailable, JwksCache, UnknownKey

ROLES = ("umkm", "official", "operator", "admin")
_PRECEDENCE = ("admin", "operator", "official", "umkm")  # Principal.role: the strongest held
ASYMMETRIC = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384")
MAX_LEEWAY_SECONDS = 300
DEV_ISSUER = "bbi-dev"  # BBI_AUTH_MODE=dev without BBI_JWT_ISSUER
REQUIRED_CLAIMS = ["exp", "iat", "sub", "iss", "aud"]


class AuthConfigError(RuntimeError):
    """The auth settings cannot work; the service must not start with them."""


NO_PROVINCE = frozenset({"--"})  # a scope that matches no province code

@dataclass(frozen=True)
class Principal:
    """The caller: the identity provider's subject (a person's account), the roles of ours
    that the token grants (a person may hold several) and the verified claims."""

    subject: str
    roles: frozenset[str]
    claims: dict[str, Any]

    def __post_init__(self) -> None:
        if isinstance(self.roles, str):  # Principal(sub, "operator", claims): one role
            object.__setattr__(self, "roles", frozenset({self.roles}))
        elif not isinstance(self.roles, frozenset):
            object.__setattr__(self, "roles", frozenset(self.roles))

    @property
    def role(self) -> str:
        """The strongest role held (admin > operator > official > umkm), "" if none."""
        return next((r for r in _PRECEDENCE if r in self.roles), "")

    def has(self, *roles: str) -> bool:
        return not self.roles.isdisjoint(roles)

    def _text(self, claim: str) -> str | None:
        value = self.claims.get(claim)
        return value.strip() if isinstance(value, str) and value.strip() else None

    @property
    def nip(self) -> str | None:
        """An official's NIP (user attribute `nip`, mapped into the token)."""
        return self._text("nip")

    @property
    def agency(self) -> str | None:
        return self._text("agency")

    @property
    def region(self) -> str | None:
        """An official's province code."""
        return self._text("region")

    @property
    def province_scope(self) -> frozenset[str] | None:
        """The provinces an operator is limited to; None means national (no claim at all).
        A claim that is present but unusable (empty, not a code) fails closed: it matches no
        province, never all of them."""
        if self.claims.get("province_scope") is None:
            return None
        raw = self.claims["province_scope"]
        codes = raw.split(",") if isinstance(raw, str) else raw if isinstance(raw, list) else []
        valid = frozenset(c.strip() for c in codes
                          if isinstance(c, str) and len(c.strip()) == 2 and c.strip().isdigit())
        return valid or NO_PROVINCE


def check_settings(settings: Settings) -> None:
    """Refuse a configuration that cannot verify tokens safely (raised at app start)."""
    if settings.auth_mode == "dev":
        if settings.jwt_algorithm != "HS256":
            raise AuthConfigError("BBI_AUTH_MODE=dev verifies HS256 tokens only")
        if len(settings.jwt_secret) < 32:
            raise AuthConfigError("BBI_AUTH_MODE=dev needs BBI_JWT_SECRET (32+ characters); "
                                  "there is no default secret")
    elif settings.auth_mode == "oidc":
        if not settings.jwt_issuer.startswith(("https://", "http://")):
            raise AuthConfigError(
                "BBI_JWT_ISSUER is not set: set it to the identity provider's issuer URL "
                "(e.g. https://sso.example.go.id/realms/bbi; `make run` sets the local "
                "Keycloak's), or BBI_AUTH_MODE=dev with BBI_JWT_SECRET for unit tests")
        if settings.jwt_algorithm not in ASYMMETRIC:
            raise AuthConfigError(f"BBI_JWT_ALGORITHM={settings.jwt_algorithm}: an identity "
                                  f"provider's tokens are one of {', '.join(ASYMMETRIC)}")
    else:
        raise AuthConfigError(f"BBI_AUTH_MODE={settings.auth_mode!r}: use oidc or dev")
    if not 0 <= settings.jwt_leeway_seconds <= MAX_LEEWAY_SECONDS:
        raise AuthConfigError(f"BBI_JWT_LEEWAY_SECONDS must be 0..{MAX_LEEWAY_SECONDS}")
    if not settings.jwt_audience:
        raise AuthConfigError("BBI_JWT_AUDIENCE must not be empty")


class TokenVerifier:
    """Verifies bearer tokens for one service process (holds the JWKS cache)."""

    def __init__(self, settings: Settings) -> None:
        check_settings(settings)
        self.settings = settings
        self.issuer = settings.jwt_issuer or DEV_ISSUER
        self.jwks = None if settings.auth_mode == "dev" else JwksCache(
            settings.jwt_issuer, settings.jwt_algorithm, jwks_url=settings.jwt_jwks_url,
            min_refresh=settings.jwks_min_refresh_seconds,
            max_age=settings.jwks_max_age_seconds, timeout=settings.jwks_timeout_seconds)

    def verify(self, token: str) -> Principal:
        s = self.settings
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise _bad("token_malformed", "Token rusak.", "Malformed token.") from None
        alg = str(header.get("alg", ""))
        if alg.lower() == "none":
            raise _bad("token_unsigned", "Token tanpa tanda tangan ditolak.",
                       "Unsigned tokens (alg none) are refused.")
        if alg != s.jwt_algorithm:
            raise _bad("token_algorithm_not_allowed", "Algoritme token tidak diizinkan.",
                       f"Token algorithm {alg[:20]!r} is not allowed.")
        key = s.jwt_secret if self.jwks is None else self._key(header)
        try:
            claims = jwt.decode(token, key, algorithms=[s.jwt_algorithm], audience=s.jwt_audience,
                                issuer=self.issuer, leeway=s.jwt_leeway_seconds,
                                options={"require": REQUIRED_CLAIMS})
        except jwt.PyJWTError as exc:
            raise _decode_error(exc) from None
        roles = claims.get("realm_access", {}).get("roles", []) \
            if isinstance(claims.get("realm_access"), dict) else []
        ours = frozenset(r for r in roles if isinstance(r, str) and r in ROLES) \
            if isinstance(roles, list) else frozenset()
        return Principal(subject=str(claims["sub"]), roles=ours, claims=claims)

    def _key(self, header: dict[str, Any]) -> Any:
        assert self.jwks is not None
        kid = header.get("kid")
        if not isinstance(kid, str) or not 0 < len(kid) <= 200:
            raise _bad("token_unknown_key", "Kunci token tidak dikenal.",
                       "The token names no known signing key.")
        try:
            return self.jwks.key_for(kid)
        except UnknownKey:
            raise _bad("token_unknown_key", "Kunci token tidak dikenal.",
                       "The token names no known signing key.") from None
        except IdentityProviderUnavailable as exc:
            raise ApiError(503, "identity_provider_unavailable",
                           "Penyedia identitas sedang tidak dapat dihubungi; coba lagi nanti.",
                           "The identity provider cannot be reached; try again later.",
                           headers={"Retry-After": str(exc.retry_after)}) from None


_DECODE_ERRORS: list[tuple[type[Exception], tuple[str, str, str]]] = [
    (jwt.ExpiredSignatureError, ("token_expired", "Token kedaluwarsa.", "Token expired.")),
    (jwt.ImmatureSignatureError, ("token_not_yet_valid", "Token belum berlaku.",
                                  "Token not valid yet.")),
    (jwt.InvalidIssuerError, ("token_wrong_issuer", "Penerbit token salah.",
                              "Token from another issuer.")),
    (jwt.InvalidAudienceError, ("token_wrong_audience", "Token bukan untuk layanan ini.",
                                "Token for another audience.")),
    (jwt.MissingRequiredClaimError, ("token_claims_missing", "Klaim token tidak lengkap.",
                                     "Token lacks a required claim.")),
    (jwt.InvalidSignatureError, ("token_bad_signature", "Tanda tangan token tidak sah.",
                                 "Invalid token signature.")),
    (jwt.InvalidAlgorithmError, ("token_algorithm_not_allowed",
                                 "Algoritme token tidak diizinkan.",
                                 "Token algorithm not allowed.")),
    (jwt.DecodeError, ("token_malformed", "Token rusak.", "Malformed token.")),
]


def _decode_error(exc: Exception) -> ApiError:
    for kind, (code, msg_id, msg_en) in _DECODE_ERRORS:
        if isinstance(exc, kind):
            return _bad(code, msg_id, msg_en)
    return _bad("token_invalid", "Token tidak sah.", "Invalid token.")


def _bad(code: str, message_id: str, message_en: str) -> ApiError:
    return unauthorized(code, message_id, message_en)


def init_app(app: Flask, settings: Settings) -> None:
    """Build the app's verifier; AuthConfigError stops the app from starting."""
    app.extensions["bbi_auth"] = TokenVerifier(settings)


def unauthorized(code: str, message_id: str, message_en: str) -> ApiError:
    return ApiError(401, code, message_id, message_en,
                    headers={"WWW-Authenticate": f'Bearer realm="bbi", error="invalid_token", '
                                                 f'error_description="{code}"'})


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
        verifier = current_app.extensions.get("bbi_auth")
        if verifier is None:  # an app built without create_service_app
            verifier = current_app.extensions["bbi_auth"] = TokenVerifier(
                current_app.config["BBI_SETTINGS"])
        principal = verifier.verify(token.strip())
    g.principal = principal
    return principal


def require_role(*roles: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Refuse the request with 401 (no/invalid token) or 403 (holds none of `roles`)."""

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            check_roles(roles)
            return fn(*args, **kwargs)

        # Checks that run before the view (services/common/http/input_guard.py) answer 401/403
        # first on a protected view, as the view itself would.
        wrapper.bbi_roles = roles  # type: ignore[attr-defined]
        return wrapper

    return deco


def check_roles(roles: tuple[str, ...]) -> None:
    """401 without a valid bearer token, 403 when it holds none of `roles`."""
    principal = current_principal()
    if principal is None:
        raise unauthorized("token_missing", "Token bearer diperlukan.",
                           "A bearer token is required.")
    if not principal.has(*roles):
        raise forbidden()


def hash_secret(key: str, value: str) -> str:
    """Keyed hash (HMAC-SHA256) for API keys and personal identifiers kept for matching."""
    return hmac.new(key.encode(), value.encode(), hashlib.sha256).hexdigest()


def new_api_key() -> str:
    return "bbi_" + secrets.token_urlsafe(32)
