"""Public figures of a campaign (totals, leaderboards) and the operator's CSV export."""
from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from services.campaign.domain import to_wib
from services.campaign.handlers import campaign_or_404
from services.campaign.store import by_agency, by_province, purchases, totals
from services.common import audit, umkm_directory
from services.common.http.errors import ApiError, field_error
from services.common.reference import province_name

CSV_COLUMNS = ("purchase_id", "official_id", "agency", "umkm_id", "province_code", "platform",
               "order_ref", "amount_idr", "purchased_at_wib", "recorded_at_wib")


def sellers(engine: Engine, code: str, args: dict[str, Any]) -> list[dict[str, Any]]:
    """Businesses an official may name in this campaign: by NIB, or by name and province."""
    with engine.connect() as conn:
        campaign_or_404(conn, code)
        if args.get("nib"):
            one = umkm_directory.find_by_nib(conn, args["nib"])
            found = [one] if one is not None and one.active else []
        elif args.get("name"):
            found = umkm_directory.search(conn, args["name"], args.get("province"),
                                          args["limit"])
        else:
            raise ApiError(422, "search_term_required", "Cari dengan NIB atau nama usaha.",
                           "Search by NIB or by trade name.", errors={"name": [field_error(
                               "search_term_required", "Cari dengan NIB atau nama usaha.",
                               "Search by NIB or by trade name.")]})
    # The catalogue view only: the owner's subject stays in the read model.
    return [{"umkm_id": b.umkm_id, "trade_name": b.trade_name, "nib": b.nib,
             "province_code": b.province_code, "province_name": province_name(b.province_code),
             "platforms": list(b.platforms), "platforms_declared": list(b.platforms_declared)}
            for b in found]


def campaign_totals(engine: Engine, code: str) -> dict[str, Any]:
    """Participants, purchases, rupiah spent and distinct UMKM supported."""
    with engine.connect() as conn:
        c = campaign_or_404(conn, code)
        return {"code": c.code, "status": c.status} | totals(conn, c.id)


def agency_board(engine: Engine, code: str) -> list[dict[str, Any]]:
    """Agencies ranked by rupiah spent, then purchases, then name (a stable order)."""
    with engine.connect() as conn:
        rows = by_agency(conn, campaign_or_404(conn, code).id)
    rows.sort(key=lambda r: (-r["amount_idr"], -r["purchases"], r["agency"]))
    return [{"rank": i + 1} | r for i, r in enumerate(rows)]


def province_board(engine: Engine, code: str) -> list[dict[str, Any]]:
    """Provinces of the businesses bought from, ranked by rupiah spent."""
    with engine.connect() as conn:
        rows = by_province(conn, campaign_or_404(conn, code).id)
    rows.sort(key=lambda r: (-r["amount_idr"], -r["purchases"], r["province_code"]))
    return [{"rank": i + 1, "province_name": province_name(r["province_code"])} | r
            for i, r in enumerate(rows)]


def export_csv(engine: Engine, code: str) -> Iterator[str]:
    """The purchases as CSV, streamed in chunks (a national day can be large); the export
    is audited before its first row leaves."""
    with engine.begin() as conn:
        campaign_id = campaign_or_404(conn, code).id
        audit.record(conn, audit.acting(), "campaign.export", f"campaign:{code}")
    buf = io.StringIO()
    out = csv.writer(buf)

    def flush() -> str:
        text = buf.getvalue()
        buf.seek(0)
        buf.truncate()
        return text

    out.writerow(CSV_COLUMNS)
    yield flush()
    with engine.connect() as conn:
        result = conn.execution_options(yield_per=1000).execute(
            sa.select(purchases).where(purchases.c.campaign_id == campaign_id)
            .order_by(purchases.c.purchased_at, purchases.c.id))
        for part in result.partitions():
            for r in part:
                out.writerow([r.id, r.official_id, r.agency, r.umkm_id or "", r.province_code,
                              r.platform, _safe(r.order_ref), r.amount_idr,
                              to_wib(r.purchased_at).isoformat(),
                              to_wib(r.recorded_at).isoformat()])
            yield flush()


def _safe(text: str) -> str:
    """Spreadsheets run cells starting with = + - @ as formulas: neutralise (CSV injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
