"""The partner batch use case: validate, dedupe (batch and database), bulk insert, events."""
from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from services.common import outbox
from services.common.config import Settings
from services.common.db import bulk_insert, is_unique_violation, utcnow
from services.registration.handlers import new_row, uow
from services.registration.partner import dedupe_keys, existing_matches, validate_items
from services.registration.partner_outbox import outbox_rows
from services.registration.store import metadata, umkm, umkm_platforms

log = logging.getLogger(__name__)


def onboard_batch(engine: Engine, settings: Settings, partner: Any,
                  items: list[Any]) -> dict[str, Any]:
    """Per-item results: created / already_registered / invalid. Re-sending creates nothing."""
    results, valid = validate_items(items)
    for attempt in range(3):
        try:
            _write(engine, settings, partner, valid, results)
            break
        except sa.exc.IntegrityError as exc:
            # A concurrent registration slipped in between lookup and insert: look again.
            if not is_unique_violation(exc) or attempt == 2:
                raise
    summary = {k: sum(1 for r in results if r and r["result"] == k)
               for k in ("created", "already_registered", "invalid")}
    log.info("partner batch", extra={"partner": partner.code,
                                     **{f"items_{k}": v for k, v in summary.items()}})
    return {"partner": partner.code, "summary": summary, "items": results}


def _write(engine: Engine, settings: Settings, partner: Any,
           valid: list[tuple[int, dict[str, Any]]], results: list[Any]) -> None:
    now = utcnow()
    rows = [(i, new_row(settings, d, now, "partner", "onboarded", partner.code), d)
            for i, d in valid]
    with uow(engine, settings) as u:
        known = existing_matches(u.conn, partner.code, [r for _, r, _ in rows])
        fresh: list[tuple[dict[str, Any], dict[str, Any]]] = []
        for i, row, data in rows:
            hit = next((known[k] for k in dedupe_keys(row) if k in known), None)
            ref = row["partner_ref"]
            if hit is not None:  # in the database, or earlier in this same batch
                results[i] = {"index": i, "merchant_ref": ref, "result": "already_registered",
                              "id": hit.id, "status": hit.status}
                continue
            entry = _Seen(row["id"], row["status"])
            known.update({k: entry for k in dedupe_keys(row)})
            fresh.append((row, data))
            results[i] = {"index": i, "merchant_ref": ref, "result": "created",
                          "id": row["id"], "status": row["status"]}
        if not fresh:
            return
        # Bulk: one COPY per table on PostgreSQL (executemany elsewhere), platforms after
        # their businesses (foreign key), the events in the same transaction.
        bulk_insert(u.conn, umkm, [r for r, _ in fresh])
        bulk_insert(u.conn, umkm_platforms, [
            {"umkm_id": r["id"], "platform": partner.platform,
             "store_url": d.get("store_url"), "onboarded_at": now} for r, d in fresh])
        # The rows add_events would stage at commit, built (a generator) while the server
        # stores the first ones.
        outbox.add_rows(u.conn, metadata,
                        outbox_rows([r for r, _ in fresh], partner.platform, now, u.topic_prefix))


class _Seen:
    """A row created earlier in this batch, shaped like a lookup result."""

    def __init__(self, id_: str, status: str) -> None:
        self.id, self.status = id_, status
