"""The training service layer: one short function per use case, each in a unit of work."""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from services.common import audit, umkm_directory
from services.common.config import Settings
from services.common.db.engine import new_id, utcnow
from services.common.http.errors import ApiError, conflict, not_found
from services.common.messaging import contracts
from services.common.messaging.uow import UnitOfWork
from services.training import config, domain, queries, seats, store
from services.training.store import metadata

SOURCE = "training"


def unit_of_work(engine: Engine, settings: Settings) -> UnitOfWork:
    return UnitOfWork(engine, metadata, SOURCE, settings.topic_prefix)


def known_umkm(conn: Connection, umkm_id: str) -> umkm_directory.KnownUmkm:
    """The business from our read model; 409 with Retry-After until its registration lands."""
    biz = umkm_directory.find(conn, umkm_id)
    if biz is None:
        raise ApiError(409, "umkm_not_known_yet",
                       "UMKM belum dikenal layanan pelatihan; coba lagi sebentar.",
                       "This business is not known to the training service yet; retry shortly.",
                       headers={"Retry-After": str(config.retry_after_seconds())})
    if not biz.active:
        raise conflict("umkm_withdrawn", "UMKM ini telah menarik pendaftarannya.",
                       "This business has withdrawn its registration.")
    return biz


def owned_umkm(conn: Connection, umkm_id: str, owner: str) -> umkm_directory.KnownUmkm:
    """The business, if the caller (`owner`: their account subject) owns it, from our read
    model of registrations and claims; 403 otherwise."""
    biz = known_umkm(conn, umkm_id)
    if biz.owner_subject is None or biz.owner_subject != owner:
        raise queries.not_owner()
    return biz


# --- courses -------------------------------------------------------------------------------
def create_course(engine: Engine, settings: Settings, body: dict[str, Any]) -> dict[str, Any]:
    now = utcnow()
    row = {"id": new_id(), "created_at": now, "updated_at": now} | body
    with unit_of_work(engine, settings) as uow:
        uow.conn.execute(store.courses.insert().values(**row))
        audit.record(uow.conn, audit.acting(), "training.course_create", f"course:{row['id']}")
    return row


def update_course(engine: Engine, settings: Settings, course_id: str,
                  body: dict[str, Any]) -> dict[str, Any]:
    with unit_of_work(engine, settings) as uow:
        if store.get_course(uow.conn, course_id) is None:
            raise not_found("course")
        c = store.courses
        uow.conn.execute(c.update().where(c.c.id == course_id).values(**body,
                                                                        updated_at=utcnow()))
        audit.record(uow.conn, audit.acting(), "training.course_update", f"course:{course_id}")
        return dict(store.get_course(uow.conn, course_id)._mapping)


# --- sessions ------------------------------------------------------------------------------
def create_session(engine: Engine, settings: Settings, body: dict[str, Any]) -> dict[str, Any]:
    """Schedule a webinar session; publishes `session_scheduled`."""
    now = utcnow()
    starts = body["starts_at"]
    deadline = body.get("enrolment_deadline") or starts
    domain.check_schedule(starts, deadline, now)
    row = {"id": new_id(), "course_id": str(body["course_id"]), "starts_at": starts,
           "duration_minutes": body["duration_minutes"],
           "capacity": body.get("capacity") or config.default_capacity(),
           "join_link": body["join_link"], "enrolment_deadline": deadline,
           "status": domain.SCHEDULED, "next_seq": 1, "created_at": now, "updated_at": now}
    with unit_of_work(engine, settings) as uow:
        if store.get_course(uow.conn, row["course_id"]) is None:
            raise not_found("course")
        uow.conn.execute(store.sessions.insert().values(**row))
        audit.record(uow.conn, audit.acting(), "training.session_schedule", f"session:{row['id']}")
        uow.publish(contracts.TRAINING_SESSION_SCHEDULED, {
            "session_id": row["id"], "course_id": row["course_id"],
            "capacity": row["capacity"], "starts_at": starts})
        return queries.session_view(uow.conn, store.get_session(uow.conn, row["id"]))


def update_session(engine: Engine, settings: Settings, session_id: str,
                   body: dict[str, Any]) -> dict[str, Any]:
    """Move, resize or relink a session; more seats promote from the waitlist."""
    now = utcnow()
    with unit_of_work(engine, settings) as uow:
        s = _open_session(uow.conn, session_id, now)
        if "starts_at" in body or "enrolment_deadline" in body:
            starts = body.get("starts_at", s.starts_at)
            deadline = _moved_deadline(s, starts, body.get("enrolment_deadline"))
            domain.check_schedule(starts, deadline, now)
            body = body | {"starts_at": starts, "enrolment_deadline": deadline}
        if "capacity" in body:
            domain.check_capacity(body["capacity"], store.enrolled_count(uow.conn, s.id))
        t = store.sessions
        uow.conn.execute(t.update().where(t.c.id == s.id).values(**body, updated_at=now))
        audit.record(uow.conn, audit.acting(), "training.session_update", f"session:{s.id}")
        seats.promote(uow.conn, uow.publish, store.get_session(uow.conn, s.id))
        return queries.session_view(uow.conn, store.get_session(uow.conn, s.id))


