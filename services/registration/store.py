"""Registration tables (SQLAlchemy Core) and the repository: every statement the use cases
run, as functions taking a Connection."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from services.common import audit
from services.common.config import Settings
from services.common.db.dialect import any_of
from services.common.db.engine import UtcDateTime, bulk_insert, new_id, new_metadata
from services.common.http import ratelimit
from services.common.http.auth import hash_secret
from services.registration import domain

metadata = new_metadata()
# A `umkm` (or `partners`) row, or some of its columns: attribute access by column name.
Umkm = Row[*tuple[Any, ...]]
# Rows per duplicate-lookup query: 3 parameters a row stays below SQLite's 32,766 and
# PostgreSQL's 65,535 bind limits, so a full 10,000-merchant batch is one query.
LOOKUP_CHUNK = 10_000
audit_log = audit.add_table(metadata)  # operator/admin actions, reads of personal data
_Money = sa.BigInteger  # rupiah, whole numbers; capital reaches 10^10

umkm = sa.Table(
    "umkm", metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("status", sa.String(12), nullable=False),
    sa.Column("curation", sa.String(10)),
    sa.Column("curation_reason", sa.Text),
    sa.Column("channel", sa.String(10), nullable=False),
    sa.Column("partner_code", sa.String(40)),
    sa.Column("partner_ref", sa.String(100)),
    # The owner's account subject at the identity provider (pseudonymous). NULL = unknown:
    # a partner-reported merchant, or a row from before owners signed in, until claimed.
    sa.Column("owner_subject", sa.String(128)),
    sa.Column("claimed_at", UtcDateTime),
    # Personal data: set to NULL on withdrawal (UU 27/2022).
    sa.Column("business_name", sa.String(200)),
    sa.Column("business_name_norm", sa.String(200)),
    sa.Column("owner_name", sa.String(200)),
    sa.Column("nik_hash", sa.String(64)),  # keyed HMAC: duplicate detection, never the NIK
    sa.Column("nik_last4", sa.String(4)),
    sa.Column("nib", sa.String(13)),
    sa.Column("npwp", sa.String(16)),  # a legacy (0...) NPWP only: never one that is a NIK
    # An NPWP that is the owner's NIK: keyed hash (for matching) and last four (masked display).
    sa.Column("npwp_nik_hash", sa.String(64)),
    sa.Column("npwp_last4", sa.String(4)),
    sa.Column("phone", sa.String(20)),
    sa.Column("email", sa.String(254)),
    sa.Column("address", sa.Text),
    sa.Column("postal_code", sa.String(5)),
    sa.Column("mentor_org", sa.String(200)),
    # Non-personal attributes: kept after withdrawal so counts stay correct.
    sa.Column("province_code", sa.String(2), nullable=False),
    sa.Column("regency_code", sa.String(4), nullable=False),
    sa.Column("kbli_code", sa.String(5), nullable=False),
    sa.Column("kbli_section", sa.String(1), nullable=False),
    sa.Column("capital_idr", _Money),
    sa.Column("annual_sales_idr", _Money),
    sa.Column("scale", sa.String(10), nullable=False),
    sa.Column("platforms_declared", sa.Text, nullable=False, server_default=""),
    sa.Column("qris", sa.Boolean, nullable=False),
    sa.Column("consent_version", sa.String(40), nullable=False),
    sa.Column("consent_at", UtcDateTime, nullable=False),
    sa.Column("registered_at", UtcDateTime, nullable=False),
    sa.Column("verified_at", UtcDateTime),
    sa.Column("withdrawn_at", UtcDateTime),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    # The database, not a prior SELECT, is what makes duplicates impossible under concurrency.
    sa.UniqueConstraint("nib", name="uq_umkm_nib"),
    sa.UniqueConstraint("nik_hash", "business_name_norm", name="uq_umkm_nik_name"),
    sa.UniqueConstraint("partner_code", "partner_ref", name="uq_umkm_partner_ref"),
    sa.Index("ix_umkm_registered", "registered_at", "id"),
    sa.Index("ix_umkm_province_status", "province_code", "status"),
    sa.Index("ix_umkm_owner_subject", "owner_subject"),
)

umkm_platforms = sa.Table(
    "umkm_platforms", metadata,
    sa.Column("umkm_id", sa.String(36), sa.ForeignKey("umkm.id"), primary_key=True),
    sa.Column("platform", sa.String(40), primary_key=True),
    sa.Column("store_url", sa.String(500)),
    sa.Column("onboarded_at", UtcDateTime, nullable=False),
)

partners = sa.Table(
    "partners", metadata,
    sa.Column("code", sa.String(40), primary_key=True),
    sa.Column("platform", sa.String(40), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("api_key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("created_at", UtcDateTime, nullable=False),
)

# Fixed-window counters shared by every gunicorn worker (and every replica).
rate_limits = ratelimit.add_table(metadata)


def get_umkm(conn: Connection, umkm_id: str, lock: bool = False) -> Umkm | None:
    """One registration row (locked for update on PostgreSQL when `lock`), or None."""
    q = sa.select(umkm).where(umkm.c.id == umkm_id)
    return conn.execute(q.with_for_update() if lock else q).first()


def platforms_of(conn: Connection, ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Onboarded platforms per business id."""
    out: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
    if not ids:
        return out
    rows = conn.execute(sa.select(umkm_platforms).where(any_of(conn, umkm_platforms.c.umkm_id, ids))
                        .order_by(umkm_platforms.c.onboarded_at, umkm_platforms.c.platform))
    for r in rows:
        out[r.umkm_id].append({"platform": r.platform, "store_url": r.store_url,
                               "onboarded_at": r.onboarded_at})
    return out


