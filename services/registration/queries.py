"""Operator listing: filters, keyset pagination and CSV export of the same filter."""
from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from services.common.errors import ApiError
from services.common.wib import to_wib
from services.registration.store import platforms_of, umkm, umkm_platforms
from services.registration.views import view

CSV_COLUMNS = ("id", "status", "curation", "scale", "channel", "partner_code",
               "province_code", "regency_code", "kbli_code", "kbli_section",
               "platforms_declared", "platforms", "qris", "business_name", "nib",
               "nik_masked", "owner_name", "phone", "email", "registered_at_wib",
               "verified_at_wib", "withdrawn_at_wib")
_TEXT = ("business_name", "owner_name", "email")


def _where(args: dict[str, Any]) -> list[Any]:
    c = umkm.c
    out = [getattr(c, k) == args[k] for k in ("province_code", "status", "scale") if args.get(k)]
    if args.get("curation") == "none":
        out.append(c.curation.is_(None))
    elif args.get("curation"):
        out.append(c.curation == args["curation"])
    if args.get("platform"):
        p = umkm_platforms.c
        out.append(sa.exists().where(p.umkm_id == c.id, p.platform == args["platform"]))
    return out


def _decode(cursor: str) -> tuple[datetime, str]:
    try:
        ts, last_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return datetime.fromisoformat(ts), str(last_id)
    except (ValueError, TypeError):
        raise ApiError(400, "cursor_invalid", "Kursor halaman tidak valid.",
                       "Invalid page cursor.") from None


def _encode(row: Any) -> str:
    return base64.urlsafe_b64encode(
        json.dumps([row.registered_at.isoformat(), row.id]).encode()).decode()


def _batch(engine: Engine, args: dict[str, Any], after: tuple[datetime, str] | None,
           limit: int) -> tuple[list[dict[str, Any]], Any]:
    c = umkm.c
    q = sa.select(umkm).where(*_where(args)).order_by(c.registered_at, c.id).limit(limit + 1)
    if after is not None:  # keyset: stable under inserts, no OFFSET scans
        q = q.where(sa.or_(c.registered_at > after[0],
                           sa.and_(c.registered_at == after[0], c.id > after[1])))
    with engine.connect() as conn:
        rows = conn.execute(q).all()
        more = len(rows) > limit
        rows = rows[:limit]
        plats = platforms_of(conn, [r.id for r in rows])
    return [view(r, plats[r.id], operator=True) for r in rows], (rows[-1] if more else None)


def page(engine: Engine, args: dict[str, Any], max_page: int) -> dict[str, Any]:
    """One page of registrations and the cursor of the next one (None at the end)."""
    after = _decode(args["cursor"]) if args.get("cursor") else None
    items, last = _batch(engine, args, after, min(args["limit"], max_page))
    return {"items": items, "next_cursor": _encode(last) if last is not None else None}


def _cell(key: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return to_wib(value).isoformat()  # people read exports: WIB
    if isinstance(value, list):
        return ";".join(v["platform"] if isinstance(v, dict) else v for v in value)
    text = str(value)
    if key in _TEXT and text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        text = "'" + text  # keep spreadsheets from running a formula typed into a form
    return text


def export_csv(engine: Engine, args: dict[str, Any], batch: int = 1000) -> Iterator[str]:
    """The whole filtered set as CSV, streamed batch by batch."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_COLUMNS)
    after = _decode(args["cursor"]) if args.get("cursor") else None
    while True:
        items, last = _batch(engine, args, after, batch)
        for it in items:
            it = {**it, **{k + "_wib": it[k] for k in
                           ("registered_at", "verified_at", "withdrawn_at")}}
            writer.writerow([_cell(k, it.get(k)) for k in CSV_COLUMNS])
        yield buf.getvalue()
        buf.seek(0)
        buf.truncate()
        if last is None:
            return
        after = (last.registered_at, last.id)
