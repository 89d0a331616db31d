"""Read model of registered businesses, kept from `bbi.umkm` events by the services that
must know whether a business may enrol or sell (training, campaign). No personal data."""
from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.common.db import UtcDateTime, utcnow
from services.common.events import Event

TABLE = "umkm_directory"


@dataclass(frozen=True)
class KnownUmkm:
    umkm_id: str
    province_code: str
    status: str  # "registered" or "withdrawn"

    @property
    def active(self) -> bool:
        return self.status != "withdrawn"


def add_umkm_directory(md: sa.MetaData) -> sa.Table:
    """Define the read-model table on a service's metadata."""
    return sa.Table(
        TABLE, md,
        sa.Column("umkm_id", sa.String(36), primary_key=True),
        sa.Column("province_code", sa.String(2), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
    )


_MD = sa.MetaData()
_TABLE = add_umkm_directory(_MD)  # same columns as every service's copy: used for statements


def on_registered(conn: Connection, event: Event) -> None:
    """Insert the business; a later withdrawal that arrived first is never undone."""
    t = _TABLE
    uid, province = event.data["umkm_id"], event.data["province_code"]
    exists = conn.execute(sa.select(t.c.status).where(t.c.umkm_id == uid)).first()
    if exists is None:
        conn.execute(t.insert().values(umkm_id=uid, province_code=province,
                                       status="registered", updated_at=utcnow()))


def on_withdrawn(conn: Connection, event: Event) -> None:
    """Mark withdrawn (the business can no longer enrol or be bought from)."""
    t = _TABLE
    uid = event.data["umkm_id"]
    done = conn.execute(t.update().where(t.c.umkm_id == uid)
                        .values(status="withdrawn", updated_at=utcnow())).rowcount
    if not done:
        # Withdrawal before registration arrived (other partition order): remember it.
        conn.execute(t.insert().values(umkm_id=uid, province_code="00", status="withdrawn",
                                       updated_at=utcnow()))


def find(conn: Connection, umkm_id: str) -> KnownUmkm | None:
    """The business as this service knows it, or None if its registration has not arrived."""
    t = _TABLE
    row = conn.execute(sa.select(t.c.umkm_id, t.c.province_code, t.c.status)
                       .where(t.c.umkm_id == str(umkm_id))).first()
    return KnownUmkm(row.umkm_id, row.province_code, row.status) if row else None