def find_duplicate(conn: Connection, nib: str | None, nik_hash: str,
                   name_norm: str) -> Umkm | None:
    """The live registration with this NIB, or this NIK hash and business name, or None."""
    cond = sa.and_(umkm.c.nik_hash == nik_hash, umkm.c.business_name_norm == name_norm)
    if nib:
        cond = sa.or_(cond, umkm.c.nib == nib)
    return conn.execute(sa.select(umkm.c.id, umkm.c.status, umkm.c.owner_subject)
                        .where(cond).limit(1)).first()


def owned_by(conn: Connection, subject: str, limit: int) -> list[Umkm]:
    """The businesses whose owner is this account subject, oldest first."""
    q = (sa.select(umkm).where(umkm.c.owner_subject == subject)
         .order_by(umkm.c.registered_at, umkm.c.id).limit(limit))
    return list(conn.execute(q))


def by_nib(conn: Connection, nib: str, lock: bool = False) -> Umkm | None:
    """The registration holding this NIB (one per business), or None."""
    q = sa.select(umkm).where(umkm.c.nib == nib)
    return conn.execute(q.with_for_update() if lock else q).first()


def partner_by_key_hash(conn: Connection, key_hash: str) -> Umkm | None:
    """The active partner holding this API key hash, or None."""
    return conn.execute(sa.select(partners).where(partners.c.api_key_hash == key_hash,
                                                  partners.c.active.is_(True))).first()

# Erased on withdrawal (UU 27/2022); the non-personal attributes stay for the counts.
PERSONAL = ("business_name", "business_name_norm", "owner_name", "nik_hash", "nik_last4", "nib",
            "npwp", "phone", "email", "address", "postal_code", "mentor_org", "partner_ref",
            "capital_idr", "annual_sales_idr", "curation_reason", "owner_subject",
            "npwp_nik_hash", "npwp_last4")


def split_platforms(text: str | None) -> list[str]:
    """Declared platforms are stored as comma-separated codes (a bounded fixed list)."""
    return [p for p in (text or "").split(",") if p]


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


def insert_umkm(conn: Connection, row: dict[str, Any]) -> None:
    """One new registration. The row goes as parameters of the cached `umkm.insert()`, not
    compiled into a new statement (bench/notes/registration_http.md)."""
    conn.execute(umkm.insert(), row)


