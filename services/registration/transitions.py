"""Operator transitions and the owner's withdrawal: locked row, domain rule, event."""
from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.engine import Connection, Engine

from services.common import audit
from services.common.config import Settings
from services.common.db.engine import utcnow
from services.common.http.errors import conflict, not_found
from services.common.messaging import contracts
from services.registration import domain
from services.registration import scope as scopes
from services.registration.handlers import PERSONAL, not_owner, uow
from services.registration.store import get_umkm, platforms_of, umkm, umkm_platforms

log = logging.getLogger(__name__)


def _locked(conn: Connection, umkm_id: str) -> Any:
    row = get_umkm(conn, umkm_id, lock=True)
    if row is None:
        raise not_found("umkm")
    return row


def _staff_locked(conn: Connection, umkm_id: str, actor: Any) -> Any:
    """The locked row for an operator/admin action: 404 outside the actor's province."""
    row = _locked(conn, umkm_id)
    scopes.check_row(scopes.of(actor), row)
    return row


def _refused(err: domain.DomainError, row: Any) -> domain.DomainError:
    """The refused transition (a conflict) with the current state, so the caller sees why."""
    return err.with_extra(current_status=row.status, current_curation=row.curation)


def _result(umkm_id: str, status: str, curation: str | None) -> dict[str, Any]:
    return {"id": umkm_id, "status": status, "curation": curation}


def verify(engine: Engine, settings: Settings, umkm_id: str, actor: Any) -> dict[str, Any]:
    """registered -> verified, by `actor` (recorded in the audit log)."""
    with uow(engine, settings) as u:
        row = _staff_locked(u.conn, umkm_id, actor)
        try:
            # A partner may have reported it on a platform already: then it is onboarded.
            new = domain.verify(row.status, bool(platforms_of(u.conn, [umkm_id])[umkm_id]))
        except domain.DomainError as e:
            raise _refused(e, row) from None
        now = utcnow()
        u.conn.execute(umkm.update().where(umkm.c.id == umkm_id)
                       .values(status=new, verified_at=now, updated_at=now))
        u.publish(contracts.UMKM_VERIFIED, {"umkm_id": umkm_id, "verified_at": now})
        audit.record(u.conn, actor, "umkm.verify", f"umkm:{umkm_id}")
    return _result(umkm_id, new, row.curation)


def onboard(engine: Engine, settings: Settings, umkm_id: str, platform: str,
            store_url: str, actor: Any) -> dict[str, Any]:
    """verified/onboarded -> onboarded on one more platform, recorded by `actor`."""
    with uow(engine, settings) as u:
        row = _staff_locked(u.conn, umkm_id, actor)
        try:
            new = domain.onboard(row.status)
        except domain.DomainError as e:
            raise _refused(e, row) from None
        existing = {p["platform"] for p in platforms_of(u.conn, [umkm_id])[umkm_id]}
        if platform in existing:
            raise conflict("already_onboarded", "UMKM sudah terdaftar di platform ini.",
                           "The UMKM is already onboarded on this platform.",
                           current_status=row.status, current_curation=row.curation)
        now = utcnow()
        u.conn.execute(umkm_platforms.insert().values(
            umkm_id=umkm_id, platform=platform, store_url=store_url, onboarded_at=now))
        u.conn.execute(umkm.update().where(umkm.c.id == umkm_id)
                       .values(status=new, updated_at=now))
        u.publish(contracts.UMKM_ONBOARDED, {"umkm_id": umkm_id, "platform": platform,
                                             "first_platform": not existing,
                                             "onboarded_at": now})
        audit.record(u.conn, actor, "umkm.onboard", f"umkm:{umkm_id}", platform=platform)
    return _result(umkm_id, new, row.curation)


def curate(engine: Engine, settings: Settings, umkm_id: str, decision: str,
           reason: str | None, actor: Any) -> dict[str, Any]:
    """Catalogue curation: approved / rejected (with a reason), by `actor`."""
    with uow(engine, settings) as u:
        row = _staff_locked(u.conn, umkm_id, actor)
        try:
            new = domain.curate(row.status, row.curation, decision)
        except domain.DomainError as e:
            raise _refused(e, row) from None
        now = utcnow()
        u.conn.execute(umkm.update().where(umkm.c.id == umkm_id).values(
            curation=new.value, curation_reason=reason, updated_at=now))
        u.publish(contracts.UMKM_CURATED, {"umkm_id": umkm_id, "decision": new.value,
                                           "previous_decision": row.curation,
                                           "curated_at": now})
        # The decision, not the reason: a free-text reason may name people.
        audit.record(u.conn, actor, "umkm.curate", f"umkm:{umkm_id}", decision=new.value)
    return _result(umkm_id, row.status, new.value)


def withdraw(engine: Engine, settings: Settings, umkm_id: str,
             owner: str | None = None, actor: Any = None) -> dict[str, Any]:
    """UU 27/2022 withdrawal: erase personal data, keep an anonymous row for the counts.
    `owner`: the calling owner's subject (None for an admin), who must own the business;
    `actor`: the admin withdrawing it instead (in scope, and recorded in the audit log)."""
    with uow(engine, settings) as u:
        row = _locked(u.conn, umkm_id) if actor is None else _staff_locked(u.conn, umkm_id, actor)
        if owner is not None and row.owner_subject != owner:
            raise not_owner()
        try:
            new = domain.withdraw(row.status)
        except domain.DomainError as e:
            raise _refused(e, row) from None
        now = utcnow()
        erased: dict[str, Any] = {k: None for k in PERSONAL}
        u.conn.execute(umkm.update().where(umkm.c.id == umkm_id)
                       .values(status=new, withdrawn_at=now, updated_at=now, **erased))
        # A store link points at the owner's shop: personal too.
        u.conn.execute(umkm_platforms.update().where(umkm_platforms.c.umkm_id == umkm_id)
                       .values(store_url=None))
        u.publish(contracts.UMKM_WITHDRAWN, {"umkm_id": umkm_id, "withdrawn_at": now})
        if actor is not None:
            audit.record(u.conn, actor, "umkm.withdraw", f"umkm:{umkm_id}")
    log.info("umkm withdrawn", extra={"umkm_id": umkm_id})
    return _result(umkm_id, new, row.curation)

