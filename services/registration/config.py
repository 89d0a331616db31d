"""Registration settings: the shared ones plus the service's own knobs, typed and read once
(load_settings) from these environment variables:

- REGISTRATION_RATE_LIMIT: public registrations per client address per window (default 60)
- REGISTRATION_RATE_WINDOW_SECONDS: the fixed window length (default 60)
- REGISTRATION_CLAIM_RATE_LIMIT: claim attempts (NIK + NIB proofs) per client address and
  per account per window (default 10)
- REGISTRATION_TRUSTED_PROXIES: reverse proxies in front of gunicorn whose X-Forwarded-For
  is trusted for the client address (default 0: use the socket peer)
- REGISTRATION_PARTNER_MAX_ITEMS: merchants per partner batch (default 10000)
- REGISTRATION_PARTNER_MAX_BODY_BYTES: body limit of the partner batch endpoint (default 8 MiB:
  10,000 merchants of ~500 bytes are ~5 MB; the Ingress allows twice this, see test_edge.py)
- REGISTRATION_CONSENT_VERSION: the current version of the stated processing purpose
"""
from __future__ import annotations

from dataclasses import dataclass

from services.common.config import Settings, as_service_settings, knob
from services.common.http.web import get_settings

# The worker's /metrics port when WORKER_METRICS_PORT is unset (deploy/k8s uses the same).
WORKER_METRICS_PORT = 9101

CONSENT_PURPOSE_ID = (
    "Data Anda diproses oleh Kementerian untuk pendataan, verifikasi, pendampingan dan "
    "kurasi UMKM dalam Gerakan Nasional Bangga Buatan Indonesia (UU 27/2022).")
CONSENT_PURPOSE_EN = (
    "Your data is processed by the Ministry to record, verify, mentor and curate UMKM in the "
    "Bangga Buatan Indonesia national movement (Law 27/2022).")


@dataclass(frozen=True)
class RegistrationSettings(Settings):
    """The shared settings plus registration's knobs (defaults as documented above)."""

    # Public registrations per client address per window.
    rate_limit: int = knob("REGISTRATION_RATE_LIMIT", 60)
    rate_window_seconds: int = knob("REGISTRATION_RATE_WINDOW_SECONDS", 60)
    # Claim attempts per client address, and per account.
    claim_rate_limit: int = knob("REGISTRATION_CLAIM_RATE_LIMIT", 10)
    # Proxies whose X-Forwarded-For entries are trusted.
    trusted_proxies: int = knob("REGISTRATION_TRUSTED_PROXIES", 0)
    partner_max_items: int = knob("REGISTRATION_PARTNER_MAX_ITEMS", 10_000)
    # 10,000 merchants do not fit the shared 1 MiB body limit.
    partner_max_body_bytes: int = knob("REGISTRATION_PARTNER_MAX_BODY_BYTES",
                                       8 * 1024 * 1024)
    # The purpose version owners consent to today.
    consent_version: str = knob("REGISTRATION_CONSENT_VERSION", "2025-01")


def load_settings(**overrides: object) -> RegistrationSettings:
    """Settings of the registration service from the environment; `overrides` win."""
    return RegistrationSettings.from_env("registration", **overrides)


def registration_settings(settings: Settings) -> RegistrationSettings:
    """`settings` as registration's own: shared settings built elsewhere (a test, the CLI)
    keep their values and get this service's knobs from the environment."""
    return as_service_settings(settings, RegistrationSettings, load_settings)


def current_settings() -> RegistrationSettings:
    """The serving app's settings (inside a request or app context)."""
    return registration_settings(get_settings())
