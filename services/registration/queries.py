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
from sqlalchemy.engine import Connection, Engine

from services.common import audit
from services.common.http.errors import ApiError, not_found
from services.common.wib import to_wib
from services.registration import scope as scopes
from services.registration.store import get_umkm, platforms_of, umkm, umkm_platforms
from services.registration.views import view

CSV_COLUMNS = ("id", "status", "curation", "scale", "channel", "partner_code",
               "province_code", "regency_code", "kbli_code", "kbli_section",
               "platforms_declared", "platforms", "qris", "business_name", "nib",
               "nik_masked", "owner_name", "phone", "email", "registered_at_wib",
               "verified_at_wib", "withdrawn_at_wib")
_TEXT = ("business_name", "owner_name", "email")


def _where(args: dict[str, Any], scope: frozenset[str] | None) -> list[Any]:
    c = umkm.c
    out = [getattr(c, k) == args[k] for k in ("province_code", "status", "scale") if args.get(k)]
    if scope is not None:
        out.append(c.province_code.in_(sorted(scope)))
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


def _batch(conn: Connection, args: dict[str, Any], scope: frozenset[str] | None,
           after: tuple[datetime, str] | None, limit: int) -> tuple[list[dict[str, Any]], Any]:
    c = umkm.c
    q = sa.select(umkm).where(*_where(args, scope)).order_by(c.registered_at, c.id)
    q = q.limit(limit + 1)
    if after is not None:  # keyset: stable under inserts, no OFFSET scans
        q = q.where(sa.or_(c.registered_at > after[0],
                           sa.and_(c.registered_at == after[0], c.id > after[1])))
    rows = conn.execute(q).all()
    more = len(rows) > limit
    rows = rows[:limit]
    plats = platforms_of(conn, [r.id for r in rows])
    return [view(r, plats[r.id], operator=True) for r in rows], (rows[-1] if more else None)


def _filters(args: dict[str, Any], scope: frozenset[str] | None) -> dict[str, Any]:
    """What an audit row says about a list or export: its filter and the caller's scope."""
    return {k: args.get(k) for k in ("province_code", "status", "scale", "platform",
                                     "curation")} | {"scope": scopes.detail(scope)}


def page(engine: Engine, args: dict[str, Any], max_page: int, actor: Any) -> dict[str, Any]:
    """One page of registrations (with personal data) and the cursor of the next one (None
    at the end), read in the transaction that records who read it."""
    scope = scopes.of(actor)
    scopes.check_filter(scope, args.get("province_code"))
    after = _decode(args["cursor"]) if args.get("cursor") else None
    with engine.begin() as conn:
        items, last = _batch(conn, args, scope, after, min(args["limit"], max_page))
        audit.record(conn, actor, "umkm.list", "umkm", rows=len(items),
                     **_filters(args, scope))
    return {"items": items, "next_cursor": _encode(last) if last is not None else None}


def operator_view(engine: Engine, umkm_id: str, actor: Any) -> dict[str, Any]:
    """One registration with its personal data, for staff in scope; the read is recorded."""
    with engine.begin() as conn:
        row = get_umkm(conn, umkm_id)
        if row is None:
            raise not_found("umkm")
        scopes.check_row(scopes.of(actor), row)
        audit.record(conn, actor, "umkm.read", f"umkm:{umkm_id}")
        return view(row, platforms_of(conn, [umkm_id])[umkm_id], operator=True)


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


def export_csv(engine: Engine, args: dict[str, Any], actor: Any,
               batch: int = 1000) -> Iterator[str]:
    """The whole filtered set as CSV, streamed batch by batch. The export is recorded in the
    transaction that reads the first batch, so no row leaves before the audit row commits."""
    scope = scopes.of(actor)
    scopes.check_filter(scope, args.get("province_code"))
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_COLUMNS)
    after = _decode(args["cursor"]) if args.get("cursor") else None
    first = True
    while True:
        with engine.begin() if first else engine.connect() as conn:
            items, last = _batch(conn, args, scope, after, batch)
            if first:
                audit.record(conn, actor, "umkm.export", "umkm", **_filters(args, scope))
        first = False
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
