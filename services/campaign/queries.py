"""Read side of the campaign service: campaigns, an official's purchases, sellers, public
figures (totals, leaderboards) and the operator's CSV export."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from services.campaign import domain, store
from services.campaign.identity import Official
from services.common import audit, umkm_directory
from services.common.errors import DomainError
from services.common.http import csv_export
from services.common.http.errors import not_found
from services.common.reference import province_name

CSV_COLUMNS = ("purchase_id", "official_id", "agency", "umkm_id", "province_code", "platform",
               "order_ref", "amount_idr", "purchased_at_wib", "recorded_at_wib")


def campaign_or_404(conn: sa.Connection, code: str, lock: bool = False) -> store.Row:
    row = store.get_campaign(conn, code, lock)
    if row is None:
        raise not_found("campaign")
    return row


def band_of(row: store.Row) -> domain.Band:
    return domain.Band(row.band_min_idr, row.band_max_idr)


def purchase_view(row: dict[str, Any], official: Official, trade_name: str | None,
                  nib: str | None) -> dict[str, Any]:
    """A purchase as its official reads it: the seller's catalogue name and local time."""
    local = domain.to_local(row["purchased_at"], official.zone)
    return row | {"trade_name": trade_name, "nib": nib, "time_zone": official.zone_name,
                  "purchased_at_local": local.isoformat()}


def list_campaigns(engine: Engine, limit: int, offset: int,
                   status: str | None = None) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = store.list_campaigns(conn, limit, offset, status)
    return [dict(r._mapping) | {"eligible": None} for r in rows]


def list_open_for(engine: Engine, official: Official, limit: int,
                  offset: int) -> list[dict[str, Any]]:
    """The open campaigns an official can buy in today, each saying whether they may join."""
    out = list_campaigns(engine, limit, offset, domain.OPEN)
    for c in out:
        try:
            domain.check_eligible(official.agency, official.region, c["eligible_agencies"],
                                  c["eligible_regions"])
            c["eligible"] = True
        except domain.DomainError:
            c["eligible"] = False
    return out


def get(engine: Engine, code: str) -> dict[str, Any]:
    with engine.connect() as conn:
        return dict(campaign_or_404(conn, code)._mapping)


def my_purchases(engine: Engine, official: Official, code: str, limit: int,
                 offset: int) -> dict[str, Any]:
    """An official's own purchases in a campaign and their progress against the band."""
    with engine.connect() as conn:
        c = campaign_or_404(conn, code)
        p = store.get_participant(conn, c.id, official.official_id)
        if p is None:
            raise DomainError("not_joined", "Anda belum bergabung dengan kampanye ini.",
                              "You have not joined this campaign.", "not_found")
        rows, n = store.official_purchases(conn, c.id, official.official_id, limit, offset)
    return {"code": c.code, "official_id": official.official_id, "agency": p.agency,
            "progress": domain.progress(p.spent_idr, band_of(c)), "total": n,
            "purchases": [purchase_view(dict(r._mapping), official, r.trade_name, r.nib)
                          for r in rows]}


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
            raise DomainError("search_term_required", "Cari dengan NIB atau nama usaha.",
                              "Search by NIB or by trade name.", field="name")
    # The catalogue view only: the owner's subject stays in the read model.
    return [{"umkm_id": b.umkm_id, "trade_name": b.trade_name, "nib": b.nib,
             "province_code": b.province_code, "province_name": province_name(b.province_code),
             "platforms": list(b.platforms), "platforms_declared": list(b.platforms_declared)}
            for b in found]


def campaign_totals(engine: Engine, code: str) -> dict[str, Any]:
    """Participants, purchases, rupiah spent and distinct UMKM supported."""
    with engine.connect() as conn:
        c = campaign_or_404(conn, code)
        return {"code": c.code, "status": c.status} | store.totals(conn, c.id)


def agency_board(engine: Engine, code: str) -> list[dict[str, Any]]:
    """Agencies ranked by rupiah spent, then purchases, then name (a stable order)."""
    with engine.connect() as conn:
        rows = store.by_agency(conn, campaign_or_404(conn, code).id)
    rows.sort(key=lambda r: (-r["amount_idr"], -r["purchases"], r["agency"]))
    return [{"rank": i + 1} | r for i, r in enumerate(rows)]


def province_board(engine: Engine, code: str) -> list[dict[str, Any]]:
    """Provinces of the businesses bought from, ranked by rupiah spent."""
    with engine.connect() as conn:
        rows = store.by_province(conn, campaign_or_404(conn, code).id)
    rows.sort(key=lambda r: (-r["amount_idr"], -r["purchases"], r["province_code"]))
    return [{"rank": i + 1, "province_name": province_name(r["province_code"])} | r
            for i, r in enumerate(rows)]


def export_csv(engine: Engine, code: str) -> Iterator[str]:
    """The purchases as CSV, streamed in chunks (a national day can be large); the export
    is audited before its first row leaves."""
    with engine.begin() as conn:
        campaign_id = campaign_or_404(conn, code).id
        audit.record(conn, audit.acting(), "campaign.export", f"campaign:{code}")
    yield from csv_export.chunks(CSV_COLUMNS, _export_batches(engine, campaign_id))


def _export_batches(engine: Engine, campaign_id: str) -> Iterator[list[list[Any]]]:
    with engine.connect() as conn:
        for part in store.purchases_of(conn, campaign_id):
            yield [[r.id, r.official_id, r.agency, r.umkm_id or "", r.province_code, r.platform,
                    csv_export.safe_cell(r.order_ref), r.amount_idr,
                    domain.to_wib(r.purchased_at).isoformat(),
                    domain.to_wib(r.recorded_at).isoformat()] for r in part]
