"""Partner platforms' use cases: a partner and its API key, authentication, and the batch of
merchants a partner onboarded (validate, dedupe against the batch and the database, bulk
insert, events).

A merchant the portal already knows (same NIB, or same owner NIK and business name) is not
refused: the reporting platform's onboarding is added to that business, once per business and
platform, with its `onboarded` event. Only a genuinely new business gets a row of its own."""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from services.common.config import Settings
from services.common.db.engine import is_unique_violation, utcnow
from services.common.http.auth import hash_secret, new_api_key, unauthorized
from services.common.messaging import contracts, outbox
from services.common.messaging.uow import UnitOfWork
from services.registration import domain, store
from services.registration.config import RegistrationSettings
from services.registration.handlers import uow
from services.registration.partner.events import onboarded_event, outbox_rows
from services.registration.partner.items import validate_items
from services.registration.store import Umkm, metadata

log = logging.getLogger(__name__)
RESULTS = ("created", "onboarded", "already_registered", "invalid")


def key_hash(settings: Settings, api_key: str) -> str:
    return hash_secret(settings.pii_hash_key, "apikey:" + api_key)


def create_partner(engine: Engine, settings: Settings, code: str, platform: str,
                   name: str) -> str:
    """Register a partner; returns its API key (shown once, stored only hashed)."""
    api_key = new_api_key()
    with engine.begin() as conn:
        store.insert_partner(conn, code, platform, name, key_hash(settings, api_key), utcnow())
    return api_key


def authenticate(engine: Engine, settings: Settings, api_key: str | None) -> Umkm:
    """The partner holding this key; 401 otherwise."""
    if not api_key:
        raise unauthorized("api_key_missing", "Header X-API-Key diperlukan.",
                           "The X-API-Key header is required.")
    with engine.connect() as conn:
        partner = store.partner_by_key_hash(conn, key_hash(settings, api_key))
    if partner is None:
        raise unauthorized("api_key_invalid", "API key tidak sah.", "Invalid API key.")
    return partner


def onboard_batch(engine: Engine, settings: RegistrationSettings, partner: Any,
                  items: list[Any]) -> dict[str, Any]:
    """Per-item results: created (a new business), onboarded (a known business, now also on
    this platform), already_registered (nothing new: already on this platform, or a
    conflicting match) or invalid. Re-sending creates and onboards nothing."""
    results, valid = validate_items(settings, items)
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
    rows = [(i, store.new_row(settings, d, now, "partner", "registered", partner.code), d)
            for i, d in valid]
    with uow(engine, settings) as u:
        known = store.existing_matches(u.conn, partner.code, [r for _, r, _ in rows])
        fresh, joins = _sort(rows, known, results)
        if joins:
            _onboard_known(u, partner.platform, joins, results, now)
        if not fresh:
            return
        store.add_businesses(u.conn, [r for r, _ in fresh], [
            {"umkm_id": r["id"], "platform": partner.platform,
             "store_url": d.get("store_url"), "onboarded_at": now} for r, d in fresh])
        # The rows add_events would stage at commit, built (a generator) while the server
        # stores the first ones.
        outbox.add_rows(u.conn, metadata,
                        outbox_rows([r for r, _ in fresh], partner.platform, now, u.topic_prefix))


def _sort(rows: list[tuple[int, dict[str, Any], dict[str, Any]]],
          matches: dict[tuple[str, ...], Any], results: list[Any]
          ) -> tuple[list[tuple[dict[str, Any], dict[str, Any]]], dict[str, tuple[int, Any]]]:
    """Each row: new (to create), naming a known business (to join: item, store url), or
    nothing new; `matches` are the database's, then the batch's own rows as they are seen."""
    known = dict(matches)
    fresh: list[tuple[dict[str, Any], dict[str, Any]]] = []
    joins: dict[str, tuple[int, str | None]] = {}
    for i, row, data in rows:
        ref = row["partner_ref"]
        key, hit = next(((k, known[k]) for k in store.dedupe_keys(row) if k in known),
                        (None, None))
        if hit is None:
            entry = _Seen(row["id"], row["status"])
            known.update({k: entry for k in store.dedupe_keys(row)})
            fresh.append((row, data))
            results[i] = _result(i, ref, "created", row["id"], row["status"])
        elif _joinable(key, hit, row) and hit.id not in joins:
            joins[hit.id] = (i, data.get("store_url"))
            results[i] = _result(i, ref, "onboarded", hit.id, hit.status)
        else:  # this partner's own re-send, a repeat in the batch, or a NIB conflict
            results[i] = _result(i, ref, "already_registered", hit.id, hit.status)
    return fresh, joins


def _joinable(key: tuple[str, ...] | None, hit: Any, row: dict[str, Any]) -> bool:
    """A business registered before this batch (publicly or by another platform) that the
    item names by its NIB, or by its owner's NIK and name without contradicting its NIB."""
    if key is None or key[0] == "ref" or isinstance(hit, _Seen):
        return False
    return key[0] == "nib" or not (hit.nib and row["nib"] and hit.nib != row["nib"])


def _onboard_known(u: UnitOfWork, platform: str, joins: dict[str, tuple[int, str | None]],
                   results: list[Any], now: datetime) -> None:
    """Add `platform` to each known business (locked), once per business and platform."""
    statuses = store.lock_statuses(u.conn, list(joins))
    on = store.platform_names(u.conn, joins)
    for uid, (i, store_url) in joins.items():
        status, ref = statuses.get(uid), results[i]["merchant_ref"]
        if status is None or status == domain.Status.withdrawn or platform in on[uid]:
            # Withdrawn meanwhile, or this platform already reported it: nothing to add.
            results[i] = _result(i, ref, "already_registered", uid,
                                 status or domain.Status.withdrawn)
            continue
        new = domain.partner_onboard(status)
        store.add_platform(u.conn, uid, platform, store_url, now)
        if new != status:
            store.update_umkm(u.conn, uid, status=new, updated_at=now)
        u.publish(contracts.UMKM_ONBOARDED, onboarded_event(uid, platform, not on[uid], now))
        results[i] = _result(i, ref, "onboarded", uid, new)


def _result(i: int, ref: str, result: str, uid: str, status: str) -> dict[str, Any]:
    return {"index": i, "merchant_ref": ref, "result": result, "id": uid,
            "status": str(status)}


class _Seen:
    """A row created earlier in this batch, shaped like a lookup result."""

    def __init__(self, id_: str, status: str) -> None:
        self.id, self.status = id_, status
