"""Per-client fixed-window rate limit kept in the database, so it holds across gunicorn
workers and replicas (an in-process counter would multiply the limit by the worker count)."""
from __future__ import annotations

import math
import random
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from services.common.auth import hash_secret
from services.common.config import Settings
from services.common.errors import ApiError
from services.registration.store import rate_limits as t


def _upsert(dialect_name: str) -> Any:
    """The counting statement, built once per dialect: bound values come as parameters, so
    SQLAlchemy's compiled cache serves every request (building it per call cost about a
    tenth of a registration's CPU, bench/notes/registration_http.md)."""
    if dialect_name not in _UPSERTS:
        dialect = postgresql if dialect_name == "postgresql" else sqlite
        _UPSERTS[dialect_name] = (
            dialect.insert(t).values(client_key=sa.bindparam("k"),
                                     window_start=sa.bindparam("w"), hits=1)
            .on_conflict_do_update(index_elements=[t.c.client_key, t.c.window_start],
                                   set_={"hits": t.c.hits + 1})
            .returning(t.c.hits))
    return _UPSERTS[dialect_name]


_UPSERTS: dict[str, Any] = {}
_SWEEP = t.delete().where(t.c.window_start < sa.bindparam("before"))


def hit(engine: Engine, settings: Settings, client: str, limit: int, window: int,
        now: float | None = None) -> int | None:
    """Count one request of `client`; return the seconds to wait when over the limit."""
    now = time.time() if now is None else now
    start = int(now // window) * window
    key = hash_secret(settings.pii_hash_key, "ip:" + client)  # no address stored in clear
    params = {"k": key, "w": start}
    if engine.dialect.name == "postgresql":
        # One statement is its own transaction: autocommit saves the BEGIN and COMMIT round
        # trips (the upsert is atomic either way).
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            hits = conn.execute(_upsert("postgresql"), params).scalar_one()
            if random.random() < 0.01:  # occasional sweep keeps the table to about one window
                conn.execute(_SWEEP, {"before": start - window})
    else:
        with engine.begin() as conn:
            hits = conn.execute(_upsert(engine.dialect.name), params).scalar_one()
            if random.random() < 0.01:
                conn.execute(_SWEEP, {"before": start - window})
    if hits <= limit:
        return None
    return max(1, math.ceil(start + window - now))


def too_many(retry_after: int) -> ApiError:
    return ApiError(429, "rate_limited",
                    "Terlalu banyak pendaftaran dari alamat ini; coba lagi nanti.",
                    "Too many registrations from this address; try again later.",
                    headers={"Retry-After": str(retry_after)})
