"""Pure training rules: seats and waitlist, enrolment windows, completion, attendance CSV."""

from __future__ import annotations

import csv
import io
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from services.common.errors import DomainError
from services.common.wib import WIB, to_utc, to_wib  # noqa: F401 (re-exported)

SCHEDULED, CANCELLED = "scheduled", "cancelled"
ENROLLED, WAITLISTED, ATTENDED, SEAT_CANCELLED = "enrolled", "waitlisted", "attended", "cancelled"
ACTIVE_SEATS: Final = (ENROLLED, WAITLISTED)


def check_schedule(starts_at: datetime, deadline: datetime, now: datetime) -> None:
    """A new or moved session starts in the future; enrolment closes no later than the start."""
    if starts_at <= now:
        raise DomainError(
            "starts_in_past",
            "Waktu mulai harus di masa depan.",
            "The start time must be in the future.",
            field="starts_at",
        )
    if deadline > starts_at:
        raise DomainError(
            "deadline_after_start",
            "Batas pendaftaran tidak boleh setelah sesi dimulai.",
            "The enrolment deadline cannot be after the session starts.",
            field="enrolment_deadline",
        )


def check_enrolment_open(
    status: str, starts_at: datetime, deadline: datetime, now: datetime
) -> None:
    """Refuse enrolment into a cancelled or past session, or after its deadline."""
    if status == CANCELLED:
        raise DomainError(
            "session_cancelled",
            "Sesi ini telah dibatalkan.",
            "This session has been cancelled.",
            kind="conflict",
        )
    if starts_at <= now:
        raise DomainError(
            "session_past",
            "Sesi ini sudah dimulai atau lewat.",
            "This session has already started or is over.",
            kind="conflict",
        )
    if now > deadline:
        raise DomainError(
            "enrolment_closed",
            "Pendaftaran sesi ini sudah ditutup.",
            "Enrolment for this session is closed.",
            kind="conflict",
        )


def seat_for(capacity: int, enrolled: int) -> str:
    """The state a new enrolment gets: a seat while any is left, else the waitlist."""
    return ENROLLED if enrolled < capacity else WAITLISTED


def seats_left(capacity: int, enrolled: int) -> int:
    return max(0, capacity - enrolled)


def to_promote(capacity: int, enrolled: int, waitlist: list[str]) -> list[str]:
    """The head of the waitlist (in arrival order) that now fits into free seats."""
    return waitlist[: seats_left(capacity, enrolled)]


def check_capacity(new_capacity: int, enrolled: int) -> None:
    """Capacity may shrink only down to the seats already taken."""
    if new_capacity < enrolled:
        raise DomainError(
            "capacity_below_enrolled",
            f"Kapasitas tidak boleh kurang dari {enrolled} peserta terdaftar.",
            f"Capacity cannot be below the {enrolled} enrolled participants.",
            kind="conflict",
            field="capacity",
        )


def course_complete(module_keys: list[str], done: set[str]) -> bool:
    """Self-paced completion: every module of the course is done."""
    return bool(module_keys) and set(module_keys) <= done


def certificate_number(kind: str, when: datetime) -> str:
    """Certificate number, e.g. BBI-W-2026-7F3A9C21D0 (W webinar, E e-learning)."""
    letter = "W" if kind == "webinar" else "E"
    return f"BBI-{letter}-{to_wib(when).year}-{secrets.token_hex(5).upper()}"


# What certificate_number makes; the public check looks up nothing else.
CERTIFICATE_NUMBER = re.compile(r"BBI-[WE]-[0-9]{4}-[0-9A-F]{10}", re.ASCII)


def normal_certificate_number(text: str) -> str | None:
    """A certificate number as typed (any case, spaces around) in its stored form, or None
    when it cannot be one."""
    number = text.strip().upper()
    return number if CERTIFICATE_NUMBER.fullmatch(number) else None


@dataclass(frozen=True)
class RowError:
    row: int  # CSV line number (the header is line 1) or the JSON list index
    code: str
    message_id: str
    message_en: str


def parse_attendance_csv(text: str) -> tuple[list[tuple[int, str]], list[RowError]]:
    """Rows of an attendance report: (line, umkm_id) pairs and per-row errors."""
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None or [h.strip().lstrip("\ufeff").lower() for h in header] != ["umkm_id"]:
        return [], [
            RowError(
                1,
                "csv_header_invalid",
                "Baris judul harus tepat 'umkm_id'.",
                "The header row must be exactly 'umkm_id'.",
            )
        ]
    rows: list[tuple[int, str]] = []
    errors: list[RowError] = []
    for cells in reader:
        line = reader.line_num
        if not cells or all(not c.strip() for c in cells):
            continue  # blank lines (e.g. a trailing newline) carry nothing
        if len(cells) != 1:
            errors.append(
                RowError(
                    line,
                    "csv_row_malformed",
                    f"Baris berisi {len(cells)} kolom, harus 1.",
                    f"The row has {len(cells)} columns; expected 1.",
                )
            )
            continue
        rows.append((line, cells[0].strip()))
    return rows, errors


def check_attendance_rows(
    rows: list[tuple[int, str]], seats: dict[str, str], withdrawn: frozenset[str] = frozenset()
) -> tuple[list[str], list[RowError]]:
    """Ids to record (seat holders) and per-row errors; `seats` maps umkm id -> state."""
    ids: list[str] = []
    errors: list[RowError] = []
    seen: set[str] = set()
    for row, raw in rows:
        uid = _uuid(raw)
        if uid is None:
            errors.append(
                RowError(
                    row, "not_uuid", "Bukan UUID yang valid.", f"Not a valid UUID: {raw[:40]!r}."
                )
            )
        elif uid in seen:
            errors.append(
                RowError(
                    row,
                    "duplicate_row",
                    "UMKM ini sudah ada di baris lain.",
                    "This business appears on another row.",
                )
            )
        elif uid in withdrawn and seats.get(uid) != ATTENDED:
            errors.append(
                RowError(
                    row,
                    "umkm_withdrawn",
                    "UMKM ini telah menarik pendaftarannya.",
                    "This business has withdrawn its registration.",
                )
            )
        elif seats.get(uid) not in (ENROLLED, ATTENDED):
            errors.append(
                RowError(
                    row,
                    "not_enrolled",
                    "UMKM ini tidak terdaftar (mendapat kursi) di sesi ini.",
                    "This business holds no seat in this session.",
                )
            )
        else:
            seen.add(uid)
            ids.append(uid)
    return ids, errors


def _uuid(raw: str) -> str | None:
    try:
        return str(uuid.UUID(raw))
    except (ValueError, AttributeError, TypeError):
        return None
