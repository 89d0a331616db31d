"""Completing training: attendance of a webinar session, or every module of a self-paced
course. Both issue a certificate number and publish `completed`."""
from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from services.common import audit
from services.common.config import Settings
from services.common.db.engine import new_id, utcnow
from services.common.http.errors import ApiError, conflict, field_error, not_found
from services.common.messaging import contracts
from services.training import config, domain, store
from services.training.handlers import owned_umkm, unit_of_work
from services.training.seats import Publish, seat_data


def _complete(conn: Connection, publish: Publish, umkm_id: str, course_id: str, key_id: str,
              kind: str, province: str, now: datetime) -> str:
    """Record one completion with a fresh certificate number and publish `completed`."""
    number = domain.certificate_number(kind, now)
    conn.execute(store.completions.insert().values(
        id=new_id(), umkm_id=umkm_id, course_id=course_id, key_id=key_id, kind=kind,
        certificate_number=number, completed_at=now))
    publish(contracts.TRAINING_COMPLETED, {
        "key_id": key_id, "umkm_id": umkm_id, "course_id": course_id,
        "province_code": province, "kind": kind, "certificate_number": number})
    return number


def invalid_rows(errors: list[domain.RowError]) -> ApiError:
    """422 listing every bad row; nothing of the report was applied."""
    rows: dict[str, list[dict[str, str]]] = {}
    for e in errors:
        rows.setdefault(str(e.row), []).append(field_error(e.code, e.message_id, e.message_en))
    return ApiError(422, "attendance_invalid",
                    f"Laporan kehadiran berisi {len(errors)} kesalahan; tidak ada yang disimpan.",
                    f"The attendance report has {len(errors)} error(s); nothing was recorded.",
                    errors={"rows": rows})


def record_attendance(engine: Engine, settings: Settings, session_id: str,
                      rows: list[tuple[int, str]],
                      parse_errors: list[domain.RowError] | None = None) -> dict[str, Any]:
    """All-or-nothing: every row must name a seat holder, else 422 and no change."""
    if len(rows) > config.max_attendance_rows():
        raise ApiError(413, "attendance_too_large",
                       f"Maksimal {config.max_attendance_rows()} baris per laporan.",
                       f"At most {config.max_attendance_rows()} rows per report.")
    now = utcnow()
    with unit_of_work(engine, settings) as uow:
        s = store.lock_session(uow.conn, session_id)
        if s is None:
            raise not_found("session")
        if s.status == domain.CANCELLED:
            raise conflict("session_cancelled", "Sesi ini telah dibatalkan.",
                           "This session has been cancelled.")
        if s.starts_at > now:
            raise conflict("session_not_started", "Sesi belum dimulai; kehadiran belum bisa "
                           "dicatat.", "The session has not started; attendance cannot be "
                           "recorded yet.")
        e = store.enrolments
        seat_rows = {r.umkm_id: r for r in uow.conn.execute(
            sa.select(e).where(e.c.session_id == s.id))}
        d = uow.conn.execute(sa.select(store.directory.c.umkm_id).where(
            store.directory.c.umkm_id.in_(list(seat_rows)),
            store.directory.c.status == "withdrawn")).scalars()
        ids, errors = domain.check_attendance_rows(
            rows, {u: r.state for u, r in seat_rows.items()}, frozenset(d))
        errors = sorted((parse_errors or []) + errors, key=lambda x: x.row)
        if errors:
            raise invalid_rows(errors)
        recorded, certificates = 0, []
        for uid in ids:
            seat = seat_rows[uid]
            if seat.state == domain.ATTENDED:  # a re-uploaded report changes nothing
                certificates.append(_certificate_of(uow.conn, uid, s.id))
                continue
            uow.conn.execute(e.update().where(e.c.id == seat.id).values(
                state=domain.ATTENDED, updated_at=now))
            uow.publish(contracts.TRAINING_ATTENDED, seat_data(s, uid, seat.province_code))
            number = _complete(uow.conn, uow.publish, uid, s.course_id, s.id, "webinar",
                               seat.province_code, now)
            certificates.append({"umkm_id": uid, "certificate_number": number})
            recorded += 1
        audit.record(uow.conn, audit.acting(), "training.attendance", f"session:{s.id}",
                     rows=len(ids), recorded=recorded)
    return {"session_id": s.id, "recorded": recorded,
            "already_recorded": len(ids) - recorded, "certificates": certificates}


def _certificate_of(conn: Connection, umkm_id: str, key_id: str) -> dict[str, str]:
    c = store.completions
    number = conn.execute(sa.select(c.c.certificate_number).where(
        c.c.umkm_id == umkm_id, c.c.key_id == key_id)).scalar_one()
    return {"umkm_id": umkm_id, "certificate_number": number}


def module_done(engine: Engine, settings: Settings, owner: str, umkm_id: str, course_id: str,
                module_key: str) -> dict[str, Any]:
    """Mark a module done for the owner's business (idempotent); the last one completes the
    course with a certificate."""
    now = utcnow()
    with unit_of_work(engine, settings) as uow:
        conn = uow.conn
        biz = owned_umkm(conn, umkm_id, owner)
        course = store.get_course(conn, course_id)
        if course is None:
            raise not_found("course")
        keys = [m["key"] for m in course.modules]
        if module_key not in keys:
            raise not_found("module")
        p = store.module_progress
        done = set(conn.execute(sa.select(p.c.module_key).where(
            p.c.umkm_id == umkm_id, p.c.course_id == course_id)).scalars())
        if module_key not in done:
            conn.execute(p.insert().values(umkm_id=umkm_id, course_id=course_id,
                                           module_key=module_key, done_at=now))
            done.add(module_key)
        c = store.completions
        number = conn.execute(sa.select(c.c.certificate_number).where(
            c.c.umkm_id == umkm_id, c.c.key_id == course_id)).scalar()
        if number is None and domain.course_complete(keys, done):
            number = _complete(conn, uow.publish, umkm_id, course_id, course_id, "elearning",
                               biz.province_code, now)
    return {"course_id": course_id, "modules_total": len(keys),
            "modules_done": [k for k in keys if k in done],
            "completed": number is not None, "certificate_number": number}


def progress(engine: Engine, owner: str, umkm_id: str, course_id: str) -> dict[str, Any]:
    """The owner's business's progress through a self-paced course."""
    with engine.connect() as conn:
        owned_umkm(conn, umkm_id, owner)
        course = store.get_course(conn, course_id)
        if course is None:
            raise not_found("course")
        p, c = store.module_progress, store.completions
        done = set(conn.execute(sa.select(p.c.module_key).where(
            p.c.umkm_id == umkm_id, p.c.course_id == course_id)).scalars())
        number = conn.execute(sa.select(c.c.certificate_number).where(
            c.c.umkm_id == umkm_id, c.c.key_id == course_id)).scalar()
    keys = [m["key"] for m in course.modules]
    return {"course_id": course_id, "modules_total": len(keys),
            "modules_done": [k for k in keys if k in done],
            "completed": number is not None, "certificate_number": number}
