"""Metrics tables: aggregates keyed by (metric, labels), per-business attributes, pipeline state.

Live and rebuild tables have the same shape; `TableSet` picks one pair so the same code fills
either. Writes are UPSERTs (`value = value + delta`) so a batch costs few statements."""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from services.common.db.engine import UtcDateTime, new_metadata, utcnow
from services.metrics.domain import Business, LabelKey

metadata = new_metadata()


def _values_table(name: str) -> sa.Table:
    return sa.Table(
        name,
        metadata,
        sa.Column("metric", sa.String(80), primary_key=True),
        sa.Column("labels", sa.String(300), primary_key=True),  # canonical JSON, bounded labels
        sa.Column("value", sa.BigInteger, nullable=False),  # integers: counts and rupiah
    )


def _business_table(name: str) -> sa.Table:
    # No personal data: ids and the attributes needed to subtract what a business added.
    return sa.Table(
        name,
        metadata,
        sa.Column("umkm_id", sa.String(36), primary_key=True),
        sa.Column("province", sa.String(2), nullable=False),
        sa.Column("scale", sa.String(10), nullable=False),
        sa.Column("kbli_section", sa.String(1), nullable=False),
        sa.Column("qris", sa.Boolean, nullable=False),
        sa.Column("verified", sa.Boolean, nullable=False),
        sa.Column("platforms", sa.String(400), nullable=False),  # sorted, comma-separated codes
        sa.Column("curation", sa.String(10)),
        sa.Column("status", sa.String(12), nullable=False),
        # Event times that place the business in the monthly progress counts (domain.py).
        sa.Column("registered_at", UtcDateTime),
        sa.Column("first_onboarded_at", UtcDateTime),
        sa.Column("curated_at", UtcDateTime),
    )


metric_values = _values_table("metric_values")
metric_values_rebuild = _values_table("metric_values_rebuild")
umkm_attributes = _business_table("umkm_attributes")
umkm_attributes_rebuild = _business_table("umkm_attributes_rebuild")
consumer_lag = sa.Table(
    "consumer_lag",
    metadata,
    sa.Column("topic", sa.String(100), primary_key=True),
    sa.Column("partition", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("lag", sa.BigInteger, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)
pipeline_status = sa.Table(
    "pipeline_status",
    metadata,
    sa.Column("name", sa.String(60), primary_key=True),
    sa.Column("value", sa.Float, nullable=False),
)


@dataclass(frozen=True)
class TableSet:
    values: sa.Table
    businesses: sa.Table


LIVE = TableSet(metric_values, umkm_attributes)
REBUILD = TableSet(metric_values_rebuild, umkm_attributes_rebuild)


def _insert(conn: Connection, table: sa.Table) -> Any:
    """The dialect's INSERT that supports ON CONFLICT (SQLite and PostgreSQL)."""
    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(table)


def load_businesses(conn: Connection, ts: TableSet, ids: Iterable[str]) -> dict[str, Business]:
    """The stored rows of these businesses (missing ids are simply absent)."""
    t, out, wanted = ts.businesses, {}, sorted(set(ids))
    for i in range(0, len(wanted), 500):
        for r in conn.execute(sa.select(t).where(t.c.umkm_id.in_(wanted[i : i + 500]))):
            out[r.umkm_id] = Business(
                r.umkm_id,
                r.province,
                r.scale,
                r.kbli_section,
                r.qris,
                r.verified,
                tuple(p for p in r.platforms.split(",") if p),
                r.curation,
                r.status,
                r.registered_at,
                r.first_onboarded_at,
                r.curated_at,
            )
    return out


def save_businesses(conn: Connection, ts: TableSet, rows: Iterable[Business]) -> None:
    """UPSERT changed business rows."""
    t = ts.businesses
    params = [
        {
            "umkm_id": b.umkm_id,
            "province": b.province,
            "scale": b.scale,
            "kbli_section": b.kbli_section,
            "qris": b.qris,
            "verified": b.verified,
            "platforms": ",".join(b.platforms),
            "curation": b.curation,
            "status": b.status,
            "registered_at": b.registered_at,
            "first_onboarded_at": b.first_onboarded_at,
            "curated_at": b.curated_at,
        }
        for b in sorted(rows, key=lambda b: b.umkm_id)
    ]
    if not params:
        return
    cols = ("verified", "platforms", "curation", "status", "first_onboarded_at", "curated_at")
    if conn.dialect.name == "postgresql":
        _upsert_unnest(conn, t, params, ("umkm_id",),
                       ", ".join(f"{c} = excluded.{c}" for c in cols))
        return
    stmt = _insert(conn, t)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["umkm_id"], set_={c: stmt.excluded[c] for c in cols}
        ),
        params,
    )


