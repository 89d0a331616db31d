"""Registration settings. Service-specific knobs (environment variables, read at call time):

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

import os

from services.common.config import Settings

# The worker's /metrics port when WORKER_METRICS_PORT is unset (deploy/k8s uses the same).
WORKER_METRICS_PORT = 9101

CONSENT_PURPOSE_ID = (
    "Data Anda diproses oleh Kementerian untuk pendataan, verifikasi, pendampingan dan "
    "kurasi UMKM dalam Gerakan Nasional Bangga Buatan Indonesia (UU 27/2022).")
CONSENT_PURPOSE_EN = (
    "Your data is processed by the Ministry to record, verify, mentor and curate UMKM in the "
    "Bangga Buatan Indonesia national movement (Law 27/2022).")


def load_settings(**overrides: object) -> Settings:
    """Settings of the registration service from the environment."""
    return Settings.from_env("registration", **overrides)


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw not in (None, "") else default


def rate_limit() -> int:
    """Public registrations allowed per client address per window."""
    return _int("REGISTRATION_RATE_LIMIT", 60)


def rate_window_seconds() -> int:
    """Length of the fixed rate-limit window."""
    return _int("REGISTRATION_RATE_WINDOW_SECONDS", 60)


def claim_rate_limit() -> int:
    """Claim attempts allowed per client address, and per account, per window."""
    return _int("REGISTRATION_CLAIM_RATE_LIMIT", 10)


def trusted_proxies() -> int:
    """How many proxies' X-Forwarded-For entries to trust."""
    return _int("REGISTRATION_TRUSTED_PROXIES", 0)


def partner_max_items() -> int:
    """Largest partner batch accepted."""
    return _int("REGISTRATION_PARTNER_MAX_ITEMS", 10_000)


def partner_max_body_bytes() -> int:
    """Body limit of the partner endpoint (10,000 merchants do not fit the default 1 MiB)."""
    return _int("REGISTRATION_PARTNER_MAX_BODY_BYTES", 8 * 1024 * 1024)


def consent_version() -> str:
    """The version of the processing purpose owners consent to today."""
    return os.environ.get("REGISTRATION_CONSENT_VERSION", "2025-01")
