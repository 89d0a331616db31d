"""Seat moves (cancel a seat, promote from the waitlist, the withdrawn cascade); a module of
their own because both the handlers and the consumer's withdrawn cascade make them. Callers
hold the session row lock and pass how to publish."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Connection

from services.common.db.engine import utcnow
from services.common.messaging import contracts
from services.training import domain, store

Publish = Callable[[str, dict[str, Any]], Any]


def seat_data(session: Any, umkm_id: str, province_code: str) -> dict[str, Any]:
    """The common data of every seat event (ids and province only: no personal data)."""
    return {"session_id": session.id, "umkm_id": umkm_id, "course_id": session.course_id,
            "province_code": province_code}


def cancel_seat(conn: Connection, publish: Publish, session: Any, seat: Any,
                reason: str) -> None:
    """Cancel one enrolled/waitlisted seat and say so (`cancelled` with its reason)."""
    store.update_enrolment(conn, seat.id, {"state": domain.SEAT_CANCELLED,
                                           "cancel_reason": reason, "updated_at": utcnow()})
    publish(contracts.TRAINING_CANCELLED, seat_data(session, seat.umkm_id, seat.province_code)
            | {"previous_state": seat.state, "reason": reason})


def promote(conn: Connection, publish: Publish, session: Any) -> list[str]:
    """Fill free seats from the head of the waitlist; returns the promoted business ids."""
    if session.status != domain.SCHEDULED:
        return []
    waiting = store.waitlist(conn, session.id)
    enrolled = store.enrolled_count(conn, session.id)
    heads = domain.to_promote(session.capacity, enrolled, [w.id for w in waiting])
    promoted = []
    for w in waiting[:len(heads)]:
        store.update_enrolment(conn, w.id, {"state": domain.ENROLLED, "updated_at": utcnow()})
        publish(contracts.TRAINING_PROMOTED, seat_data(session, w.umkm_id, w.province_code))
        promoted.append(w.umkm_id)
    return promoted


def cancel_all_of(conn: Connection, publish: Publish, umkm_id: str) -> int:
    """The withdrawn cascade: cancel the business's seats in upcoming sessions, refill them."""
    session_ids = store.upcoming_session_ids_of(conn, umkm_id, utcnow())
    for sid in session_ids:  # sorted: a fixed lock order never deadlocks with another cascade
        session = store.lock_session(conn, sid)
        seat = store.find_enrolment(conn, sid, umkm_id)
        if seat is None or seat.state not in domain.ACTIVE_SEATS:
            continue
        cancel_seat(conn, publish, session, seat, "withdrawn")
        if seat.state == domain.ENROLLED:
            promote(conn, publish, session)
    return len(session_ids)
