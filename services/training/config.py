"""Training settings: the common ones plus this service's knobs, typed and read once.

Knobs (environment variables, read by `load_settings`):
- TRAINING_DEFAULT_CAPACITY: seats of a session when the operator gives none (default 200)
- TRAINING_RETRY_AFTER_SECONDS: Retry-After sent when a business is not known yet (default 30)
- TRAINING_MAX_ATTENDANCE_ROWS: business ids per attendance upload (default 5000)
- TRAINING_CERTIFICATE_RATE_LIMIT: public certificate checks per client address per window
  (default 60); TRAINING_RATE_WINDOW_SECONDS: the window (default 60)
- TRAINING_TRUSTED_PROXIES: proxy hops whose X-Forwarded-For is trusted (default 0;
  Kubernetes: 1, the Ingress, or the portal, which passes on its visitor's address)
"""
from __future__ import annotations

from dataclasses import dataclass

from services.common.config import Settings, as_service_settings, knob

# The worker's /metrics port when WORKER_METRICS_PORT is unset (deploy/k8s uses the same).
WORKER_METRICS_PORT = 9102


@dataclass(frozen=True)
class TrainingSettings(Settings):
    """What the training handlers and views read instead of the environment."""

    # Seats of a session when none is given (a large national webinar).
    default_capacity: int = knob("TRAINING_DEFAULT_CAPACITY", 200)
    # When the registration event may not have reached our read model yet.
    retry_after_seconds: int = knob("TRAINING_RETRY_AFTER_SECONDS", 30)
    # Largest attendance report accepted in one request.
    max_attendance_rows: int = knob("TRAINING_MAX_ATTENDANCE_ROWS", 5000)
    # Public certificate checks per client address per window: a person checks a few
    # numbers; guessing numbers takes millions.
    certificate_rate_limit: int = knob("TRAINING_CERTIFICATE_RATE_LIMIT", 60)
    rate_window_seconds: int = knob("TRAINING_RATE_WINDOW_SECONDS", 60)
    # How many proxies' X-Forwarded-For entries to trust.
    trusted_proxies: int = knob("TRAINING_TRUSTED_PROXIES", 0)


def load_settings(**overrides: object) -> TrainingSettings:
    """Settings of the training service from the environment."""
    return TrainingSettings.from_env("training", **overrides)


def training_settings(settings: Settings) -> TrainingSettings:
    """Typed settings from common ones (tools and tests may build plain `Settings`): their
    fields kept, this service's knobs read from the environment."""
    return as_service_settings(settings, TrainingSettings, load_settings)
