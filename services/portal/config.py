"""Portal settings from the environment, with defaults for a local `make run`.

PORTAL_REGISTRATION_URL / _TRAINING_URL / _CAMPAIGN_URL / _METRICS_URL: the services' APIs
  (default http://127.0.0.1:8001 ... 8004).
PORTAL_OIDC_ISSUER: the identity provider's issuer (default: BBI_JWT_ISSUER; discovery at
  <issuer>/.well-known/openid-configuration); PORTAL_OIDC_CLIENT_ID (default bbi-portal, a
  public client with PKCE). PORTAL_OIDC_METADATA_URL: where the portal itself reads the
  discovery document when it reaches the provider by another name than browsers do (e.g.
  http://keycloak:8080/... inside docker compose, with Keycloak's back-channel URLs dynamic).
PORTAL_SECRET_KEY: signs the CSRF tokens; required when PORTAL_ENV=production.
PORTAL_SESSION_DATABASE_URL: the server-side session store (default SQLite under var/).
PORTAL_COOKIE_SECURE: 1 to send the session cookie over HTTPS only (production).
PORTAL_SESSION_SECONDS: idle lifetime of a session (default 8 hours).
PORTAL_API_TIMEOUT: seconds per API call (default 10).
PORTAL_TRUSTED_PROXIES: proxy hops whose X-Forwarded-For is trusted (default 0; Kubernetes: 1,
  the Ingress). The visitor's address found so is passed on to the services (X-Forwarded-For),
  whose per-client limits would otherwise count every visitor as the portal.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from services.common.config import REPO_ROOT

_DEV_KEY = "bbi-portal-local-development-only"


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default


@dataclass(frozen=True)
class PortalSettings:
    registration_url: str = "http://127.0.0.1:8001"
    training_url: str = "http://127.0.0.1:8002"
    campaign_url: str = "http://127.0.0.1:8003"
    metrics_url: str = "http://127.0.0.1:8004"
    oidc_issuer: str = "http://127.0.0.1:8080/realms/bbi"
    oidc_client_id: str = "bbi-portal"
    oidc_metadata_url: str = ""  # default: the issuer's /.well-known/openid-configuration
    secret_key: str = _DEV_KEY
    session_database_url: str = f"sqlite:///{REPO_ROOT / 'var' / 'portal-sessions.db'}"
    cookie_secure: bool = False
    session_seconds: int = 8 * 3600
    api_timeout: float = 10.0
    trusted_proxies: int = 0
    production: bool = False

    @classmethod
    def from_env(cls, **overrides: object) -> PortalSettings:
        production = _env("PORTAL_ENV", "development") == "production"
        d = cls()
        values: dict[str, object] = dict(
            registration_url=_env("PORTAL_REGISTRATION_URL", d.registration_url),
            training_url=_env("PORTAL_TRAINING_URL", d.training_url),
            campaign_url=_env("PORTAL_CAMPAIGN_URL", d.campaign_url),
            metrics_url=_env("PORTAL_METRICS_URL", d.metrics_url),
            # The services' issuer (the ConfigMap's BBI_JWT_ISSUER) unless the portal is told
            # otherwise: one identity provider for the pages and the APIs.
            oidc_issuer=_env("PORTAL_OIDC_ISSUER",
                             _env("BBI_JWT_ISSUER", d.oidc_issuer)).rstrip("/"),
            oidc_client_id=_env("PORTAL_OIDC_CLIENT_ID", d.oidc_client_id),
            oidc_metadata_url=_env("PORTAL_OIDC_METADATA_URL", ""),
            secret_key=_env("PORTAL_SECRET_KEY", "" if production else _DEV_KEY),
            session_database_url=_env("PORTAL_SESSION_DATABASE_URL", d.session_database_url),
            cookie_secure=_env("PORTAL_COOKIE_SECURE", "1" if production else "0") == "1",
            session_seconds=int(_env("PORTAL_SESSION_SECONDS", str(d.session_seconds))),
            api_timeout=float(_env("PORTAL_API_TIMEOUT", str(d.api_timeout))),
            trusted_proxies=int(_env("PORTAL_TRUSTED_PROXIES", "0")),
            production=production,
        )
        values.update(overrides)
        settings = cls(**values)  # type: ignore[arg-type]
        if settings.production and (not settings.secret_key or settings.secret_key == _DEV_KEY):
            # No silent fallback: a production portal with the development key would accept
            # forged CSRF tokens.
            raise RuntimeError("PORTAL_SECRET_KEY must be set when PORTAL_ENV=production")
        return settings
