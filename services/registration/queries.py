"""Reads: one registration and the owner's list (the fields each caller may see), the
operator listing (filters, keyset pagination) and the CSV export of the same filter."""
from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from services.common import audit
from services.common.http import csv_export
from services.common.http.errors import ApiError, not_found
from services.common.wib import to_wib
from services.registration import domain
from services.registration import scope as scopes
from services.registration.store import (
    Umkm,
    get_umkm,
    owned_by,
    platforms_of,
    split_platforms,
    umkm,
    umkm_platforms,
)

PUBLIC_FIELDS = ("id", "status", "curation", "curation_reason", "business_name", "nib",
                 "channel", "partner_code", "province_code", "regency_code", "kbli_code",
                 "kbli_section", "scale", "qris", "registered_at", "verified_at",
                 "withdrawn_at", "claimed_at")
OPERATOR_FIELDS = ("owner_name", "phone", "email", "address", "postal_code", "npwp",
                   "mentor_org", "capital_idr", "annual_sales_idr", "consent_version",
                   "consent_at")

CSV_COLUMNS = ("id", "status", "curation", "scale", "channel", "partner_code",
               "province_code", "regency_code", "kbli_code", "kbli_section",
               "platforms_declared", "platforms", "qris", "business_name", "nib",
               "nik_masked", "owner_name", "phone", "email", "registered_at_wib",
               "verified_at_wib", "withdrawn_at_wib")
_TEXT = ("business_name", "owner_name", "email")


def visible_fields(row: Umkm, platforms: list[dict[str, Any]],
                   operator: bool) -> dict[str, Any]:
    """The fields of one registration this caller may see: the owner's non-personal ones, an
    operator's also the personal ones (NIK, and an NPWP that is a NIK, masked)."""
    m = row._mapping
    out = {k: m[k] for k in PUBLIC_FIELDS}
    out["platforms_declared"] = split_platforms(m["platforms_declared"])
    out["platforms"] = platforms
    if operator:
        out.update({k: m[k] for k in OPERATOR_FIELDS})
        out["nik_masked"] = domain.mask_nik(m["nik_last4"]) if m["nik_last4"] else None
        if m["npwp_last4"]:  # an NPWP that is a NIK: masked like one
            out["npwp"] = domain.mask_nik(m["npwp_last4"])
    return out


def owner_view(engine: Engine, umkm_id: str, owner: str) -> dict[str, Any]:
    """One registration as its owner (`owner`, the caller's subject) sees it."""
    with engine.connect() as conn:
        row = get_umkm(conn, umkm_id)
        if row is None:
            raise not_found("umkm")
        scopes.check_owner(row, owner)
        return visible_fields(row, platforms_of(conn, [umkm_id])[umkm_id], operator=False)


def owned(engine: Engine, owner: str, limit: int) -> dict[str, Any]:
    """The signed-in owner's businesses, each with where it is in its lifecycle."""
    with engine.connect() as conn:
        rows = owned_by(conn, owner, limit)
        plats = platforms_of(conn, [r.id for r in rows])
    return {"items": [visible_fields(r, plats[r.id], operator=False) for r in rows]}


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


def _encode(row: Umkm) -> str:
    return base64.urlsafe_b64encode(
        json.dumps([row.registered_at.isoformat(), row.id]).encode()).decode()


def _batch(conn: Connection, args: dict[str, Any], scope: frozenset[str] | None,
           after: tuple[datetime, str] | None,
           limit: int) -> tuple[list[dict[str, Any]], Umkm | None]:
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
    return ([visible_fields(r, plats[r.id], operator=True) for r in rows],
            rows[-1] if more else None)


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
        return visible_fields(row, platforms_of(conn, [umkm_id])[umkm_id], operator=True)


def _cell(key: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return to_wib(value).isoformat()  # people read exports: WIB
    if isinstance(value, list):
        return ";".join(v["platform"] if isinstance(v, dict) else v for v in value)
    text = str(value)
    # Keep spreadsheets from running a formula typed into a form.
    return csv_export.safe_cell(text) if key in _TEXT else text


def export_csv(engine: Engine, args: dict[str, Any], actor: Any,
               batch: int = 1000) -> Iterator[str]:
    """The whole filtered set as CSV, streamed batch by batch. The export is recorded in the
    transaction that reads the first batch, so no row leaves before the audit row commits."""
    scope = scopes.of(actor)
    scopes.check_filter(scope, args.get("province_code"))
    after = _decode(args["cursor"]) if args.get("cursor") else None
    return csv_export.chunks(CSV_COLUMNS, _export_batches(engine, args, actor, scope, after,
                                                          batch))


def _export_batches(engine: Engine, args: dict[str, Any], actor: Any,
                    scope: frozenset[str] | None, after: tuple[datetime, str] | None,
                    batch: int) -> Iterator[list[list[str]]]:
    first = True
    while True:
        with engine.begin() if first else engine.connect() as conn:
            items, last = _batch(conn, args, scope, after, batch)
            if first:
                audit.record(conn, actor, "umkm.export", "umkm", **_filters(args, scope))
        first = False
        yield [[_cell(k, it.get(k)) for k in CSV_COLUMNS] for it in
               ({**it, **{k + "_wib": it[k] for k in
                          ("registered_at", "verified_at", "withdrawn_at")}} for it in items)]
        if last is None:
            return
        after = (last.registered_at, last.id)
