"""HTTP endpoints of the campaign service: thin views over the handlers and queries."""
from __future__ import annotations

from typing import Any

from flask import Response
from flask.views import MethodView
from flask_smorest import Blueprint

from services.campaign import handlers, queries, schemas
from services.campaign.config import CampaignSettings, campaign_settings
from services.campaign.identity import Official, official_from
from services.common.http import csv_export
from services.common.http.auth import current_principal, require_role
from services.common.http.web import get_engine, get_settings

blp = Blueprint("campaigns", __name__, url_prefix="/v1/campaigns",
                description="Belanja serentak: kampanye pembelian pejabat dari UMKM / "
                            "coordinated official buying days from UMKM")
OPERATORS = ("operator", "admin")
SECURED: dict[str, Any] = {"security": [{"bearerAuth": []}]}


def _official() -> Official:
    principal = current_principal()
    assert principal is not None  # require_role has already refused anonymous callers
    return official_from(get_settings(), principal)


def _settings() -> CampaignSettings:
    return campaign_settings(get_settings())


def _page(args: dict[str, Any]) -> tuple[int, int]:
    return min(args["limit"], get_settings().max_page_size), args["offset"]


@blp.route("")
class Campaigns(MethodView):
    @require_role(*OPERATORS, "official")
    @blp.arguments(schemas.CampaignListArgs, location="query")
    @blp.response(200, schemas.CampaignListOut(many=True))
    @blp.doc(**SECURED)
    def get(self, args: dict[str, Any]) -> Any:
        """Daftar kampanye / list campaigns (operators: all, by status; officials: the open
        ones, each saying whether the official may join)."""
        principal = current_principal()
        if principal is not None and principal.role == "official":
            return queries.list_open_for(get_engine(), _official(), *_page(args))
        return queries.list_campaigns(get_engine(), *_page(args), args.get("status"))

    @require_role(*OPERATORS)
    @blp.arguments(schemas.CampaignIn)
    @blp.response(201, schemas.CampaignOut)
    @blp.doc(**SECURED)
    def post(self, body: dict[str, Any]) -> Any:
        """Buat kampanye / create a campaign (operator; times in WIB unless an offset is given)."""
        return handlers.create_campaign(get_engine(), _settings(), body)


@blp.route("/<code>")
class CampaignOne(MethodView):
    @blp.response(200, schemas.CampaignOut)
    def get(self, code: str) -> Any:
        """Detail kampanye / one campaign (public)."""
        return queries.get(get_engine(), code)


@blp.route("/<code>/open")
class OpenCampaign(MethodView):
    @require_role(*OPERATORS)
    @blp.response(200, schemas.CampaignOut)
    @blp.doc(**SECURED)
    def post(self, code: str) -> Any:
        """Buka kampanye / open a campaign (operator)."""
        return handlers.transition(get_engine(), _settings(), code, "open")


@blp.route("/<code>/close")
class CloseCampaign(MethodView):
    @require_role(*OPERATORS)
    @blp.response(200, schemas.CampaignOut)
    @blp.doc(**SECURED)
    def post(self, code: str) -> Any:
        """Tutup kampanye / close it; publishes the closing totals (operator)."""
        return handlers.transition(get_engine(), _settings(), code, "close")


@blp.route("/<code>/join")
class Join(MethodView):
    @require_role("official")
    @blp.response(201, schemas.JoinOut)
    @blp.doc(**SECURED)
    def post(self, code: str) -> Any:
        """Ikut kampanye / join a campaign (official)."""
        return handlers.join(get_engine(), _settings(), _official(), code)


@blp.route("/<code>/sellers")
class Sellers(MethodView):
    @require_role("official", *OPERATORS)
    @blp.arguments(schemas.SellerSearchArgs, location="query")
    @blp.response(200, schemas.SellerOut(many=True))
    @blp.doc(**SECURED)
    def get(self, args: dict[str, Any], code: str) -> Any:
        """Cari penjual / find a seller by NIB, or by trade name and province (at most 50;
        withdrawn businesses are never listed)."""
        return queries.sellers(get_engine(), code, args)


@blp.route("/<code>/purchases")
class Purchases(MethodView):
    @require_role("official")
    @blp.arguments(schemas.PurchaseIn)
    @blp.response(201, schemas.PurchaseOut)
    @blp.alt_response(409, description="duplicate_order, not_joined, campaign_not_open, "
                                       "umkm_withdrawn, umkm_not_known_yet (with Retry-After)")
    @blp.alt_response(422, description="seller_required, nib_not_registered, "
                                       "platform_not_used, purchase_in_future, outside_window")
    @blp.doc(**SECURED)
    def post(self, body: dict[str, Any], code: str) -> Any:
        """Catat pembelian / record a purchase (official): the seller by `nib` or by a
        `umkm_id` from /sellers, on a platform it sells on; a time without an offset is read
        in the official's zone (WIB, WITA or WIT, by the token's `region`)."""
        return handlers.record_purchase(get_engine(), _settings(), _official(), code, body)


@blp.route("/<code>/purchases/mine")
class MyPurchases(MethodView):
    @require_role("official")
    @blp.arguments(schemas.PageArgs, location="query")
    @blp.response(200, schemas.MyPurchasesOut)
    @blp.doc(**SECURED)
    def get(self, args: dict[str, Any], code: str) -> Any:
        """Pembelian saya dan kemajuan / my purchases and progress against the band."""
        return queries.my_purchases(get_engine(), _official(), code, *_page(args))


@blp.route("/<code>/purchases.csv")
class ExportCsv(MethodView):
    @require_role(*OPERATORS)
    @blp.response(200, content_type="text/csv")
    @blp.doc(**SECURED)
    def get(self, code: str) -> Response:
        """Ekspor pembelian (CSV) / export purchases as CSV (operator)."""
        return csv_export.response(queries.export_csv(get_engine(), code),
                                   f"campaign-{code}-purchases.csv")


@blp.route("/<code>/totals")
class Totals(MethodView):
    @blp.response(200, schemas.TotalsOut)
    def get(self, code: str) -> Any:
        """Rekap kampanye / campaign totals (public)."""
        return queries.campaign_totals(get_engine(), code)


@blp.route("/<code>/leaderboard/agencies")
class AgencyBoard(MethodView):
    @blp.response(200, schemas.AgencyRowOut(many=True))
    def get(self, code: str) -> Any:
        """Peringkat instansi / leaderboard by agency (public)."""
        return queries.agency_board(get_engine(), code)


@blp.route("/<code>/leaderboard/provinces")
class ProvinceBoard(MethodView):
    @blp.response(200, schemas.ProvinceRowOut(many=True))
    def get(self, code: str) -> Any:
        """Peringkat provinsi UMKM / leaderboard by the UMKM's province (public)."""
        return queries.province_board(get_engine(), code)
