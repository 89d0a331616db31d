"""Read side of the training service: views of courses, sessions, seats and completions."""
from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection, Engine

from services.common import umkm_directory
from services.common.db.engine import utcnow
from services.common.errors import DomainError
from services.common.http.errors import not_found
from services.training import domain, store
from services.training.config import TrainingSettings


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
    with engine.connect() as conn:
        return [dict(r._mapping) for r in store.list_courses(conn, limit, offset)]


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


def not_owner() -> DomainError:
    return DomainError("not_owner", "UMKM ini bukan milik akun Anda.",
                       "This business does not belong to your account.", "forbidden")


def known_umkm(conn: Connection, settings: TrainingSettings,
               umkm_id: str) -> umkm_directory.KnownUmkm:
    """The business from our read model; 409 with Retry-After until its registration lands."""
    return umkm_directory.active(conn, umkm_id, settings.retry_after_seconds)


def owned_umkm(conn: Connection, settings: TrainingSettings, umkm_id: str,
               owner: str) -> umkm_directory.KnownUmkm:
    """The business, if the caller (`owner`: their account subject) owns it, from our read
    model of registrations and claims; 403 otherwise."""
    biz = known_umkm(conn, settings, umkm_id)
    if biz.owner_subject is None or biz.owner_subject != owner:
        raise not_owner()
    return biz


def owned_ids(conn: Connection, owner: str, umkm_id: str | None = None) -> list[str]:
    """The caller's live businesses (from the read model), or just `umkm_id` if it is one of
    them; 403 if it is not."""
    mine = [b.umkm_id for b in umkm_directory.owned_by(conn, owner)]
    if umkm_id is None:
        return mine
    if umkm_id not in mine:
        raise not_owner()
    return [umkm_id]


def mine(engine: Engine, owner: str, umkm_id: str | None, limit: int, offset: int,
         what: str) -> list[dict[str, Any]]:
    """The caller's enrolments or completions (`what`), of one business or all of theirs."""
    with engine.connect() as conn:
        ids = owned_ids(conn, owner, umkm_id)
        if not ids:
            return []
        read = my_enrolments if what == "enrolments" else my_completions
        return read(conn, ids, limit, offset)


def my_enrolments(conn: Connection, umkm_ids: list[str], limit: int,
                  offset: int) -> list[dict[str, Any]]:
    """The seats of these businesses (the caller's), newest session first."""
    rows = store.enrolments_of(conn, umkm_ids, limit, offset)
    return [_enrolment_view(conn, r, store.get_session(conn, r.sid)) for r in rows]


def my_completions(conn: Connection, umkm_ids: list[str], limit: int,
                   offset: int) -> list[dict[str, Any]]:
    """The completions (certificates) of these businesses (the caller's), newest first."""
    return [dict(r._mapping) for r in store.completions_of(conn, umkm_ids, limit, offset)]


def course_progress(course: Any, done: set[str], number: str | None) -> dict[str, Any]:
    """How far a business is through a self-paced course, in the course's module order."""
    keys = [m["key"] for m in course.modules]
    return {"course_id": course.id, "modules_total": len(keys),
            "modules_done": [k for k in keys if k in done],
            "completed": number is not None, "certificate_number": number}


def progress(engine: Engine, settings: TrainingSettings, owner: str, umkm_id: str,
             course_id: str) -> dict[str, Any]:
    """The owner's business's progress through a self-paced course."""
    with engine.connect() as conn:
        owned_umkm(conn, settings, umkm_id, owner)
        course = store.get_course(conn, course_id)
        if course is None:
            raise not_found("course")
        done = store.modules_done(conn, umkm_id, course_id)
        number = store.certificate_number(conn, umkm_id, course_id)
    return course_progress(course, done, number)


def certificate_not_found() -> DomainError:
    return DomainError("certificate_not_found",
                       "Sertifikat dengan nomor ini tidak ditemukan.",
                       "No certificate has this number.", "not_found")


def certificate(engine: Engine, text: str) -> dict[str, Any]:
    """A certificate as anyone may check it: its number, course, kind, completion time and the
    business's trade name (a catalogue attribute, shown while the business is registered);
    never anything about its owner."""
    number = domain.normal_certificate_number(text)
    if number is None:
        raise certificate_not_found()
    with engine.connect() as conn:
        row = store.find_certificate(conn, number)
    if row is None:
        raise certificate_not_found()
    return {"certificate_number": row.certificate_number, "course_title": row.course_title,
            "kind": row.kind, "completed_at": row.completed_at,
            "trade_name": row.trade_name if row.status == umkm_directory.REGISTERED else None}
