"""The training service's writes: one short function per use case, each in a unit of work,
through the store's repository (reads are in queries.py)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection, Engine

from services.common import audit
from services.common.db.engine import new_id, utcnow
from services.common.errors import DomainError, FieldMessage
from services.common.http.errors import ApiError, conflict, not_found
from services.common.messaging import contracts
from services.common.messaging.uow import UnitOfWork
from services.training import domain, queries, seats, store
from services.training.config import TrainingSettings
from services.training.seats import Publish, seat_data

SOURCE = "training"


def unit_of_work(engine: Engine, settings: TrainingSettings) -> UnitOfWork:
    return UnitOfWork(engine, store.metadata, SOURCE, settings.topic_prefix)


# --- courses -------------------------------------------------------------------------------
def create_course(engine: Engine, settings: TrainingSettings,
                  body: dict[str, Any]) -> dict[str, Any]:
    now = utcnow()
    row = {"id": new_id(), "created_at": now, "updated_at": now} | body
    with unit_of_work(engine, settings) as uow:
        store.add_course(uow.conn, row)
        audit.record(uow.conn, audit.acting(), "training.course_create", f"course:{row['id']}")
    return row


def update_course(engine: Engine, settings: TrainingSettings, course_id: str,
                  body: dict[str, Any]) -> dict[str, Any]:
    with unit_of_work(engine, settings) as uow:
        _course(uow.conn, course_id)
        store.update_course(uow.conn, course_id, body | {"updated_at": utcnow()})
        audit.record(uow.conn, audit.acting(), "training.course_update", f"course:{course_id}")
        return dict(_course(uow.conn, course_id)._mapping)


def _course(conn: Connection, course_id: str) -> store.Row:
    course = store.get_course(conn, course_id)
    if course is None:
        raise not_found("course")
    return course


# --- sessions ------------------------------------------------------------------------------
def create_session(engine: Engine, settings: TrainingSettings,
                   body: dict[str, Any]) -> dict[str, Any]:
    """Schedule a webinar session; publishes `session_scheduled`."""
    now = utcnow()
    starts = body["starts_at"]
    deadline = body.get("enrolment_deadline") or starts
    domain.check_schedule(starts, deadline, now)
    row = {"id": new_id(), "course_id": str(body["course_id"]), "starts_at": starts,
           "duration_minutes": body["duration_minutes"],
           "capacity": body.get("capacity") or settings.default_capacity,
           "join_link": body["join_link"], "enrolment_deadline": deadline,
           "status": domain.SCHEDULED, "next_seq": 1, "created_at": now, "updated_at": now}
    with unit_of_work(engine, settings) as uow:
        _course(uow.conn, row["course_id"])
        store.add_session(uow.conn, row)
        audit.record(uow.conn, audit.acting(), "training.session_schedule", f"session:{row['id']}")
        uow.publish(contracts.TRAINING_SESSION_SCHEDULED, {
            "session_id": row["id"], "course_id": row["course_id"],
            "capacity": row["capacity"], "starts_at": starts})
        return queries.session_view(uow.conn, store.get_session(uow.conn, row["id"]))


def update_session(engine: Engine, settings: TrainingSettings, session_id: str,
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
        store.update_session(uow.conn, s.id, body | {"updated_at": now})
        audit.record(uow.conn, audit.acting(), "training.session_update", f"session:{s.id}")
        seats.promote(uow.conn, uow.publish, store.get_session(uow.conn, s.id))
        return queries.session_view(uow.conn, store.get_session(uow.conn, s.id))


def _moved_deadline(s: store.Row, starts: datetime, given: datetime | None) -> datetime:
    """A deadline that was the start (the default) follows a moved start; else it stays,
    but never after the new start."""
    if given is not None:
        return given
    return starts if s.enrolment_deadline == s.starts_at else min(s.enrolment_deadline, starts)


def cancel_session(engine: Engine, settings: TrainingSettings,
                   session_id: str) -> dict[str, Any]:
    """Cancel a session: every seat gets `cancelled` (session_cancelled), then the session."""
    now = utcnow()
    with unit_of_work(engine, settings) as uow:
        s = _open_session(uow.conn, session_id, now)
        for seat in store.active_seats(uow.conn, s.id):
            seats.cancel_seat(uow.conn, uow.publish, s, seat, "session_cancelled")
        store.update_session(uow.conn, s.id, {"status": domain.CANCELLED, "updated_at": now})
        uow.publish(contracts.TRAINING_SESSION_CANCELLED,
                    {"session_id": s.id, "course_id": s.course_id})
        audit.record(uow.conn, audit.acting(), "training.session_cancel", f"session:{s.id}")
        return queries.session_view(uow.conn, store.get_session(uow.conn, s.id))


def _live_session(conn: Connection, session_id: str) -> store.Row:
    """The locked session, unless it does not exist or was cancelled."""
    s = store.lock_session(conn, session_id)
    if s is None:
        raise not_found("session")
    if s.status == domain.CANCELLED:
        raise conflict("session_cancelled", "Sesi ini telah dibatalkan.",
                       "This session has been cancelled.")
    return s


def _open_session(conn: Connection, session_id: str, now: datetime) -> store.Row:
    """The locked session, if still changeable (not cancelled, not started)."""
    s = _live_session(conn, session_id)
    if s.starts_at <= now:
        raise conflict("session_past", "Sesi ini sudah dimulai atau lewat.",
                       "This session has already started or is over.")
    return s


# --- enrolment -----------------------------------------------------------------------------
def enrol(engine: Engine, settings: TrainingSettings, owner: str, umkm_id: str,
          session_id: str) -> tuple[dict[str, Any], int]:
    """The owner's business takes a seat (201) or a waitlist place (202); the session row
    lock keeps capacity."""
    now = utcnow()
    with unit_of_work(engine, settings) as uow:
        conn = uow.conn
        biz = queries.owned_umkm(conn, settings, umkm_id, owner)
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
        store.update_session(conn, s.id, {"next_seq": s.next_seq + 1})
        if seat is None:  # a business that cancelled earlier may come back: reuse its row
            store.add_enrolment(conn, values | {"id": new_id(), "session_id": s.id,
                                                "umkm_id": umkm_id, "created_at": now})
        else:
            store.update_enrolment(conn, seat.id, values)
        data = seat_data(s, umkm_id, biz.province_code)
        if state == domain.ENROLLED:
            uow.publish(contracts.TRAINING_ENROLLED, data)
        else:
            pos = store.waitlist_position(conn, s.id, s.next_seq)
            uow.publish(contracts.TRAINING_WAITLISTED, data | {"position": pos})
        view = queries.my_enrolment(conn, s.id, umkm_id)
    return view, 201 if state == domain.ENROLLED else 202


def cancel_enrolment(engine: Engine, settings: TrainingSettings, owner: str, umkm_id: str,
                     session_id: str) -> dict[str, Any]:
    """The owner's business gives up its seat or place; the waitlist head takes a freed seat."""
    with unit_of_work(engine, settings) as uow:
        queries.owned_umkm(uow.conn, settings, umkm_id, owner)
        s = _open_session(uow.conn, session_id, utcnow())
        seat = store.find_enrolment(uow.conn, s.id, umkm_id)
        if seat is None or seat.state not in domain.ACTIVE_SEATS:
            raise conflict("not_enrolled", "UMKM ini tidak terdaftar di sesi ini.",
                           "This business is not enrolled in this session.")
        seats.cancel_seat(uow.conn, uow.publish, s, seat, "umkm_cancelled")
        if seat.state == domain.ENROLLED:
            seats.promote(uow.conn, uow.publish, s)
        return queries.my_enrolment(uow.conn, s.id, umkm_id)


