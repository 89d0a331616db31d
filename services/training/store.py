"""Training tables (SQLAlchemy Core) and the repository: the statements the handlers, the
seat moves and the queries run."""
from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.common import audit, umkm_directory
from services.common.db import dialect
from services.common.db.engine import UtcDateTime, new_metadata
from services.common.http import ratelimit
from services.training.domain import ACTIVE_SEATS, ENROLLED, SCHEDULED, WAITLISTED

Row = sa.Row[*tuple[Any, ...]]  # a row of these tables (any columns), read by column name
metadata = new_metadata()
audit_log = audit.add_table(metadata)  # operator/admin actions, reads of personal data
directory = umkm_directory.add_umkm_directory(metadata)  # read model of registered UMKM
rate_limits = ratelimit.add_table(metadata)  # per-client counters of the public lookup

courses = sa.Table(
    "courses", metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("level", sa.String(20), nullable=False),
    # [{"key": "pemasaran-digital", "title": "..."}]: keys are what progress refers to.
    sa.Column("modules", sa.JSON, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

sessions = sa.Table(
    "sessions", metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("course_id", sa.String(36), sa.ForeignKey("courses.id"), nullable=False),
    sa.Column("starts_at", UtcDateTime, nullable=False),
    sa.Column("duration_minutes", sa.Integer, nullable=False),
    sa.Column("capacity", sa.Integer, nullable=False),
    sa.Column("join_link", sa.String(500), nullable=False),
    sa.Column("enrolment_deadline", UtcDateTime, nullable=False),
    sa.Column("status", sa.String(10), nullable=False),
    # Arrival counter, bumped under the session row lock: orders seats and the waitlist.
    sa.Column("next_seq", sa.Integer, nullable=False, server_default="1"),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Index("ix_sessions_status_starts_at", "status", "starts_at"),
)

enrolments = sa.Table(
    "enrolments", metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("session_id", sa.String(36), sa.ForeignKey("sessions.id"), nullable=False),
    sa.Column("umkm_id", sa.String(36), nullable=False),
    # Copied from the read model at enrolment: every seat event carries it.
    sa.Column("province_code", sa.String(2), nullable=False),
    sa.Column("state", sa.String(12), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Column("cancel_reason", sa.String(20)),
    sa.UniqueConstraint("session_id", "umkm_id"),
    sa.Index("ix_enrolments_session_state_seq", "session_id", "state", "seq"),
    sa.Index("ix_enrolments_umkm_id", "umkm_id"),
)

module_progress = sa.Table(
    "module_progress", metadata,
    sa.Column("umkm_id", sa.String(36), primary_key=True),
    sa.Column("course_id", sa.String(36), sa.ForeignKey("courses.id"), primary_key=True),
    sa.Column("module_key", sa.String(40), primary_key=True),
    sa.Column("done_at", UtcDateTime, nullable=False),
)

completions = sa.Table(
    "completions", metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("umkm_id", sa.String(36), nullable=False),
    sa.Column("course_id", sa.String(36), sa.ForeignKey("courses.id"), nullable=False),
    sa.Column("key_id", sa.String(36), nullable=False),  # session id, or course id (self-paced)
    sa.Column("kind", sa.String(10), nullable=False),
    sa.Column("certificate_number", sa.String(40), nullable=False, unique=True),
    sa.Column("completed_at", UtcDateTime, nullable=False),
    sa.UniqueConstraint("umkm_id", "key_id"),
)


def lock_session(conn: Connection, session_id: str) -> Row | None:
    """The session row, locked until commit (PostgreSQL; SQLite already holds the write lock)."""
    return conn.execute(sa.select(sessions).where(sessions.c.id == session_id)
                        .with_for_update()).first()


def seat_counts(conn: Connection, session_ids: list[str]) -> dict[str, dict[str, int]]:
    """{session id: {state: count}} for enrolled and waitlisted seats."""
    e = enrolments
    rows = conn.execute(sa.select(e.c.session_id, e.c.state, sa.func.count())
                        .where(e.c.session_id.in_(session_ids), e.c.state.in_(ACTIVE_SEATS))
                        .group_by(e.c.session_id, e.c.state)).all()
    out: dict[str, dict[str, int]] = {s: {ENROLLED: 0, WAITLISTED: 0} for s in session_ids}
    for sid, state, n in rows:
        out[sid][state] = n
    return out


def enrolled_count(conn: Connection, session_id: str) -> int:
    return seat_counts(conn, [session_id])[session_id][ENROLLED]


def waitlist(conn: Connection, session_id: str) -> list[Row]:
    """Waitlisted rows of a session in arrival order."""
    e = enrolments
    return list(conn.execute(sa.select(e).where(e.c.session_id == session_id,
                                                e.c.state == WAITLISTED).order_by(e.c.seq)))


def waitlist_position(conn: Connection, session_id: str, seq: int) -> int:
    e = enrolments
    ahead = conn.execute(sa.select(sa.func.count()).where(
        e.c.session_id == session_id, e.c.state == WAITLISTED, e.c.seq < seq)).scalar_one()
    return int(ahead) + 1


def find_enrolment(conn: Connection, session_id: str, umkm_id: str) -> Row | None:
    e = enrolments
    return conn.execute(sa.select(e).where(e.c.session_id == session_id,
                                           e.c.umkm_id == umkm_id)).first()


def upcoming_sessions(conn: Connection, now: datetime, course_id: str | None,
                      limit: int, offset: int) -> list[Row]:
    s = sessions
    q = sa.select(s).where(s.c.status == SCHEDULED, s.c.starts_at > now)
    if course_id:
        q = q.where(s.c.course_id == course_id)
    return list(conn.execute(q.order_by(s.c.starts_at, s.c.id).limit(limit).offset(offset)))


def get_course(conn: Connection, course_id: str) -> Row | None:
    return conn.execute(sa.select(courses).where(courses.c.id == course_id)).first()


def get_session(conn: Connection, session_id: str) -> Row | None:
    return conn.execute(sa.select(sessions).where(sessions.c.id == session_id)).first()


# --- writes --------------------------------------------------------------------------------
def add_course(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(courses.insert().values(**row))


def update_course(conn: Connection, course_id: str, values: dict[str, Any]) -> None:
    conn.execute(courses.update().where(courses.c.id == course_id).values(**values))


def add_session(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(sessions.insert().values(**row))


def update_session(conn: Connection, session_id: str, values: dict[str, Any]) -> None:
    conn.execute(sessions.update().where(sessions.c.id == session_id).values(**values))


def active_seats(conn: Connection, session_id: str) -> list[Row]:
    """Enrolled and waitlisted rows of a session in arrival order."""
    e = enrolments
    return list(conn.execute(sa.select(e).where(
        e.c.session_id == session_id, e.c.state.in_(ACTIVE_SEATS)).order_by(e.c.seq)))


def seats_of(conn: Connection, session_id: str) -> dict[str, Row]:
    """Every enrolment row of a session, by business id."""
    e = enrolments
    return {r.umkm_id: r for r in conn.execute(sa.select(e).where(e.c.session_id == session_id))}


def add_enrolment(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(enrolments.insert().values(**values))


def update_enrolment(conn: Connection, enrolment_id: str, values: dict[str, Any]) -> None:
    conn.execute(enrolments.update().where(enrolments.c.id == enrolment_id).values(**values))


def upcoming_session_ids_of(conn: Connection, umkm_id: str, now: datetime) -> list[str]:
    """Sessions not yet started in which the business holds a seat or a waitlist place, in
    id order (a fixed lock order)."""
    e, s = enrolments, sessions
    return sorted(conn.execute(
        sa.select(e.c.session_id).join(s, s.c.id == e.c.session_id).where(
            e.c.umkm_id == umkm_id, e.c.state.in_(ACTIVE_SEATS),
            s.c.status == SCHEDULED, s.c.starts_at > now)).scalars())


def withdrawn_among(conn: Connection, umkm_ids: list[str]) -> frozenset[str]:
    """Those of these businesses that have withdrawn (per our read model)."""
    d = directory
    return frozenset(conn.execute(sa.select(d.c.umkm_id).where(
        dialect.any_of(conn, d.c.umkm_id, umkm_ids), d.c.status == "withdrawn")).scalars())


def add_completion(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(completions.insert().values(**values))


def certificate_number(conn: Connection, umkm_id: str, key_id: str) -> str | None:
    """The certificate of this business for a session (or a self-paced course), if any."""
    c = completions
    number = conn.execute(sa.select(c.c.certificate_number).where(
        c.c.umkm_id == umkm_id, c.c.key_id == key_id)).scalar()
    return str(number) if number is not None else None


def modules_done(conn: Connection, umkm_id: str, course_id: str) -> set[str]:
    p = module_progress
    return set(conn.execute(sa.select(p.c.module_key).where(
        p.c.umkm_id == umkm_id, p.c.course_id == course_id)).scalars())


def add_module_done(conn: Connection, umkm_id: str, course_id: str, module_key: str,
                    at: datetime) -> None:
    conn.execute(module_progress.insert().values(umkm_id=umkm_id, course_id=course_id,
                                                 module_key=module_key, done_at=at))


# --- reads ---------------------------------------------------------------------------------
def list_courses(conn: Connection, limit: int, offset: int) -> list[Row]:
    c = courses
    return list(conn.execute(sa.select(c).order_by(c.c.created_at, c.c.id)
                             .limit(limit).offset(offset)))


def enrolments_of(conn: Connection, umkm_ids: list[str], limit: int, offset: int) -> list[Row]:
    """A page of these businesses' seats (with `sid`, the session id), newest session first."""
    e, s = enrolments, sessions
    return list(conn.execute(
        sa.select(e, s.c.id.label("sid")).join(s, s.c.id == e.c.session_id)
        .where(e.c.umkm_id.in_(umkm_ids)).order_by(s.c.starts_at.desc(), s.c.id, e.c.umkm_id)
        .limit(limit).offset(offset)))


def completions_of(conn: Connection, umkm_ids: list[str], limit: int,
                   offset: int) -> list[Row]:
    """A page of these businesses' completions, newest first."""
    c = completions
    return list(conn.execute(sa.select(c).where(c.c.umkm_id.in_(umkm_ids))
                             .order_by(c.c.completed_at.desc(), c.c.id)
                             .limit(limit).offset(offset)))


def find_certificate(conn: Connection, number: str) -> Row | None:
    """A certificate by number with its course title and the business's catalogue name and
    directory status (the owner is not joined in)."""
    c, k, d = completions, courses, directory
    return conn.execute(
        sa.select(c.c.certificate_number, c.c.kind, c.c.completed_at,
                  k.c.title.label("course_title"), d.c.trade_name, d.c.status)
        .join(k, k.c.id == c.c.course_id).outerjoin(d, d.c.umkm_id == c.c.umkm_id)
        .where(c.c.certificate_number == number)).first()
