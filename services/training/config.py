"""Training settings. Service-specific knobs (environment variables, read at call time):

- TRAINING_DEFAULT_CAPACITY: seats of a session when the operator gives none (default 200)
- TRAINING_RETRY_AFTER_SECONDS: Retry-After sent when a business is not known yet (default 30)
- TRAINING_MAX_ATTENDANCE_ROWS: business ids per attendance upload (default 5000)
- TRAINING_CERTIFICATE_RATE_LIMIT: public certificate checks per client address per window
  (default 60); TRAINING_RATE_WINDOW_SECONDS: the window (default 60)
- TRAINING_TRUSTED_PROXIES: proxy hops whose X-Forwarded-For is trusted (default 0;
  Kubernetes: 1, the Ingress, or the portal, which passes on its visitor's address)
"""
from __future__ import annotations

import os

from services.common.config import Settings

# The worker's /metrics port when WORKER_METRICS_PORT is unset (deploy/k8s uses the same).
WORKER_METRICS_PORT = 9102


def load_settings(**overrides: object) -> Settings:
    """Settings of the training service from the environment."""
    return Settings.from_env("training", **overrides)


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw not in (None, "") else default


def default_capacity() -> int:
    """Seats of a session when none is given (a large national webinar)."""
    return _int("TRAINING_DEFAULT_CAPACITY", 200)


def retry_after_seconds() -> int:
    """When the registration event may not have reached our read model yet."""
    return _int("TRAINING_RETRY_AFTER_SECONDS", 30)


def max_attendance_rows() -> int:
    """Largest attendance report accepted in one request."""
    return _int("TRAINING_MAX_ATTENDANCE_ROWS", 5000)


def certificate_rate_limit() -> int:
    """Public certificate checks allowed per client address per window: a person checks a
    few numbers; guessing numbers takes millions."""
    return _int("TRAINING_CERTIFICATE_RATE_LIMIT", 60)


def rate_window_seconds() -> int:
    """Length of the fixed rate-limit window."""
    return _int("TRAINING_RATE_WINDOW_SECONDS", 60)


def trusted_proxies() -> int:
    """How many proxies' X-Forwarded-For entries to trust."""
    return _int("TRAINING_TRUSTED_PROXIES", 0)