def update_umkm(conn: Connection, umkm_id: str, **values: Any) -> None:
    conn.execute(umkm.update().where(umkm.c.id == umkm_id).values(**values))


def add_platform(conn: Connection, umkm_id: str, platform: str, store_url: str | None,
                 now: datetime) -> None:
    conn.execute(umkm_platforms.insert().values(umkm_id=umkm_id, platform=platform,
                                                store_url=store_url, onboarded_at=now))


def erase_personal(conn: Connection, umkm_id: str, **values: Any) -> None:
    """Withdrawal: every personal column to NULL, and the store links (a link points at the
    owner's shop: personal too)."""
    update_umkm(conn, umkm_id, **values, **dict.fromkeys(PERSONAL))
    conn.execute(umkm_platforms.update().where(umkm_platforms.c.umkm_id == umkm_id)
                 .values(store_url=None))


def platform_names(conn: Connection, ids: Iterable[str]) -> dict[str, set[str]]:
    """The platforms each business is onboarded on (names only)."""
    return {i: {p["platform"] for p in plats} for i, plats in platforms_of(conn, list(ids)).items()}


def add_businesses(conn: Connection, rows: list[dict[str, Any]],
                   platforms: list[dict[str, Any]]) -> None:
    """New businesses in bulk (one COPY per table on PostgreSQL), then their platforms (the
    foreign key)."""
    bulk_insert(conn, umkm, rows)
    bulk_insert(conn, umkm_platforms, platforms)


def insert_partner(conn: Connection, code: str, platform: str, name: str, key_hash: str,
                   now: datetime) -> None:
    conn.execute(partners.insert().values(code=code, platform=platform, name=name,
                                          api_key_hash=key_hash, active=True, created_at=now))



def dedupe_keys(row: dict[str, Any]) -> list[tuple[str, ...]]:
    """The keys a new row matches an existing business by: this partner's reference, the
    owner's NIK hash with the business name, the NIB."""
    keys = [("ref", row["partner_ref"]), ("nik", row["nik_hash"], row["business_name_norm"])]
    return keys + ([("nib", row["nib"])] if row["nib"] else [])


def existing_matches(conn: Connection, code: str,
                     rows: list[dict[str, Any]]) -> dict[tuple[str, ...], Umkm]:
    """Every live registration matching any row, by each of its dedupe keys: one set-based
    query per LOOKUP_CHUNK rows."""
    found: dict[tuple[str, ...], Umkm] = {}
    c = umkm.c
    for n in range(0, len(rows), LOOKUP_CHUNK):
        chunk = rows[n:n + LOOKUP_CHUNK]
        refs = [r["partner_ref"] for r in chunk]
        nibs = [r["nib"] for r in chunk if r["nib"]]
        niks = list({r["nik_hash"] for r in chunk})
        q = sa.select(c.id, c.status, c.nib, c.nik_hash, c.business_name_norm, c.partner_code,
                      c.partner_ref).where(sa.or_(
                          sa.and_(c.partner_code == code, any_of(conn, c.partner_ref, refs)),
                          any_of(conn, c.nib, nibs), any_of(conn, c.nik_hash, niks)))
        for e in conn.execute(q):
            if e.partner_code == code and e.partner_ref:
                found[("ref", e.partner_ref)] = e
            if e.nib:
                found[("nib", e.nib)] = e
            if e.nik_hash:
                found[("nik", e.nik_hash, e.business_name_norm)] = e
    return found


def lock_statuses(conn: Connection, ids: list[str]) -> dict[str, str]:
    """The status of each of these businesses, rows locked (in id order: no deadlock between
    two batches) until the transaction ends."""
    q = (sa.select(umkm.c.id, umkm.c.status).where(any_of(conn, umkm.c.id, ids))
         .order_by(umkm.c.id).with_for_update())
    return {r.id: r.status for r in conn.execute(q)}
