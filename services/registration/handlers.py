"""Use cases of the registration service, each one unit of work (state + outbox events)."""
from __future__ import annotations

import hmac
import logging
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from services.common import audit
from services.common.config import Settings
from services.common.db.engine import is_unique_violation, new_id, utcnow
from services.common.http.auth import hash_secret
from services.common.http.errors import ApiError, conflict, not_found
from services.common.messaging import contracts
from services.common.messaging.uow import UnitOfWork
from services.registration import domain
from services.registration.store import (
    by_nib,
    find_duplicate,
    get_umkm,
    metadata,
    owned_by,
    platforms_of,
    umkm,
)
from services.registration.views import split_platforms, view

log = logging.getLogger(__name__)
SOURCE = "registration"
PERSONAL = ("business_name", "business_name_norm", "owner_name", "nik_hash", "nik_last4", "nib",
            "npwp", "phone", "email", "address", "postal_code", "mentor_org", "partner_ref",
            "capital_idr", "annual_sales_idr", "curation_reason", "owner_subject",
            "npwp_nik_hash", "npwp_last4")


def uow(engine: Engine, settings: Settings) -> UnitOfWork:
    return UnitOfWork(engine, metadata, SOURCE, settings.topic_prefix)


def nik_hash(settings: Settings, nik: str) -> str:
    """Keyed hash of a NIK: equal NIKs match, the NIK cannot be recovered without the key."""
    return hash_secret(settings.pii_hash_key, "nik:" + nik)


def new_row(settings: Settings, data: dict[str, Any], now: datetime, channel: str = "public",
            status: str = "registered", partner_code: str | None = None,
            owner_subject: str | None = None) -> dict[str, Any]:
    """A umkm row from a validated registration (the NIK itself is not kept, nor an NPWP that
    is a NIK)."""
    npwp = data["npwp"]
    nik_form = npwp is not None and domain.npwp_is_nik(npwp)
    return {
        "id": new_id(), "status": status, "channel": channel, "partner_code": partner_code,
        "owner_subject": owner_subject, "claimed_at": None,
        "partner_ref": data.get("merchant_ref"), "business_name": data["business_name"],
        "business_name_norm": domain.normalise_business_name(data["business_name"]),
        "owner_name": data["owner_name"], "nik_hash": nik_hash(settings, data["nik"]),
        "nik_last4": data["nik"][-4:], "nib": data["nib"],
        "npwp": None if nik_form else npwp,
        "npwp_nik_hash": nik_hash(settings, npwp) if nik_form else None,
        "npwp_last4": npwp[-4:] if nik_form else None,
        "phone": data["phone"], "email": data["email"], "address": data["address"],
        "postal_code": data["postal_code"], "mentor_org": data["mentor_org"],
        "province_code": data["province_code"], "regency_code": data["regency_code"],
        "kbli_code": data["kbli_code"], "kbli_section": data["kbli_section"],
        "capital_idr": data["capital_idr"], "annual_sales_idr": data["annual_sales_idr"],
        "scale": data["scale"], "platforms_declared": ",".join(data["platforms"]),
        "qris": data["qris"], "consent_version": data["consent_version"], "consent_at": now,
        "registered_at": now, "updated_at": now,
    }


def registered_event(row: dict[str, Any]) -> dict[str, Any]:
    """bbi.umkm.registered.v1 data: attributes, the owner's pseudonymous account subject and
    what a public catalogue shows (trade name, NIB); no personal data."""
    return {"umkm_id": row["id"], "province_code": row["province_code"],
            "regency_code": row["regency_code"], "scale": row["scale"],
            "kbli_section": row["kbli_section"], "kbli_code": row["kbli_code"],
            "platforms_declared": split_platforms(row["platforms_declared"]),
            "qris": row["qris"], "channel": row["channel"],
            "partner_code": row["partner_code"], "registered_at": row["registered_at"],
            "owner_subject": row["owner_subject"], "trade_name": row["business_name"],
            "nib": row["nib"]}


def already_registered(umkm_id: str, status: str, claimable: bool = False) -> ApiError:
    """409 pointing at the existing registration; `claimable` when it has no owner yet (its
    owner can take it over with NIK + NIB, POST /v1/umkm/claims)."""
    return conflict("already_registered",
                    "Usaha ini sudah terdaftar; lihat status pendaftaran yang ada.",
                    "This business is already registered; see the existing registration.",
                    id=umkm_id, current_status=status, claimable=claimable)


def not_owner() -> ApiError:
    return ApiError(403, "not_owner", "UMKM ini bukan milik akun Anda.",
                    "This business does not belong to your account.")


