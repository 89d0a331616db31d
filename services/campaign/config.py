"""Campaign settings: the common ones plus this service's knobs, typed and read once.

Knobs (environment variables, read by `load_settings`):
- CAMPAIGN_MAX_PURCHASE_IDR: ceiling of one recorded purchase in rupiah (default 10,000,000)
- CAMPAIGN_RETRY_AFTER_SECONDS: Retry-After sent when a business is not known yet (default 30)
- CAMPAIGN_CLOCK_SKEW_SECONDS: how far in the future a purchase time may lie (default 300)
"""
from __future__ import annotations

from dataclasses import dataclass

from services.common.config import Settings, as_service_settings, knob

# The worker's /metrics port when WORKER_METRICS_PORT is unset (deploy/k8s uses the same).
WORKER_METRICS_PORT = 9103


@dataclass(frozen=True)
class CampaignSettings(Settings):
    """What the campaign handlers read instead of the environment."""

    # Largest single purchase accepted (a typo guard, not a policy band).
    max_purchase_idr: int = knob("CAMPAIGN_MAX_PURCHASE_IDR", 10_000_000)
    # When the registration event may not have reached our read model yet.
    retry_after_seconds: int = knob("CAMPAIGN_RETRY_AFTER_SECONDS", 30)
    # Tolerance for phones whose clocks run a little ahead.
    clock_skew_seconds: int = knob("CAMPAIGN_CLOCK_SKEW_SECONDS", 300)


def load_settings(**overrides: object) -> CampaignSettings:
    """Settings of the campaign service from the environment."""
    return CampaignSettings.from_env("campaign", **overrides)


def campaign_settings(settings: Settings) -> CampaignSettings:
    """Typed settings from common ones (tools and tests may build plain `Settings`): their
    fields kept, this service's knobs read from the environment."""
    return as_service_settings(settings, CampaignSettings, load_settings)
