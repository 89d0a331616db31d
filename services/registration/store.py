"""Registration tables (SQLAlchemy Core) and repository functions taking a Connection."""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.common import audit
from services.common.db.engine import UtcDateTime, new_metadata
from services.common.http import ratelimit

metadata = new_metadata()
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


def get_umkm(conn: Connection, umkm_id: str, lock: bool = False) -> Any:
    """One registration row (locked for update on PostgreSQL when `lock`), or None."""
    q = sa.select(umkm).where(umkm.c.id == umkm_id)
    return conn.execute(q.with_for_update() if lock else q).first()


def platforms_of(conn: Connection, ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Onboarded platforms per business id."""
    out: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
    if not ids:
        return out
    rows = conn.execute(sa.select(umkm_platforms).where(umkm_platforms.c.umkm_id.in_(ids))
                        .order_by(umkm_platforms.c.onboarded_at, umkm_platforms.c.platform))
    for r in rows:
        out[r.umkm_id].append({"platform": r.platform, "store_url": r.store_url,
                               "onboarded_at": r.onboarded_at})
    return out


def find_duplicate(conn: Connection, nib: str | None, nik_hash: str,
                   name_norm: str) -> Any:
    """The live registration with this NIB, or this NIK hash and business name, or None."""
    cond = sa.and_(umkm.c.nik_hash == nik_hash, umkm.c.business_name_norm == name_norm)
    if nib:
        cond = sa.or_(cond, umkm.c.nib == nib)
    return conn.execute(sa.select(umkm.c.id, umkm.c.status, umkm.c.owner_subject)
                        .where(cond).limit(1)).first()


def owned_by(conn: Connection, subject: str, limit: int) -> list[Any]:
    """The businesses whose owner is this account subject, oldest first."""
    q = (sa.select(umkm).where(umkm.c.owner_subject == subject)
         .order_by(umkm.c.registered_at, umkm.c.id).limit(limit))
    return list(conn.execute(q))


def by_nib(conn: Connection, nib: str, lock: bool = False) -> Any:
    """The registration holding this NIB (one per business), or None."""
    q = sa.select(umkm).where(umkm.c.nib == nib)
    return conn.execute(q.with_for_update() if lock else q).first()


def partner_by_key_hash(conn: Connection, key_hash: str) -> Any:
    """The active partner holding this API key hash, or None."""
    return conn.execute(sa.select(partners).where(partners.c.api_key_hash == key_hash,
                                                  partners.c.active.is_(True))).first()