def register(engine: Engine, settings: Settings, data: dict[str, Any],
             owner_subject: str) -> dict[str, Any]:
    """Public registration by a signed-in owner: one row + `registered`; a duplicate is a 409,
    never a second row."""
    row = new_row(settings, data, utcnow(), owner_subject=owner_subject)
    try:
        # No SELECT for a duplicate first: the unique constraints (NIB; NIK hash + name) decide
        # in every case, and a look-up before each insert cost a round trip on every request
        # for the rare duplicate (bench/notes/registration_http.md). The row is passed as
        # parameters of the cached `umkm.insert()`, not compiled into a new statement.
        with uow(engine, settings) as u:
            u.conn.execute(umkm.insert(), row)
            u.publish(contracts.UMKM_REGISTERED, registered_event(row))
    except sa.exc.IntegrityError as exc:
        # A registration with this NIB or NIK + name exists (or committed in parallel).
        if not is_unique_violation(exc):
            raise
        with engine.connect() as conn:
            dup = find_duplicate(conn, row["nib"], row["nik_hash"], row["business_name_norm"])
        if dup is None:
            raise
        raise already_registered(dup.id, dup.status,
                                 dup.owner_subject is None and dup.status != "withdrawn") \
            from None
    log.info("umkm registered", extra={"umkm_id": row["id"], "channel": "public"})
    return {"id": row["id"], "status": row["status"], "scale": row["scale"]}


def get(engine: Engine, umkm_id: str, owner: str | None) -> dict[str, Any]:
    """One registration as the caller may see it: its owner (`owner` = the caller's subject)
    sees the owner's view, an operator (`owner` None) also the personal fields."""
    with engine.connect() as conn:
        row = get_umkm(conn, umkm_id)
        if row is None:
            raise not_found("umkm")
        if owner is not None and row.owner_subject != owner:
            raise not_owner()
        return view(row, platforms_of(conn, [umkm_id])[umkm_id], operator=owner is None)


def owned(engine: Engine, owner: str, limit: int) -> dict[str, Any]:
    """The signed-in owner's businesses, each with where it is in its lifecycle."""
    with engine.connect() as conn:
        rows = owned_by(conn, owner, limit)
        plats = platforms_of(conn, [r.id for r in rows])
    return {"items": [view(r, plats[r.id], operator=False) for r in rows]}


def claim(engine: Engine, settings: Settings, owner: str, nik: str, nib: str) -> dict[str, Any]:
    """A signed-in owner takes over a business without an owner (partner-reported, or from
    before owners signed in) by proving its NIK and NIB; `claimed` tells the directories.
    Every attempt, refused or not, leaves an audit row (actor, outcome, business id; never
    the NIK or NIB tried): a refusal commits its row and nothing else, then answers."""
    proof = nik_hash(settings, nik)
    actor = audit.Actor(owner, "umkm")
    refused: ApiError | None = None
    with uow(engine, settings) as u:
        row = by_nib(u.conn, nib, lock=True)
        # One answer for an unknown NIB and a wrong NIK: a guess learns nothing about which.
        if row is None or row.status == "withdrawn" or row.nik_hash is None or \
                not hmac.compare_digest(row.nik_hash, proof):
            audit.record(u.conn, actor, "umkm.claim", "umkm", outcome="no_match")
            refused = ApiError(404, "claim_no_match",
                               "Tidak ada usaha dengan NIK dan NIB tersebut.",
                               "No business matches this NIK and NIB.")
        elif row.owner_subject not in (None, owner):
            audit.record(u.conn, actor, "umkm.claim", f"umkm:{row.id}",
                         outcome="already_claimed")
            refused = conflict("already_claimed", "Usaha ini sudah dimiliki akun lain.",
                               "This business already belongs to another account.")
        else:
            if row.owner_subject is None:
                now = utcnow()
                u.conn.execute(umkm.update().where(umkm.c.id == row.id).values(
                    owner_subject=owner, claimed_at=now, updated_at=now))
                u.publish(contracts.UMKM_CLAIMED, {"umkm_id": row.id, "owner_subject": owner,
                                                   "claimed_at": now})
            audit.record(u.conn, actor, "umkm.claim", f"umkm:{row.id}",
                         outcome="claimed" if row.owner_subject is None else "already_own")
            fresh = get_umkm(u.conn, row.id)
            answer = view(fresh, platforms_of(u.conn, [row.id])[row.id], operator=False)
    if refused is not None:
        raise refused
    return answer
