"""Metrics settings. Service-specific knobs (environment variables, read at call time):

- METRICS_LAG_INTERVAL_SECONDS: how often the worker stores the consumer lag (default 15)
- METRICS_REBUILD_TIMEOUT_SECONDS: longest a rebuild may take before it gives up (default 3600)
"""

from __future__ import annotations

import os

from services.common.config import Settings

# The worker's /metrics port when WORKER_METRICS_PORT is unset (deploy/k8s uses the same).
WORKER_METRICS_PORT = 9104


def load_settings(**overrides: object) -> Settings:
    """Settings of the metrics service from the environment."""
    return Settings.from_env("metrics", **overrides)


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw not in (None, "") else default


def lag_interval_seconds() -> float:
    """Period of the lag reporter."""
    return _float("METRICS_LAG_INTERVAL_SECONDS", 15.0)


def rebuild_timeout_seconds() -> float:
    """Give up a rebuild (leaving the live tables untouched) after this long."""
    return _float("METRICS_REBUILD_TIMEOUT_SECONDS", 3600.0)
