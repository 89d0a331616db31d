"""Read model of registered businesses, kept from `bbi.umkm` events by the services that
must know whether a business may enrol or sell, and whose it is (training, campaign).

It holds what a public catalogue shows (trade name, NIB, province, platforms) and the owner's
pseudonymous account subject; never personal data. Every handler is idempotent and accepts
the events of one business in any order (a replay, or a rebuilt topic): a withdrawal is
final, a claim that arrives before the registration is kept for it."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.common.db.engine import UtcDateTime, utcnow
from services.common.errors import DomainError
from services.common.messaging.events import Event

TABLE = "umkm_directory"
PLATFORMS_TABLE = "umkm_directory_platforms"
REGISTERED, WITHDRAWN = "registered", "withdrawn"
# A row that only holds a claim whose registration has not arrived yet: not a known business.
PENDING = "pending"
UNKNOWN_PROVINCE = "00"
MAX_SEARCH = 50  # a search answers a short pick list, never a dump of the directory


@dataclass(frozen=True)
class KnownUmkm:
    umkm_id: str
    province_code: str
    status: str  # "registered" or "withdrawn"
    owner_subject: str | None = None
    trade_name: str | None = None
    nib: str | None = None
    platforms: tuple[str, ...] = ()  # onboarded on (bbi.umkm.onboarded.v1)
    platforms_declared: tuple[str, ...] = ()  # the owner's own statement at registration

    @property
    def active(self) -> bool:
        return self.status != WITHDRAWN


def add_umkm_directory(md: sa.MetaData) -> sa.Table:
    """Define the read-model tables on a service's metadata."""
    sa.Table(
        PLATFORMS_TABLE, md,
        sa.Column("umkm_id", sa.String(36), primary_key=True),
        sa.Column("platform", sa.String(40), primary_key=True),
        sa.Column("onboarded_at", UtcDateTime, nullable=False),
    )
    return sa.Table(
        TABLE, md,
        sa.Column("umkm_id", sa.String(36), primary_key=True),
        sa.Column("province_code", sa.String(2), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.Column("owner_subject", sa.String(128)),
        sa.Column("trade_name", sa.String(200)),
        sa.Column("name_key", sa.String(200)),  # casefolded, spaces collapsed: for search
        # Not unique: a withdrawn business's NIB may be registered again under a new id, and
        # the two events travel on different partitions.
        sa.Column("nib", sa.String(13)),
        sa.Column("platforms_declared", sa.String(400)),  # comma-separated platform codes
        sa.Index("ix_umkm_directory_nib", "nib"),
        sa.Index("ix_umkm_directory_owner", "owner_subject"),
        sa.Index("ix_umkm_directory_province_name", "province_code", "name_key"),
    )


def create_in_migration(op: Any) -> None:
    """Alembic upgrade body of training's and campaign's initial revisions: the directory as
    first kept (status and province). Frozen, like `add_catalogue_in_migration`."""
    op.create_table(
        TABLE,
        sa.Column("umkm_id", sa.String(length=36), nullable=False),
        sa.Column("province_code", sa.String(length=2), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("updated_at", UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("umkm_id", name=op.f("pk_umkm_directory")),
    )


def drop_in_migration(op: Any) -> None:
    op.drop_table(TABLE)


def add_catalogue_in_migration(op: Any) -> None:
    """Alembic upgrade body shared by training and campaign (revisions a3c91d5e7f20 and
    b7e2f4a19c63): owner subject, trade name, NIB, declared and onboarded platforms. Existing
    rows keep NULLs. Frozen: a later change to the directory gets its own function."""
    with op.batch_alter_table(TABLE, schema=None) as b:
        b.add_column(sa.Column("owner_subject", sa.String(length=128), nullable=True))
        b.add_column(sa.Column("trade_name", sa.String(length=200), nullable=True))
        b.add_column(sa.Column("name_key", sa.String(length=200), nullable=True))
        b.add_column(sa.Column("nib", sa.String(length=13), nullable=True))
        b.add_column(sa.Column("platforms_declared", sa.String(length=400), nullable=True))
        b.create_index("ix_umkm_directory_nib", ["nib"], unique=False)
        b.create_index("ix_umkm_directory_owner", ["owner_subject"], unique=False)
        b.create_index("ix_umkm_directory_province_name", ["province_code", "name_key"],
                       unique=False)
    op.create_table(
        "umkm_directory_platforms",
        sa.Column("umkm_id", sa.String(length=36), nullable=False),
        sa.Column("platform", sa.String(length=40), nullable=False),
        sa.Column("onboarded_at", UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("umkm_id", "platform", name=op.f("pk_umkm_directory_platforms")),
    )


def drop_catalogue_in_migration(op: Any) -> None:
    """Alembic downgrade body of `add_catalogue_in_migration`."""
    op.drop_table("umkm_directory_platforms")
    with op.batch_alter_table(TABLE, schema=None) as b:
        b.drop_index("ix_umkm_directory_province_name")
        b.drop_index("ix_umkm_directory_owner")
        b.drop_index("ix_umkm_directory_nib")
        for name in ("platforms_declared", "nib", "name_key", "trade_name", "owner_subject"):
            b.drop_column(name)


_MD = sa.MetaData()
_TABLE = add_umkm_directory(_MD)  # same columns as every service's copy: used for statements
_PLATFORMS = _MD.tables[PLATFORMS_TABLE]


def name_key(name: str) -> str:
    """How names are compared: case and spacing do not matter."""
    return " ".join(name.casefold().split())


def _status(conn: Connection, uid: str) -> str | None:
    return conn.execute(sa.select(_TABLE.c.status).where(_TABLE.c.umkm_id == uid)).scalar()


def on_registered(conn: Connection, event: Event) -> None:
    """Insert the business; a later withdrawal that arrived first is never undone."""
    t, d = _TABLE, event.data
    uid = d["umkm_id"]
    values = {"province_code": d["province_code"], "status": REGISTERED, "updated_at": utcnow(),
              "trade_name": d.get("trade_name"),
              "name_key": name_key(d["trade_name"]) if d.get("trade_name") else None,
              "nib": d.get("nib"),
              "platforms_declared": ",".join(d.get("platforms_declared") or [])}
    status = _status(conn, uid)
    if status is None:
        conn.execute(t.insert().values(umkm_id=uid, owner_subject=d.get("owner_subject"),
                                       **values))
    elif status != WITHDRAWN:
        # PENDING: its claim came first, the claimed owner stays. REGISTERED: a replay (e.g.
        # a consumer re-reading the topic) refreshes rows kept before these columns existed.
        conn.execute(t.update().where(t.c.umkm_id == uid).values(
            owner_subject=sa.func.coalesce(t.c.owner_subject, d.get("owner_subject")),
            **values))


def on_onboarded(conn: Connection, event: Event) -> None:
    """One more platform the business sells on (once per platform, whatever the order)."""
    uid, platform = event.data["umkm_id"], event.data["platform"]
    if _status(conn, uid) == WITHDRAWN:
        return
    p = _PLATFORMS
    seen = conn.execute(sa.select(p.c.platform).where(p.c.umkm_id == uid,
                                                      p.c.platform == platform)).first()
    if seen is None:  # one consumer per service applies these, in partition order
        conn.execute(p.insert().values(umkm_id=uid, platform=platform,
                                       onboarded_at=datetime.fromisoformat(
                                           event.data["onboarded_at"])))


def on_claimed(conn: Connection, event: Event) -> None:
    """The owner proved a partner-reported business: from now on it is theirs."""
    t = _TABLE
    uid, owner = event.data["umkm_id"], event.data["owner_subject"]
    status = _status(conn, uid)
    if status is None:  # the registration has not arrived: keep the claim for it
        conn.execute(t.insert().values(umkm_id=uid, province_code=UNKNOWN_PROVINCE,
                                       status=PENDING, owner_subject=owner,
                                       updated_at=utcnow()))
    elif status != WITHDRAWN:
        conn.execute(t.update().where(t.c.umkm_id == uid)
                     .values(owner_subject=owner, updated_at=utcnow()))


def on_withdrawn(conn: Connection, event: Event) -> None:
    """Mark withdrawn (no more enrolling or selling) and forget name, NIB, owner, platforms."""
    t = _TABLE
    uid = event.data["umkm_id"]
    erased = {"status": WITHDRAWN, "updated_at": utcnow(), "owner_subject": None,
              "trade_name": None, "name_key": None, "nib": None}
    done = conn.execute(t.update().where(t.c.umkm_id == uid).values(**erased)).rowcount
    if not done:
        # Withdrawal before registration arrived (other partition order): remember it.
        conn.execute(t.insert().values(umkm_id=uid, province_code=UNKNOWN_PROVINCE, **erased))
    conn.execute(_PLATFORMS.delete().where(_PLATFORMS.c.umkm_id == uid))


_COLUMNS = (_TABLE.c.umkm_id, _TABLE.c.province_code, _TABLE.c.status, _TABLE.c.owner_subject,
            _TABLE.c.trade_name, _TABLE.c.nib, _TABLE.c.platforms_declared)


def _known(conn: Connection, rows: Iterable[Any]) -> list[KnownUmkm]:
    rows = list(rows)
    ids = [r.umkm_id for r in rows]
    on: dict[str, list[str]] = {i: [] for i in ids}
    if ids:
        p = _PLATFORMS
        for uid, platform in conn.execute(sa.select(p.c.umkm_id, p.c.platform)
                                          .where(p.c.umkm_id.in_(ids))
                                          .order_by(p.c.umkm_id, p.c.platform)):
            on[uid].append(platform)
    return [KnownUmkm(r.umkm_id, r.province_code, r.status, r.owner_subject, r.trade_name,
                      r.nib, tuple(on[r.umkm_id]),
                      tuple(x for x in (r.platforms_declared or "").split(",") if x))
            for r in rows]


def _select() -> Any:
    return sa.select(*_COLUMNS).where(_TABLE.c.status != PENDING)


def find(conn: Connection, umkm_id: str) -> KnownUmkm | None:
    """The business as this service knows it, or None if its registration has not arrived."""
    found = _known(conn, conn.execute(_select().where(_TABLE.c.umkm_id == str(umkm_id))))
    return found[0] if found else None


def active(conn: Connection, umkm_id: str, retry_after_s: int) -> KnownUmkm:
    """The business, if it is registered and not withdrawn. Not known yet is a 409 with
    Retry-After: its registration event may simply not have arrived (the caller retries)."""
    biz = find(conn, umkm_id)
    if biz is None:
        raise DomainError("umkm_not_known_yet",
                          "UMKM belum dikenal layanan ini; coba lagi sebentar.",
                          "This business is not known to this service yet; retry shortly.",
                          "conflict", retry_after=retry_after_s)
    if not biz.active:
        raise DomainError("umkm_withdrawn", "UMKM ini telah menarik pendaftarannya.",
                          "This business has withdrawn its registration.", "conflict")
    return biz


def find_by_nib(conn: Connection, nib: str) -> KnownUmkm | None:
    """The live business with this NIB (a withdrawn one only if no live one has it)."""
    t = _TABLE
    q = (_select().where(t.c.nib == nib)
         .order_by((t.c.status == WITHDRAWN).asc(), t.c.updated_at.desc()).limit(1))
    found = _known(conn, conn.execute(q))
    return found[0] if found else None


def search(conn: Connection, name: str, province: str | None = None,
           limit: int = 20) -> list[KnownUmkm]:
    """Live businesses whose trade name contains `name` (any case), by name; at most 50."""
    t = _TABLE
    q = _select().where(t.c.status == REGISTERED,
                        t.c.name_key.contains(name_key(name), autoescape=True))
    if province is not None:
        q = q.where(t.c.province_code == province)
    q = q.order_by(t.c.name_key, t.c.umkm_id).limit(max(1, min(limit, MAX_SEARCH)))
    return _known(conn, conn.execute(q))


def owned_by(conn: Connection, subject: str) -> list[KnownUmkm]:
    """The live businesses of this owner (their account subject)."""
    t = _TABLE
    q = _select().where(t.c.owner_subject == subject, t.c.status == REGISTERED)
    return _known(conn, conn.execute(q.order_by(t.c.umkm_id)))
