"""The public registration and claim limits: the shared per-client counter
(services/common/http/ratelimit.py) on registration's own table."""
from __future__ import annotations

import time

from sqlalchemy.engine import Engine

from services.common.config import Settings
from services.common.http import ratelimit
from services.common.http.errors import ApiError
from services.registration.store import rate_limits


def hit(engine: Engine, settings: Settings, client: str, limit: int, window: int,
        now: float | None = None) -> int | None:
    """Count one request of `client`; return the seconds to wait when over the limit."""
    now = time.time() if now is None else now  # this module's clock: tests move it
    return ratelimit.hit(engine, rate_limits, settings, client, limit, window, now)


def too_many(retry_after: int) -> ApiError:
    return ratelimit.too_many(retry_after,
                              "Terlalu banyak pendaftaran dari alamat ini; coba lagi nanti.",
                              "Too many registrations from this address; try again later.")
