"""Write use cases of the registration service: each one unit of work (state + outbox events)
through the repository in store.py. Partner platforms' use cases are in partner/handlers.py."""
from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from services.common import audit
from services.common.config import Settings
from services.common.db.engine import is_unique_violation, utcnow
from services.common.http.errors import conflict, not_found
from services.common.messaging import contracts
from services.common.messaging.uow import UnitOfWork
from services.registration import domain, store
from services.registration import scope as scopes
from services.registration.queries import visible_fields
from services.registration.store import Umkm, metadata

log = logging.getLogger(__name__)
T = TypeVar("T")
SOURCE = "registration"


def uow(engine: Engine, settings: Settings) -> UnitOfWork:
    return UnitOfWork(engine, metadata, SOURCE, settings.topic_prefix)


def registered_event(row: dict[str, Any]) -> dict[str, Any]:
    """bbi.umkm.registered.v1 data: attributes, the owner's pseudonymous account subject and
    what a public catalogue shows (trade name, NIB); no personal data."""
    return {"umkm_id": row["id"], "province_code": row["province_code"],
            "regency_code": row["regency_code"], "scale": row["scale"],
            "kbli_section": row["kbli_section"], "kbli_code": row["kbli_code"],
            "platforms_declared": store.split_platforms(row["platforms_declared"]),
            "qris": row["qris"], "channel": row["channel"],
            "partner_code": row["partner_code"], "registered_at": row["registered_at"],
            "owner_subject": row["owner_subject"], "trade_name": row["business_name"],
            "nib": row["nib"]}


def already_registered(umkm_id: str, status: str,
                       claimable: bool = False) -> domain.DomainError:
    """409 pointing at the existing registration; `claimable` when it has no owner yet (its
    owner can take it over with NIK + NIB, POST /v1/umkm/claims)."""
    return conflict("already_registered",
                    "Usaha ini sudah terdaftar; lihat status pendaftaran yang ada.",
                    "This business is already registered; see the existing registration.",
                    id=umkm_id, current_status=status, claimable=claimable)


def register(engine: Engine, settings: Settings, data: dict[str, Any],
             owner_subject: str) -> dict[str, Any]:
    """Public registration by a signed-in owner: one row + `registered`; a duplicate is a 409,
    never a second row."""
    row = store.new_row(settings, data, utcnow(), owner_subject=owner_subject)
    try:
        # No SELECT for a duplicate first: the unique constraints (NIB; NIK hash + name) decide
        # in every case, and a look-up before each insert cost a round trip on every request
        # for the rare duplicate (bench/notes/registration_http.md).
        with uow(engine, settings) as u:
            store.insert_umkm(u.conn, row)
            u.publish(contracts.UMKM_REGISTERED, registered_event(row))
    except sa.exc.IntegrityError as exc:
        # A registration with this NIB or NIK + name exists (or committed in parallel).
        if not is_unique_violation(exc):
            raise
        with engine.connect() as conn:
            dup = store.find_duplicate(conn, row["nib"], row["nik_hash"],
                                       row["business_name_norm"])
        if dup is None:
            raise
        raise already_registered(dup.id, dup.status,
                                 dup.owner_subject is None and dup.status != "withdrawn") \
            from None
    log.info("umkm registered", extra={"umkm_id": row["id"], "channel": "public"})
    return {"id": row["id"], "status": row["status"], "scale": row["scale"]}


def claim(engine: Engine, settings: Settings, owner: str, nik: str, nib: str) -> dict[str, Any]:
    """A signed-in owner takes over a business without an owner (partner-reported, or from
    before owners signed in) by proving its NIK and NIB; `claimed` tells the directories.
    Every attempt, refused or not, leaves an audit row (actor, outcome, business id; never
    the NIK or NIB tried): a refusal commits its row and nothing else, then answers."""
    proof, actor = store.nik_hash(settings, nik), audit.Actor(owner, "umkm")
    refused: domain.DomainError | None = None
    with uow(engine, settings) as u:
        row = store.by_nib(u.conn, nib, lock=True)
        # One answer for an unknown NIB and a wrong NIK: a guess learns nothing about which.
        if row is None or row.status == "withdrawn" or row.nik_hash is None or \
                not hmac.compare_digest(row.nik_hash, proof):
            audit.record(u.conn, actor, "umkm.claim", "umkm", outcome="no_match")
            refused = domain.DomainError(
                "claim_no_match", "Tidak ada usaha dengan NIK dan NIB tersebut.",
                "No business matches this NIK and NIB.", "not_found")
        elif row.owner_subject not in (None, owner):
            audit.record(u.conn, actor, "umkm.claim", f"umkm:{row.id}", outcome="already_claimed")
            refused = conflict("already_claimed", "Usaha ini sudah dimiliki akun lain.",
                               "This business already belongs to another account.")
        else:
            if row.owner_subject is None:
                now = utcnow()
                store.update_umkm(u.conn, row.id, owner_subject=owner, claimed_at=now,
                                  updated_at=now)
                u.publish(contracts.UMKM_CLAIMED, {"umkm_id": row.id, "owner_subject": owner,
                                                   "claimed_at": now})
            audit.record(u.conn, actor, "umkm.claim", f"umkm:{row.id}",
                         outcome="claimed" if row.owner_subject is None else "already_own")
            answer = _owner_fields(u.conn, row.id)
    if refused is not None:
        raise refused
    return answer


