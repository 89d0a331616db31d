"""Append-only audit log: who did what to which record, and who read or exported personal data.

`record(conn, actor, action, target)` inserts one row in the CALLER's transaction, so an
action and its audit row commit or roll back together, and no personal data is served
before the row saying who read it is committed. A row holds ids and codes only: the actor's
subject (a pseudonymous id) and roles, an action name, a target such as `umkm:<uuid>`, the
correlation id, and optional `detail` of short codes/numbers (a filter's province, a count).
It never holds a name, NIK, phone or e-mail; `record` refuses values that could carry one.

Each service that has operator/admin actions adds the table to its metadata with
`add_table(metadata)` and creates it in a migration with `create_in_migration(op)`, which
also installs the database triggers that refuse UPDATE and DELETE (see OPERATIONS.md)."""
from __future__ import annotations

import json
import re
from collections.abc import Callable
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.common.db.engine import NAMING, UtcDateTime, utcnow
from services.common.observability import correlation_id

TABLE = "audit_log"
# `kind:id` with ids/codes only; no spaces or '@', so a name or an e-mail cannot pass.
_TARGET = re.compile(r"[a-z_]{1,40}(:[A-Za-z0-9._-]{1,80})?")
_ACTION = re.compile(r"[a-z_]{1,30}\.[a-z_]{1,40}")
_DETAIL_VALUE = re.compile(r"[A-Za-z0-9._:,-]{0,80}")
_NIK_LIKE = re.compile(r"\d{16}")  # a NIK (or an NPWP that is one) never enters the log


class _HasSubject(Protocol):
    @property
    def subject(self) -> str: ...


@dataclass(frozen=True)
class Actor:
    """Who acted, when not a request's principal (e.g. the `bbi` CLI, a scheduled job)."""

    subject: str
    role: str


def _columns() -> list[sa.Column[Any]]:
    """Fresh column objects (a Column belongs to one Table): the model and the migration."""
    return [
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  primary_key=True, autoincrement=True),
        sa.Column("at", UtcDateTime, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),  # the token's subject
        sa.Column("role", sa.String(100), nullable=False),   # its roles, comma-separated
        sa.Column("action", sa.String(80), nullable=False),
        sa.Column("target", sa.String(130), nullable=False),
        sa.Column("correlation_id", sa.String(64)),
        sa.Column("detail", sa.Text, nullable=False, server_default="{}"),
    ]


_INDEXES = {"ix_audit_log_at": ("at",), "ix_audit_log_actor_at": ("actor", "at"),
            "ix_audit_log_action_at": ("action", "at"), "ix_audit_log_target_at": ("target", "at")}


def _define(md: sa.MetaData) -> sa.Table:
    return sa.Table(TABLE, md, *_columns(),
                    *[sa.Index(name, *cols) for name, cols in _INDEXES.items()])


audit_log = _define(sa.MetaData(naming_convention=NAMING))


def add_table(md: sa.MetaData) -> sa.Table:
    """Put the audit table on a service's metadata (for migrations and create_all)."""
    return _define(md)


def roles_of(actor: Any) -> str:
    """The actor's roles as one sorted, comma-separated string."""
    roles = getattr(actor, "roles", None)
    if roles:
        return ",".join(sorted(str(r) for r in roles))
    return str(getattr(actor, "role", "") or "unknown")


def _check(action: str, target: str, detail: dict[str, Any]) -> str:
    if not _ACTION.fullmatch(action):
        raise ValueError(f"audit action {action!r} is not 'area.verb'")
    if not _TARGET.fullmatch(target) or _NIK_LIKE.search(target):
        raise ValueError(f"audit target {target!r} is not 'kind:id' of ids/codes")
    for key, value in detail.items():
        if value is None or isinstance(value, bool | int):
            continue
        if not isinstance(value, str) or not _DETAIL_VALUE.fullmatch(value) \
                or _NIK_LIKE.search(value):
            raise ValueError(f"audit detail {key!r} must be a short code or a number")
    return json.dumps(detail, sort_keys=True)


def record(conn: Connection, actor: _HasSubject, action: str, target: str,
           **detail: str | int | bool | None) -> None:
    """Append one audit row in the caller's transaction (ids and codes only)."""
    conn.execute(audit_log.insert().values(
        at=utcnow(), actor=actor.subject[:200], role=roles_of(actor)[:100], action=action,
        target=target, correlation_id=correlation_id.get() or None,
        detail=_check(action, target, detail)))


# The web layer binds how to find the request's caller (lazily: the token is verified only
# when a handler asks), so a handler records without reaching into Flask.
_resolver: ContextVar[Callable[[], Any] | None] = ContextVar("audit_actor", default=None)


def bind_actor(resolve: Callable[[], Any]) -> Token[Callable[[], Any] | None]:
    """Called per request by services.common.http.web; reset with `unbind_actor(token)`."""
    return _resolver.set(resolve)


def unbind_actor(token: Token[Callable[[], Any] | None]) -> None:
    _resolver.reset(token)


def acting() -> Any:
    """The authenticated caller of the current request: the actor of what a handler records."""
    resolve = _resolver.get()
    who = resolve() if resolve is not None else None
    if who is None:  # a bug: an audited use case reached without an authenticated caller
        raise RuntimeError("audit: no authenticated caller to record")
    return who


# Append-only in the database itself, not only in the code: a stray UPDATE/DELETE (a bug, an
# injected statement, a hand-typed psql command by the application's own role) fails.
_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'audit_log is append-only' USING ERRCODE = 'insufficient_privilege';
END $$ LANGUAGE plpgsql"""
_PG_TRIGGERS = (
    "CREATE TRIGGER audit_log_no_update_delete BEFORE UPDATE OR DELETE ON audit_log "
    "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()",
    "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()",
)
_SQLITE_TRIGGERS = tuple(
    f"CREATE TRIGGER audit_log_no_{verb.lower()} BEFORE {verb} ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
    for verb in ("UPDATE", "DELETE"))


def install_guards(conn: Connection) -> None:
    """Create the triggers that refuse UPDATE/DELETE (and TRUNCATE on PostgreSQL)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(_PG_FUNCTION)
        for stmt in _PG_TRIGGERS:
            conn.exec_driver_sql(stmt)
    else:
        for stmt in _SQLITE_TRIGGERS:
            conn.exec_driver_sql(stmt)


def create_in_migration(op: Any) -> None:
    """Alembic upgrade body: the table, its indexes and its append-only triggers."""
    # The model's Table, named by the shared convention (pk_audit_log, ix_audit_log_*).
    # A later change to the table needs its own migration and then a frozen copy here.
    audit_log.create(op.get_bind())
    install_guards(op.get_bind())


def drop_in_migration(op: Any) -> None:
    """Alembic downgrade body (the triggers go with the table)."""
    op.drop_table(TABLE)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")
