"""Campaign settings. Service-specific knobs (environment variables, read at call time):

- CAMPAIGN_MAX_PURCHASE_IDR: ceiling of one recorded purchase in rupiah (default 10,000,000)
- CAMPAIGN_RETRY_AFTER_SECONDS: Retry-After sent when a business is not known yet (default 30)
- CAMPAIGN_CLOCK_SKEW_SECONDS: how far in the future a purchase time may lie (default 300)
"""
from __future__ import annotations

import os

from services.common.config import Settings

# The worker's /metrics port when WORKER_METRICS_PORT is unset (deploy/k8s uses the same).
WORKER_METRICS_PORT = 9103


def load_settings(**overrides: object) -> Settings:
    """Settings of the campaign service from the environment."""
    return Settings.from_env("campaign", **overrides)


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw not in (None, "") else default


def max_purchase_idr() -> int:
    """Largest single purchase accepted (a typo guard, not a policy band)."""
    return _int("CAMPAIGN_MAX_PURCHASE_IDR", 10_000_000)


def retry_after_seconds() -> int:
    """When the registration event may not have reached our read model yet."""
    return _int("CAMPAIGN_RETRY_AFTER_SECONDS", 30)


def clock_skew_seconds() -> int:
    """Tolerance for phones whose clocks run a little ahead."""
    return _int("CAMPAIGN_CLOCK_SKEW_SECONDS", 300)
