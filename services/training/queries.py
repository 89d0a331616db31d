"""Read side of the training service: views of courses, sessions, seats and completions."""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from services.common.db import utcnow
from services.common.errors import not_found
from services.training import domain, store


def session_view(conn: Connection, s: Any, counts: dict[str, int] | None = None) -> dict[str, Any]:
    """A session with its seat counts."""
    c = counts or store.seat_counts(conn, [s.id])[s.id]
    return dict(s._mapping) | {
        "enrolled": c[domain.ENROLLED], "waitlisted": c[domain.WAITLISTED],
        "seats_left": domain.seats_left(s.capacity, c[domain.ENROLLED])}


def list_sessions(engine: Engine, course_id: str | None, limit: int,
                  offset: int) -> list[dict[str, Any]]:
    """Upcoming scheduled sessions, soonest first, with seats left."""
    with engine.connect() as conn:
        rows = store.upcoming_sessions(conn, utcnow(), course_id, limit, offset)
        counts = store.seat_counts(conn, [r.id for r in rows]) if rows else {}
        return [session_view(conn, r, counts[r.id]) for r in rows]


def get_session(engine: Engine, session_id: str) -> dict[str, Any]:
    with engine.connect() as conn:
        s = store.get_session(conn, session_id)
        if s is None:
            raise not_found("session")
        return session_view(conn, s)


def list_courses(engine: Engine, limit: int, offset: int) -> list[dict[str, Any]]:
    c = store.courses
    with engine.connect() as conn:
        rows = conn.execute(sa.select(c).order_by(c.c.created_at, c.c.id)
                            .limit(limit).offset(offset))
        return [dict(r._mapping) for r in rows]


def get_course(engine: Engine, course_id: str) -> dict[str, Any]:
    with engine.connect() as conn:
        row = store.get_course(conn, course_id)
    if row is None:
        raise not_found("course")
    return dict(row._mapping)


def _enrolment_view(conn: Connection, e: Any, s: Any) -> dict[str, Any]:
    out = {"session_id": s.id, "course_id": s.course_id, "umkm_id": e.umkm_id,
           "state": e.state, "starts_at": s.starts_at,
           "duration_minutes": s.duration_minutes, "session_status": s.status,
           "enrolled_at": e.created_at, "updated_at": e.updated_at,
           "cancel_reason": e.cancel_reason, "position": None, "join_link": None}
    if e.state == domain.WAITLISTED:
        out["position"] = store.waitlist_position(conn, s.id, e.seq)
    if e.state in (domain.ENROLLED, domain.ATTENDED):
        out["join_link"] = s.join_link  # only a seat holder gets the link
    return out


def my_enrolment(conn: Connection, session_id: str, umkm_id: str) -> dict[str, Any]:
    e = store.find_enrolment(conn, session_id, umkm_id)
    return _enrolment_view(conn, e, store.get_session(conn, session_id))


def my_enrolments(engine: Engine, umkm_id: str, limit: int, offset: int) -> list[dict[str, Any]]:
    """The business's seats, newest session first."""
    e, s = store.enrolments, store.sessions
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(e, s.c.id.label("sid")).join(s, s.c.id == e.c.session_id)
            .where(e.c.umkm_id == umkm_id).order_by(s.c.starts_at.desc(), s.c.id)
            .limit(limit).offset(offset)).all()
        return [_enrolment_view(conn, r, store.get_session(conn, r.sid)) for r in rows]


def my_completions(engine: Engine, umkm_id: str, limit: int,
                   offset: int) -> list[dict[str, Any]]:
    c = store.completions
    with engine.connect() as conn:
        rows = conn.execute(sa.select(c).where(c.c.umkm_id == umkm_id)
                            .order_by(c.c.completed_at.desc(), c.c.id).limit(limit).offset(offset))
        return [dict(r._mapping) for r in rows]
