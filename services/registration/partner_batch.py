"""The partner batch use case: validate, dedupe (batch and database), bulk insert, events.

A merchant the portal already knows (same NIB, or same owner NIK and business name) is not
refused: the reporting platform's onboarding is added to that business, once per business and
platform, with its `onboarded` event. Only a genuinely new business gets a row of its own."""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from services.common.config import Settings
from services.common.db.engine import bulk_insert, is_unique_violation, utcnow
from services.common.messaging import contracts, outbox
from services.common.messaging.uow import UnitOfWork
from services.registration import domain
from services.registration.handlers import new_row, uow
from services.registration.partner import dedupe_keys, existing_matches, one_of, validate_items
from services.registration.partner_outbox import outbox_rows
from services.registration.store import metadata, umkm, umkm_platforms

log = logging.getLogger(__name__)
RESULTS = ("created", "onboarded", "already_registered", "invalid")


def onboard_batch(engine: Engine, settings: Settings, partner: Any,
                  items: list[Any]) -> dict[str, Any]:
    """Per-item results: created (a new business), onboarded (a known business, now also on
    this platform), already_registered (nothing new: already on this platform, or a
    conflicting match) or invalid. Re-sending creates and onboards nothing."""
    results, valid = validate_items(items)
    for attempt in range(3):
        try:
            _write(engine, settings, partner, valid, results)
            break
        except sa.exc.IntegrityError as exc:
            # A concurrent registration slipped in between lookup and insert: look again.
            if not is_unique_violation(exc) or attempt == 2:
                raise
    summary = {k: sum(1 for r in results if r and r["result"] == k) for k in RESULTS}
    log.info("partner batch", extra={"partner": partner.code,
                                     **{f"items_{k}": v for k, v in summary.items()}})
    return {"partner": partner.code, "summary": summary, "items": results}


def _write(engine: Engine, settings: Settings, partner: Any,
           valid: list[tuple[int, dict[str, Any]]], results: list[Any]) -> None:
    now = utcnow()
    rows = [(i, new_row(settings, d, now, "partner", "registered", partner.code), d)
            for i, d in valid]
    with uow(engine, settings) as u:
        known = existing_matches(u.conn, partner.code, [r for _, r, _ in rows])
        fresh: list[tuple[dict[str, Any], dict[str, Any]]] = []
        joins: dict[str, tuple[int, str | None]] = {}  # known business -> (item, store url)
        for i, row, data in rows:
            ref = row["partner_ref"]
            key, hit = next(((k, known[k]) for k in dedupe_keys(row) if k in known),
                            (None, None))
            if hit is None:
                entry = _Seen(row["id"], row["status"])
                known.update({k: entry for k in dedupe_keys(row)})
                fresh.append((row, data))
                results[i] = _result(i, ref, "created", row["id"], row["status"])
            elif _joinable(key, hit, row) and hit.id not in joins:
                joins[hit.id] = (i, data.get("store_url"))
                results[i] = _result(i, ref, "onboarded", hit.id, hit.status)
            else:  # this partner's own re-send, a repeat in the batch, or a NIB conflict
                results[i] = _result(i, ref, "already_registered", hit.id, hit.status)
        if joins:
            _onboard_known(u, partner.platform, joins, results, now)
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


def _joinable(key: tuple[str, ...] | None, hit: Any, row: dict[str, Any]) -> bool:
    """A business registered before this batch (publicly or by another platform) that the
    item names by its NIB, or by its owner's NIK and name without contradicting its NIB."""
    if key is None or key[0] == "ref" or isinstance(hit, _Seen):
        return False
    return key[0] == "nib" or not (hit.nib and row["nib"] and hit.nib != row["nib"])


def _onboard_known(u: UnitOfWork, platform: str, joins: dict[str, tuple[int, str | None]],
                   results: list[Any], now: datetime) -> None:
    """Add `platform` to each known business (locked), once per business and platform."""
    ids = list(joins)
    conn = u.conn
    locked = {r.id: r for r in conn.execute(
        sa.select(umkm.c.id, umkm.c.status).where(one_of(conn, umkm.c.id, ids))
        .order_by(umkm.c.id).with_for_update())}
    on = _platforms(conn, ids)
    for uid, (i, store_url) in joins.items():
        row, ref = locked.get(uid), results[i]["merchant_ref"]
        if row is None or row.status == domain.Status.withdrawn or platform in on[uid]:
            # Withdrawn meanwhile, or this platform already reported it: nothing to add.
            results[i] = _result(i, ref, "already_registered", uid,
                                 row.status if row else domain.Status.withdrawn)
            continue
        status = domain.partner_onboard(row.status)
        conn.execute(umkm_platforms.insert().values(umkm_id=uid, platform=platform,
                                                    store_url=store_url, onboarded_at=now))
        if status != row.status:
            conn.execute(umkm.update().where(umkm.c.id == uid)
                         .values(status=status, updated_at=now))
        u.publish(contracts.UMKM_ONBOARDED, {"umkm_id": uid, "platform": platform,
                                             "first_platform": not on[uid],
                                             "onboarded_at": now})
        results[i] = _result(i, ref, "onboarded", uid, status)


def _platforms(conn: Connection, ids: list[str]) -> dict[str, set[str]]:
    p = umkm_platforms.c
    out: dict[str, set[str]] = {i: set() for i in ids}
    for uid, platform in conn.execute(sa.select(p.umkm_id, p.platform)
                                      .where(one_of(conn, p.umkm_id, ids))):
        out[uid].add(platform)
    return out


def _result(i: int, ref: str, result: str, uid: str, status: str) -> dict[str, Any]:
    return {"index": i, "merchant_ref": ref, "result": result, "id": uid,
            "status": str(status)}


class _Seen:
    """A row created earlier in this batch, shaped like a lookup result."""

    def __init__(self, id_: str, status: str) -> None:
        self.id, self.status = id_, status
