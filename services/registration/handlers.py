"""Use cases of the registration service, each one unit of work (state + outbox events)."""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from services.common import contracts
from services.common.auth import hash_secret, issue_token
from services.common.config import Settings
from services.common.db import is_unique_violation, new_id, utcnow
from services.common.errors import ApiError, conflict, not_found
from services.common.uow import UnitOfWork
from services.registration import domain
from services.registration.store import (
    find_duplicate,
    get_umkm,
    metadata,
    platforms_of,
    umkm,
)
from services.registration.views import split_platforms, view

log = logging.getLogger(__name__)
SOURCE = "registration"
PERSONAL = ("business_name", "business_name_norm", "owner_name", "nik_hash", "nik_last4", "nib",
            "npwp", "phone", "email", "address", "postal_code", "mentor_org", "partner_ref",
            "capital_idr", "annual_sales_idr", "curation_reason")


def uow(engine: Engine, settings: Settings) -> UnitOfWork:
    return UnitOfWork(engine, metadata, SOURCE, settings.topic_prefix)


def nik_hash(settings: Settings, nik: str) -> str:
    """Keyed hash of a NIK: equal NIKs match, the NIK cannot be recovered without the key."""
    return hash_secret(settings.pii_hash_key, "nik:" + nik)


def new_row(settings: Settings, data: dict[str, Any], now: datetime, channel: str = "public",
            status: str = "registered", partner_code: str | None = None) -> dict[str, Any]:
    """A umkm row from a validated registration (the NIK itself is not kept)."""
    return {
        "id": new_id(), "status": status, "channel": channel, "partner_code": partner_code,
        "partner_ref": data.get("merchant_ref"), "business_name": data["business_name"],
        "business_name_norm": domain.normalise_business_name(data["business_name"]),
        "owner_name": data["owner_name"], "nik_hash": nik_hash(settings, data["nik"]),
        "nik_last4": data["nik"][-4:], "nib": data["nib"], "npwp": data["npwp"],
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
    """bbi.umkm.registered.v1 data: attributes only, no personal data."""
    return {"umkm_id": row["id"], "province_code": row["province_code"],
            "regency_code": row["regency_code"], "scale": row["scale"],
            "kbli_section": row["kbli_section"], "kbli_code": row["kbli_code"],
            "platforms_declared": split_platforms(row["platforms_declared"]),
            "qris": row["qris"], "channel": row["channel"],
            "partner_code": row["partner_code"], "registered_at": row["registered_at"]}


def already_registered(umkm_id: str, status: str) -> ApiError:
    return conflict("already_registered",
                    "Usaha ini sudah terdaftar; lihat status pendaftaran yang ada.",
                    "This business is already registered; see the existing registration.",
                    id=umkm_id, current_status=status)


def register(engine: Engine, settings: Settings, data: dict[str, Any]) -> dict[str, Any]:
    """Public registration: one row + `registered`; a duplicate is a 409, never a second row."""
    row = new_row(settings, data, utcnow())
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
        raise already_registered(dup.id, dup.status) from None
    log.info("umkm registered", extra={"umkm_id": row["id"], "channel": "public"})
    token = issue_token(settings, row["id"], "umkm")
    return {"id": row["id"], "status": row["status"], "scale": row["scale"],
            "access_token": token, "token_type": "Bearer"}


def get(engine: Engine, umkm_id: str, operator: bool) -> dict[str, Any]:
    """One registration as the caller may see it."""
    with engine.connect() as conn:
        row = get_umkm(conn, umkm_id)
        if row is None:
            raise not_found("umkm")
        return view(row, platforms_of(conn, [umkm_id])[umkm_id], operator)
