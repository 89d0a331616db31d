"""Per-client fixed-window rate limit kept in the service's database, so it holds across
gunicorn workers and replicas (an in-process counter would multiply the limit by the worker
count). A service adds the table with `add_table(metadata)` and counts with `hit(...)`."""
from __future__ import annotations

import math
import random
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from services.common.config import Settings
from services.common.db import dialect
from services.common.http.auth import hash_secret
from services.common.http.errors import ApiError

TABLE = "rate_limits"


def add_table(md: sa.MetaData) -> sa.Table:
    """The counters: one row per hashed client key and window."""
    return sa.Table(
        TABLE, md,
        sa.Column("client_key", sa.String(64), primary_key=True),
        sa.Column("window_start", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("hits", sa.Integer, nullable=False),
    )


def _upsert(t: sa.Table, dialect_name: str) -> Any:
    """The counting statement, built once per table and dialect: bound values come as
    parameters, so SQLAlchemy's compiled cache serves every request (building it per call
    cost about a tenth of a registration's CPU, bench/notes/registration_http.md)."""
    key = (id(t), dialect_name)
    if key not in _UPSERTS:
        _UPSERTS[key] = dialect.upsert(
            dialect_name, t, {"client_key": sa.bindparam("k"), "window_start": sa.bindparam("w"),
                              "hits": 1},
            index_elements=[t.c.client_key, t.c.window_start], set_={"hits": t.c.hits + 1},
        ).returning(t.c.hits)
    return _UPSERTS[key]


_UPSERTS: dict[tuple[int, str], Any] = {}


def hit(engine: Engine, t: sa.Table, settings: Settings, client: str, limit: int, window: int,
        now: float | None = None) -> int | None:
    """Count one request of `client`; return the seconds to wait when over the limit."""
    now = time.time() if now is None else now
    start = int(now // window) * window
    key = hash_secret(settings.pii_hash_key, "ip:" + client)  # no address stored in clear
    params = {"k": key, "w": start}
    sweep = random.random() < 0.01  # an occasional sweep keeps the table to about one window
    if dialect.is_postgresql(engine):
        # One statement is its own transaction: autocommit saves the BEGIN and COMMIT round
        # trips (the upsert is atomic either way).
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            hits = conn.execute(_upsert(t, "postgresql"), params).scalar_one()
            if sweep:
                conn.execute(t.delete().where(t.c.window_start < start - window))
    else:
        with engine.begin() as conn:
            hits = conn.execute(_upsert(t, engine.dialect.name), params).scalar_one()
            if sweep:
                conn.execute(t.delete().where(t.c.window_start < start - window))
    if hits <= limit:
        return None
    return max(1, math.ceil(start + window - now))


def too_many(retry_after: int, message_id: str = "Terlalu banyak permintaan dari alamat ini; "
             "coba lagi nanti.", message_en: str = "Too many requests from this address; "
             "try again later.") -> ApiError:
    return ApiError(429, "rate_limited", message_id, message_en,
                    headers={"Retry-After": str(retry_after)})