# --- completion: webinar attendance, or every module of a self-paced course ----------------
def record_attendance(engine: Engine, settings: TrainingSettings, session_id: str,
                      rows: list[tuple[int, str]],
                      parse_errors: list[domain.RowError] | None = None) -> dict[str, Any]:
    """All-or-nothing: every row must name a seat holder, else 422 and no change."""
    if len(rows) > settings.max_attendance_rows:
        raise ApiError(413, "attendance_too_large",
                       f"Maksimal {settings.max_attendance_rows} baris per laporan.",
                       f"At most {settings.max_attendance_rows} rows per report.")
    now = utcnow()
    with unit_of_work(engine, settings) as uow:
        s = _started_session(uow.conn, session_id, now)
        seat_rows = store.seats_of(uow.conn, s.id)
        ids, errors = domain.check_attendance_rows(
            rows, {u: r.state for u, r in seat_rows.items()},
            store.withdrawn_among(uow.conn, list(seat_rows)))
        errors = sorted((parse_errors or []) + errors, key=lambda x: x.row)
        if errors:
            raise _invalid_rows(errors)
        certificates = []
        for uid in ids:
            seat = seat_rows[uid]
            if seat.state == domain.ATTENDED:  # a re-uploaded report changes nothing
                number = store.certificate_number(uow.conn, uid, s.id)
            else:
                store.update_enrolment(uow.conn, seat.id, {"state": domain.ATTENDED,
                                                           "updated_at": now})
                uow.publish(contracts.TRAINING_ATTENDED, seat_data(s, uid, seat.province_code))
                number = _complete(uow.conn, uow.publish, uid, s.course_id, s.id, "webinar",
                                   seat.province_code, now)
            certificates.append({"umkm_id": uid, "certificate_number": number})
        recorded = sum(seat_rows[uid].state != domain.ATTENDED for uid in ids)
        audit.record(uow.conn, audit.acting(), "training.attendance", f"session:{s.id}",
                     rows=len(ids), recorded=recorded)
    return {"session_id": s.id, "recorded": recorded,
            "already_recorded": len(ids) - recorded, "certificates": certificates}


