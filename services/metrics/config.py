"""Metrics settings: the common ones plus this service's knobs, read once at start.

- METRICS_LAG_INTERVAL_SECONDS: how often the worker stores the consumer lag (default 15)
- METRICS_REBUILD_TIMEOUT_SECONDS: longest a rebuild may take before it gives up (default 3600)
"""

from __future__ import annotations

from dataclasses import dataclass

from services.common.config import Settings, as_service_settings, knob

# The worker's /metrics port when WORKER_METRICS_PORT is unset (deploy/k8s uses the same).
WORKER_METRICS_PORT = 9104


@dataclass(frozen=True)
class MetricsSettings(Settings):
    """What the metrics worker and commands read instead of the environment."""

    # Period of the lag reporter.
    lag_interval_seconds: float = knob("METRICS_LAG_INTERVAL_SECONDS", 15.0)
    # Give up a rebuild (leaving the live tables untouched) after this long.
    rebuild_timeout_seconds: float = knob("METRICS_REBUILD_TIMEOUT_SECONDS", 3600.0)


def load_settings(**overrides: object) -> MetricsSettings:
    """Settings of the metrics service from the environment."""
    return MetricsSettings.from_env("metrics", **overrides)


def metrics_settings(settings: Settings) -> MetricsSettings:
    """These settings as MetricsSettings (the service's knobs from the environment when a
    caller built plain Settings)."""
    return as_service_settings(settings, MetricsSettings, load_settings)