def verify(engine: Engine, settings: Settings, umkm_id: str, actor: Any) -> dict[str, Any]:
    """registered -> verified, by `actor` (recorded in the audit log). A partner may have
    reported it on a platform already: then it is onboarded."""
    with uow(engine, settings) as u:
        row = _staff_locked(u.conn, umkm_id, actor)
        on_a_platform = bool(store.platform_names(u.conn, [umkm_id])[umkm_id])
        new = _rule(row, domain.verify, row.status, on_a_platform)
        now = utcnow()
        store.update_umkm(u.conn, umkm_id, status=new, verified_at=now, updated_at=now)
        u.publish(contracts.UMKM_VERIFIED, {"umkm_id": umkm_id, "verified_at": now})
        audit.record(u.conn, actor, "umkm.verify", f"umkm:{umkm_id}")
    return _result(umkm_id, new, row.curation)


def onboard(engine: Engine, settings: Settings, umkm_id: str, platform: str,
            store_url: str, actor: Any) -> dict[str, Any]:
    """verified/onboarded -> onboarded on one more platform, recorded by `actor`."""
    with uow(engine, settings) as u:
        row = _staff_locked(u.conn, umkm_id, actor)
        new = _rule(row, domain.onboard, row.status)
        existing = store.platform_names(u.conn, [umkm_id])[umkm_id]
        if platform in existing:
            raise conflict("already_onboarded", "UMKM sudah terdaftar di platform ini.",
                           "The UMKM is already onboarded on this platform.",
                           current_status=row.status, current_curation=row.curation)
        now = utcnow()
        store.add_platform(u.conn, umkm_id, platform, store_url, now)
        store.update_umkm(u.conn, umkm_id, status=new, updated_at=now)
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
        new = _rule(row, domain.curate, row.status, row.curation, decision).value
        now = utcnow()
        store.update_umkm(u.conn, umkm_id, curation=new, curation_reason=reason, updated_at=now)
        u.publish(contracts.UMKM_CURATED, {"umkm_id": umkm_id, "decision": new,
                                           "previous_decision": row.curation,
                                           "curated_at": now})
        # The decision, not the reason: a free-text reason may name people.
        audit.record(u.conn, actor, "umkm.curate", f"umkm:{umkm_id}", decision=new)
    return _result(umkm_id, row.status, new)


def withdraw(engine: Engine, settings: Settings, umkm_id: str,
             owner: str | None = None, actor: Any = None) -> dict[str, Any]:
    """UU 27/2022 withdrawal: erase personal data, keep an anonymous row for the counts.
    `owner`: the calling owner's subject (None for an admin), who must own the business;
    `actor`: the admin withdrawing it instead (in scope, and recorded in the audit log)."""
    with uow(engine, settings) as u:
        row = _locked(u.conn, umkm_id) if actor is None else _staff_locked(u.conn, umkm_id, actor)
        scopes.check_owner(row, owner)
        new = _rule(row, domain.withdraw, row.status)
        now = utcnow()
        store.erase_personal(u.conn, umkm_id, status=new, withdrawn_at=now, updated_at=now)
        u.publish(contracts.UMKM_WITHDRAWN, {"umkm_id": umkm_id, "withdrawn_at": now})
        if actor is not None:
            audit.record(u.conn, actor, "umkm.withdraw", f"umkm:{umkm_id}")
    log.info("umkm withdrawn", extra={"umkm_id": umkm_id})
    return _result(umkm_id, new, row.curation)


def _locked(conn: Connection, umkm_id: str) -> Umkm:
    row = store.get_umkm(conn, umkm_id, lock=True)
    if row is None:
        raise not_found("umkm")
    return row


def _staff_locked(conn: Connection, umkm_id: str, actor: Any) -> Umkm:
    """The locked row for an operator/admin action: 404 outside the actor's province."""
    row = _locked(conn, umkm_id)
    scopes.check_row(scopes.of(actor), row)
    return row


def _rule(row: Umkm, rule: Callable[..., T], *args: Any) -> T:
    """The lifecycle rule's answer; a refusal is a conflict naming the current state, so the
    caller can see why."""
    try:
        return rule(*args)
    except domain.DomainError as e:
        raise e.with_extra(current_status=row.status, current_curation=row.curation) from None


def _owner_fields(conn: Connection, umkm_id: str) -> dict[str, Any]:
    """What the owner sees of the business, as it is now in this transaction."""
    row = store.get_umkm(conn, umkm_id)
    assert row is not None  # read under the caller's lock
    return visible_fields(row, store.platforms_of(conn, [umkm_id])[umkm_id], operator=False)


def _result(umkm_id: str, status: str, curation: str | None) -> dict[str, Any]:
    return {"id": umkm_id, "status": status, "curation": curation}
