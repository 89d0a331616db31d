"""Campaign tables (SQLAlchemy Core) and the repository: every statement the handlers and
queries run."""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.common import audit, umkm_directory
from services.common.db import dialect
from services.common.db.engine import UtcDateTime, new_id, new_metadata

Row = sa.Row[*tuple[Any, ...]]  # a row of these tables (any columns), read by column name
metadata = new_metadata()
audit_log = audit.add_table(metadata)  # operator/admin actions, reads of personal data
umkm_directory.add_umkm_directory(metadata)  # the read model of registered businesses
_money = sa.BigInteger  # rupiah: a whole ministry's spending overflows 32 bits

campaigns = sa.Table(
    "campaigns", metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("code", sa.String(63), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("starts_at", UtcDateTime, nullable=False),
    sa.Column("ends_at", UtcDateTime, nullable=False),
    sa.Column("band_min_idr", _money, nullable=False),
    sa.Column("band_max_idr", _money, nullable=False),
    sa.Column("eligible_agencies", sa.JSON, nullable=False),
    sa.Column("eligible_regions", sa.JSON, nullable=False),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("opened_at", UtcDateTime),
    sa.Column("closed_at", UtcDateTime),
)

# One row per official who joined; the official is a pseudonym, never the NIP.
participants = sa.Table(
    "participants", metadata,
    sa.Column("campaign_id", sa.String(36), sa.ForeignKey("campaigns.id"), primary_key=True),
    sa.Column("official_id", sa.String(32), primary_key=True),
    sa.Column("agency", sa.String(100), nullable=False),
    sa.Column("region", sa.String(2), nullable=False),
    # Maintained only by atomic conditional UPDATEs (the band check is in the WHERE clause).
    sa.Column("spent_idr", _money, nullable=False, server_default="0"),
    sa.Column("joined_at", UtcDateTime, nullable=False),
    sa.Index("ix_participants_campaign_agency", "campaign_id", "agency"),
)

purchases = sa.Table(
    "purchases", metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("campaign_id", sa.String(36), sa.ForeignKey("campaigns.id"), nullable=False),
    sa.Column("official_id", sa.String(32), nullable=False),
    sa.Column("agency", sa.String(100), nullable=False),
    # NULL once the business withdrew (PDP law): the purchase still counts, unattributed.
    sa.Column("umkm_id", sa.String(36), nullable=True),
    sa.Column("province_code", sa.String(2), nullable=False),
    sa.Column("platform", sa.String(40), nullable=False),
    sa.Column("order_ref", sa.String(100), nullable=False),
    sa.Column("order_key", sa.String(100), nullable=False),
    sa.Column("amount_idr", _money, nullable=False),
    sa.Column("purchased_at", UtcDateTime, nullable=False),
    sa.Column("recorded_at", UtcDateTime, nullable=False),
    sa.UniqueConstraint("platform", "order_key", name="uq_purchases_platform_order"),
    sa.Index("ix_purchases_campaign_official", "campaign_id", "official_id"),
    sa.Index("ix_purchases_umkm", "umkm_id"),
)

# Distinct businesses supported per campaign: a slot survives the business's withdrawal
# (umkm_id -> NULL) so "distinct UMKM supported" never drops after the fact.
campaign_umkm = sa.Table(
    "campaign_umkm", metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("campaign_id", sa.String(36), sa.ForeignKey("campaigns.id"), nullable=False),
    sa.Column("umkm_id", sa.String(36), nullable=True),
    sa.Column("province_code", sa.String(2), nullable=False),
    sa.UniqueConstraint("campaign_id", "umkm_id", name="uq_campaign_umkm_campaign_umkm"),
    sa.Index("ix_campaign_umkm_umkm", "umkm_id"),
)


def add_campaign(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(campaigns.insert().values(**row))


def set_status(conn: Connection, campaign_id: str, status: str, stamp: str,
               at: datetime) -> None:
    """Move a campaign to `status`, noting when in its `stamp` column (opened_at/closed_at)."""
    conn.execute(campaigns.update().where(campaigns.c.id == campaign_id)
                 .values(status=status, **{stamp: at}))


def list_campaigns(conn: Connection, limit: int, offset: int,
                   status: str | None = None) -> list[Row]:
    """A page of campaigns, latest start first."""
    q = sa.select(campaigns)
    if status is not None:
        q = q.where(campaigns.c.status == status)
    return list(conn.execute(q.order_by(campaigns.c.starts_at.desc(), campaigns.c.code)
                             .limit(limit).offset(offset)))


def get_campaign(conn: Connection, code: str, lock: bool = False) -> Row | None:
    """The campaign row by code (FOR UPDATE when it is about to change state)."""
    q = sa.select(campaigns).where(campaigns.c.code == code)
    return conn.execute(q.with_for_update() if lock else q).first()


def get_participant(conn: Connection, campaign_id: str, official_id: str) -> Row | None:
    p = participants
    return conn.execute(sa.select(p).where(p.c.campaign_id == campaign_id,
                                           p.c.official_id == official_id)).first()


def add_participant(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(participants.insert().values(**values))


def order_taken(conn: Connection, platform: str, order_key: str) -> bool:
    """Whether this platform's order was already recorded (by anyone, in any campaign)."""
    return conn.execute(sa.select(purchases.c.id).where(
        purchases.c.platform == platform, purchases.c.order_key == order_key)).first() is not None


def add_purchase(conn: Connection, row: dict[str, Any]) -> None:
    """Record the purchase and count its business once per campaign (the slot outlives the
    business's withdrawal)."""
    conn.execute(purchases.insert().values(**row))
    conn.execute(dialect.insert_ignore(conn, campaign_umkm, {
        "id": new_id(), "campaign_id": row["campaign_id"], "umkm_id": row["umkm_id"],
        "province_code": row["province_code"]}))


def official_purchases(conn: Connection, campaign_id: str, official_id: str, limit: int,
                       offset: int) -> tuple[list[Row], int]:
    """A page of one official's purchases, each with its seller's catalogue name and NIB,
    and how many there are in all."""
    d = metadata.tables[umkm_directory.TABLE]
    mine = (purchases.c.campaign_id == campaign_id, purchases.c.official_id == official_id)
    rows = conn.execute(sa.select(purchases, d.c.trade_name, d.c.nib).select_from(
        purchases.outerjoin(d, d.c.umkm_id == purchases.c.umkm_id)).where(*mine)
        .order_by(purchases.c.purchased_at, purchases.c.id).limit(limit).offset(offset)).all()
    n = conn.execute(sa.select(sa.func.count()).select_from(purchases).where(*mine)).scalar_one()
    return list(rows), int(n)


def purchases_of(conn: Connection, campaign_id: str) -> Iterator[Sequence[Row]]:
    """A campaign's purchases in time order, fetched in partitions of 1000 rows."""
    result = conn.execution_options(yield_per=1000).execute(
        sa.select(purchases).where(purchases.c.campaign_id == campaign_id)
        .order_by(purchases.c.purchased_at, purchases.c.id))
    return result.partitions()


def add_spend(conn: Connection, campaign_id: str, official_id: str, amount: int,
              band_max: int) -> bool:
    """Atomically add to an official's spend unless it would pass the band (no lost update)."""
    p = participants
    done = conn.execute(p.update().where(
        p.c.campaign_id == campaign_id, p.c.official_id == official_id,
        p.c.spent_idr + amount <= band_max).values(spent_idr=p.c.spent_idr + amount)).rowcount
    return bool(done)


def totals(conn: Connection, campaign_id: str) -> dict[str, int]:
    """Exact totals, aggregated from the rows themselves (SQL, not Python counters)."""
    pu, pa, cu = purchases, participants, campaign_umkm
    n, amount = conn.execute(sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(
        pu.c.amount_idr), 0)).where(pu.c.campaign_id == campaign_id)).one()
    joined = conn.execute(sa.select(sa.func.count()).select_from(pa)
                          .where(pa.c.campaign_id == campaign_id)).scalar_one()
    distinct = conn.execute(sa.select(sa.func.count()).select_from(cu)
                            .where(cu.c.campaign_id == campaign_id)).scalar_one()
    return {"participants": int(joined), "purchases": int(n), "amount_idr": int(amount),
            "distinct_umkm": int(distinct)}


def by_agency(conn: Connection, campaign_id: str) -> list[dict[str, Any]]:
    """Participants, purchases and rupiah per agency."""
    pu, pa = purchases, participants
    joined = {r[0]: int(r[1]) for r in conn.execute(sa.select(pa.c.agency, sa.func.count())
              .where(pa.c.campaign_id == campaign_id).group_by(pa.c.agency))}
    spent = {r.agency: r for r in conn.execute(
        sa.select(pu.c.agency, sa.func.count().label("n"), sa.func.sum(pu.c.amount_idr)
                  .label("amount")).where(pu.c.campaign_id == campaign_id)
        .group_by(pu.c.agency)).all()}
    return [{"agency": a, "participants": int(joined.get(a, 0)),
             "purchases": int(spent[a].n) if a in spent else 0,
             "amount_idr": int(spent[a].amount) if a in spent else 0}
            for a in set(joined) | set(spent)]


def by_province(conn: Connection, campaign_id: str) -> list[dict[str, Any]]:
    """Purchases, rupiah and distinct businesses per province of the UMKM."""
    pu, cu = purchases, campaign_umkm
    spent = conn.execute(
        sa.select(pu.c.province_code, sa.func.count().label("n"),
                  sa.func.sum(pu.c.amount_idr).label("amount"))
        .where(pu.c.campaign_id == campaign_id).group_by(pu.c.province_code)).all()
    distinct = {r[0]: int(r[1]) for r in conn.execute(
        sa.select(cu.c.province_code, sa.func.count())
        .where(cu.c.campaign_id == campaign_id).group_by(cu.c.province_code))}
    return [{"province_code": r.province_code, "purchases": int(r.n),
             "amount_idr": int(r.amount), "distinct_umkm": int(distinct.get(r.province_code, 0))}
            for r in spent]
