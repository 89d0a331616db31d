"""The worker's periodic clean-up: expired Idempotency-Keys and old processed event ids.

Idempotency keys: an answer is kept `idempotency_ttl_seconds` (24 h); after that a key
counts as new anyway (services/common/http/idempotency.py), so deleting it changes nothing.

Processed event ids (`processed_events`) are the consumers' guard against applying one event
twice. Deleting them after `processed_events_retention_seconds` (7 days) is safe because:
- Kafka redelivers a record at its OWN offset (after a crash, a rebalance, a failed commit).
  The runner stores each partition's next offset in the same transaction as the effects and
  the ids, and seeks there on assignment, so a record below that offset is never applied
  again, whether or not its id is still kept: that case needs no id at all.
- The id matters only for a second COPY of an event at a NEW offset: the outbox relay sends
  a row again when the broker took it but the ack was lost, and keeps doing so only while
  the row is pending (it is deleted at its ack). Such copies follow the original within the
  relay's retry time: seconds, or as long as a broker outage lasts. A week is far longer.
  Keep the window above the longest broker outage you would ride out, and do not re-queue
  a parked outbox row older than the window (OPERATIONS.md).
Both deletes go in small batches, each its own short transaction, so the consumers and the
web requests that write these tables never wait long behind the clean-up."""
from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from services.common.config import Settings
from services.common.db.engine import utcnow

log = logging.getLogger(__name__)
BATCH = 5000


def _delete_older(engine: Engine, table: sa.Table, time_col: str, before: datetime,
                  stop: threading.Event | None) -> int:
    pk = list(table.primary_key.columns)
    old = sa.select(*pk).where(table.c[time_col] < before).limit(BATCH)
    total = 0
    while stop is None or not stop.is_set():
        with engine.begin() as conn:
            ids = conn.execute(old).all()
            if ids:
                conn.execute(table.delete().where(sa.tuple_(*pk).in_([tuple(r) for r in ids])))
        total += len(ids)
        if len(ids) < BATCH:
            break
    return total


def run_once(engine: Engine, md: sa.MetaData, settings: Settings,
             now: datetime | None = None, stop: threading.Event | None = None) -> dict[str, int]:
    """Delete expired keys and processed ids older than the window; returns the counts."""
    now = now or utcnow()
    done = {
        "idempotency_keys": _delete_older(
            engine, md.tables["idempotency_keys"], "created_at",
            now - timedelta(seconds=settings.idempotency_ttl_seconds), stop),
        "processed_events": _delete_older(
            engine, md.tables["processed_events"], "processed_at",
            now - timedelta(seconds=settings.processed_events_retention_seconds), stop),
    }
    if any(done.values()):
        log.info("housekeeping", extra={f"deleted_{k}": v for k, v in done.items()})
    return done


def run_forever(engine: Engine, md: sa.MetaData, settings: Settings,
                stop: threading.Event) -> None:
    """Every `housekeeping_interval_seconds` until `stop`; a failure waits for the next turn."""
    while not stop.is_set():
        try:
            run_once(engine, md, settings, stop=stop)
        except sa.exc.SQLAlchemyError as exc:  # database down: the next turn tries again
            log.warning("housekeeping failed", extra={"error": type(exc).__name__})
        stop.wait(settings.housekeeping_interval_seconds)