def _moved_deadline(s: Any, starts: Any, given: Any) -> Any:
    """A deadline that was the start (the default) follows a moved start; else it stays,
    but never after the new start."""
    if given is not None:
        return given
    return starts if s.enrolment_deadline == s.starts_at else min(s.enrolment_deadline, starts)


def cancel_session(engine: Engine, settings: Settings, session_id: str) -> dict[str, Any]:
    """Cancel a session: every seat gets `cancelled` (session_cancelled), then the session."""
    now = utcnow()
    with unit_of_work(engine, settings) as uow:
        s = _open_session(uow.conn, session_id, now)
        e = store.enrolments
        active = uow.conn.execute(sa.select(e).where(
            e.c.session_id == s.id, e.c.state.in_(domain.ACTIVE_SEATS)).order_by(e.c.seq)).all()
        for seat in active:
            seats.cancel_seat(uow.conn, uow.publish, s, seat, "session_cancelled")
        t = store.sessions
        uow.conn.execute(t.update().where(t.c.id == s.id).values(status=domain.CANCELLED,
                                                                 updated_at=now))
        uow.publish(contracts.TRAINING_SESSION_CANCELLED,
                    {"session_id": s.id, "course_id": s.course_id})
        audit.record(uow.conn, audit.acting(), "training.session_cancel", f"session:{s.id}")
        return queries.session_view(uow.conn, store.get_session(uow.conn, s.id))


def _open_session(conn: Connection, session_id: str, now: Any) -> Any:
    """The locked session, if still changeable (not cancelled, not started)."""
    s = store.lock_session(conn, session_id)
    if s is None:
        raise not_found("session")
    if s.status == domain.CANCELLED:
        raise conflict("session_cancelled", "Sesi ini telah dibatalkan.",
                       "This session has been cancelled.")
    if s.starts_at <= now:
        raise conflict("session_past", "Sesi ini sudah dimulai atau lewat.",
                       "This session has already started or is over.")
    return s


# --- enrolment -----------------------------------------------------------------------------
def enrol(engine: Engine, settings: Settings, owner: str, umkm_id: str,
          session_id: str) -> tuple[dict[str, Any], int]:
    """The owner's business takes a seat (201) or a waitlist place (202); the session row
    lock keeps capacity."""
    now = utcnow()
    with unit_of_work(engine, settings) as uow:
        conn = uow.conn
        biz = owned_umkm(conn, umkm_id, owner)
        s = store.lock_session(conn, session_id)
        if s is None:
            raise not_found("session")
        domain.check_enrolment_open(s.status, s.starts_at, s.enrolment_deadline, now)
        seat = store.find_enrolment(conn, s.id, umkm_id)
        if seat is not None and seat.state != domain.SEAT_CANCELLED:
            raise conflict("already_enrolled", "UMKM ini sudah terdaftar di sesi ini.",
                           "This business is already enrolled in this session.",
                           current_state=seat.state)
        state = domain.seat_for(s.capacity, store.enrolled_count(conn, s.id))
        values = {"state": state, "seq": s.next_seq, "province_code": biz.province_code,
                  "updated_at": now, "cancel_reason": None}
        e, t = store.enrolments, store.sessions
        conn.execute(t.update().where(t.c.id == s.id).values(next_seq=s.next_seq + 1))
        if seat is None:  # a business that cancelled earlier may come back: reuse its row
            conn.execute(e.insert().values(id=new_id(), session_id=s.id, umkm_id=umkm_id,
                                           created_at=now, **values))
        else:
            conn.execute(e.update().where(e.c.id == seat.id).values(**values))
        data = seats.seat_data(s, umkm_id, biz.province_code)
        if state == domain.ENROLLED:
            uow.publish(contracts.TRAINING_ENROLLED, data)
        else:
            pos = store.waitlist_position(conn, s.id, s.next_seq)
            uow.publish(contracts.TRAINING_WAITLISTED, data | {"position": pos})
        view = queries.my_enrolment(conn, s.id, umkm_id)
    return view, 201 if state == domain.ENROLLED else 202


def cancel_enrolment(engine: Engine, settings: Settings, owner: str, umkm_id: str,
                     session_id: str) -> dict[str, Any]:
    """The owner's business gives up its seat or place; the waitlist head takes a freed seat."""
    with unit_of_work(engine, settings) as uow:
        owned_umkm(uow.conn, umkm_id, owner)
        s = _open_session(uow.conn, session_id, utcnow())
        seat = store.find_enrolment(uow.conn, s.id, umkm_id)
        if seat is None or seat.state not in domain.ACTIVE_SEATS:
            raise conflict("not_enrolled", "UMKM ini tidak terdaftar di sesi ini.",
                           "This business is not enrolled in this session.")
        seats.cancel_seat(uow.conn, uow.publish, s, seat, "umkm_cancelled")
        if seat.state == domain.ENROLLED:
            seats.promote(uow.conn, uow.publish, s)
        return queries.my_enrolment(uow.conn, s.id, umkm_id)