def add_deltas(conn: Connection, ts: TableSet, deltas: Mapping[LabelKey, int]) -> None:
    """value += delta for every key, inserting missing rows; one executemany statement."""
    # Sorted keys: concurrent workers (one per partition set) lock rows in the same order.
    # Zero deltas are written too: a gauge that went up and back down inside one batch
    # (waitlisted, then promoted) must still exist as a 0 series, as it would across batches.
    params = [{"metric": m, "labels": lb, "value": n} for (m, lb), n in sorted(deltas.items())]
    if not params:
        return
    t = ts.values
    if conn.dialect.name == "postgresql":
        _upsert_unnest(conn, t, params, ("metric", "labels"),
                       f"value = {t.name}.value + excluded.value")
        return
    stmt = _insert(conn, t)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["metric", "labels"], set_={"value": t.c.value + stmt.excluded.value}
        ),
        params,
    )


def _upsert_unnest(conn: Connection, t: sa.Table, params: list[dict[str, Any]],
                   keys: tuple[str, ...], update: str) -> None:
    """PostgreSQL: one INSERT ... SELECT FROM unnest(one array per column) ... ON CONFLICT
    for the whole batch. An executemany of the same UPSERT costs a statement per row (it was
    most of a metrics batch's database time). Rows keep their (sorted) order."""
    cols = list(params[0])
    arrays = {f"a{i}": [p[c] for p in params] for i, c in enumerate(cols)}
    casts = ", ".join(f"CAST(:a{i} AS {_pg_type(t.c[c])}[])" for i, c in enumerate(cols))
    sql = (f"INSERT INTO {t.name} ({', '.join(cols)}) SELECT * FROM unnest({casts}) "
           f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {update}")
    conn.execute(sa.text(sql), arrays)


def _pg_type(col: sa.Column[Any]) -> str:
    # Unbounded varchar: an explicit CAST to varchar(n) would silently truncate, while the
    # INSERT's own assignment to the column still refuses a value that is too long.
    if isinstance(col.type, sa.String):
        return "varchar"
    return str(col.type.compile(dialect=postgresql.dialect()))


def set_status(conn: Connection, name: str, value: float) -> None:
    """Set one pipeline number (e.g. the last applied time)."""
    stmt = _insert(conn, pipeline_status)
    conn.execute(
        stmt.on_conflict_do_update(index_elements=["name"], set_={"value": stmt.excluded.value}),
        {"name": name, "value": value},
    )


def touch_last_applied(conn: Connection) -> None:
    set_status(conn, "last_applied_timestamp_seconds", time.time())


def write_lag(conn: Connection, lags: Mapping[tuple[str, int], int]) -> None:
    """Replace the stored lag of these partitions (topic names without the prefix)."""
    if not lags:
        return
    now = utcnow()
    stmt = _insert(conn, consumer_lag)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["topic", "partition"],
            set_={"lag": stmt.excluded.lag, "updated_at": stmt.excluded.updated_at},
        ),
        [
            {"topic": t, "partition": p, "lag": n, "updated_at": now}
            for (t, p), n in sorted(lags.items())
        ],
    )
    set_status(conn, "lag_updated_timestamp_seconds", time.time())


def read_values(conn: Connection, ts: TableSet = LIVE) -> list[tuple[str, dict[str, str], int]]:
    """Every aggregate row: (metric, labels, value). Bounded by label cardinality, not events."""
    return [(m, dict(items), v) for m, items, v in read_value_items(conn, ts)]


def read_value_items(
    conn: Connection, ts: TableSet = LIVE
) -> list[tuple[str, tuple[tuple[str, str], ...], int]]:
    """Every aggregate row with its labels as sorted (name, value) pairs (what /metrics needs)."""
    t = ts.values
    return [
        (r.metric, label_items(r.labels), int(r.value))
        for r in conn.execute(
            sa.select(t.c.metric, t.c.labels, t.c.value).order_by(t.c.metric, t.c.labels)
        )
    ]


@functools.lru_cache(maxsize=65_536)
def label_items(labels: str) -> tuple[tuple[str, str], ...]:
    # Label sets are bounded, so every scrape decoding the same JSON again was pure waste
    # (a fifth of a scrape's time); tuples are immutable, so sharing them is safe.
    return tuple(sorted(json.loads(labels).items()))


def read_status(conn: Connection) -> dict[str, float]:
    return {r.name: r.value for r in conn.execute(sa.select(pipeline_status))}


def read_lag(conn: Connection) -> list[tuple[str, int, int]]:
    t = consumer_lag
    return [
        (r.topic, r.partition, int(r.lag))
        for r in conn.execute(sa.select(t).order_by(t.c.topic, t.c.partition))
    ]