def _started_session(conn: Connection, session_id: str, now: datetime) -> store.Row:
    """The locked session, if attendance can be recorded (not cancelled, started)."""
    s = _live_session(conn, session_id)
    if s.starts_at > now:
        raise conflict("session_not_started", "Sesi belum dimulai; kehadiran belum bisa "
                       "dicatat.", "The session has not started; attendance cannot be "
                       "recorded yet.")
    return s


def _invalid_rows(errors: list[domain.RowError]) -> DomainError:
    """422 listing every bad row; nothing of the report was applied."""
    rows: dict[str, list[FieldMessage]] = {}
    for e in errors:
        rows.setdefault(str(e.row), []).append(FieldMessage(e.code, e.message_id, e.message_en))
    return DomainError("attendance_invalid",
                       f"Laporan kehadiran berisi {len(errors)} kesalahan; tidak ada yang "
                       "disimpan.",
                       f"The attendance report has {len(errors)} error(s); nothing was "
                       "recorded.", errors={"rows": rows})


def module_done(engine: Engine, settings: TrainingSettings, owner: str, umkm_id: str,
                course_id: str, module_key: str) -> dict[str, Any]:
    """Mark a module done for the owner's business (idempotent); the last one completes the
    course with a certificate."""
    now = utcnow()
    with unit_of_work(engine, settings) as uow:
        conn = uow.conn
        biz = queries.owned_umkm(conn, settings, umkm_id, owner)
        course = _course(conn, course_id)
        keys = [m["key"] for m in course.modules]
        if module_key not in keys:
            raise not_found("module")
        done = store.modules_done(conn, umkm_id, course_id)
        if module_key not in done:
            store.add_module_done(conn, umkm_id, course_id, module_key, now)
            done.add(module_key)
        number = store.certificate_number(conn, umkm_id, course_id)
        if number is None and domain.course_complete(keys, done):
            number = _complete(conn, uow.publish, umkm_id, course_id, course_id, "elearning",
                               biz.province_code, now)
    return queries.course_progress(course, done, number)


def _complete(conn: Connection, publish: Publish, umkm_id: str, course_id: str, key_id: str,
              kind: str, province: str, now: datetime) -> str:
    """Record one completion with a fresh certificate number and publish `completed`."""
    number = domain.certificate_number(kind, now)
    store.add_completion(conn, {"id": new_id(), "umkm_id": umkm_id, "course_id": course_id,
                                "key_id": key_id, "kind": kind,
                                "certificate_number": number, "completed_at": now})
    publish(contracts.TRAINING_COMPLETED, {
        "key_id": key_id, "umkm_id": umkm_id, "course_id": course_id,
        "province_code": province, "kind": kind, "certificate_number": number})
    return number
