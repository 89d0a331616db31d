"""Public progress endpoints (JSON for the portal's progress page)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from services.common.http.web import get_engine
from services.common.reference import provinces
from services.metrics import queries
from services.metrics.schemas import ProvinceSchema, SummarySchema

blp = Blueprint("progress", __name__, url_prefix="/v1", description="Public progress")


@blp.route("/summary")
class Summary(MethodView):
    @blp.response(200, SummarySchema)
    def get(self) -> Any:
        """National totals, progress against the national targets, and per-province totals."""
        return queries.summary(get_engine())


@blp.route("/provinces/<string:code>", parameters=[{
    "in": "path", "name": "code", "required": True,
    "description": "Two-digit Kemendagri province code (reference/provinces.csv)",
    "schema": {"type": "string", "enum": sorted(provinces())}}])
class Province(MethodView):
    @blp.response(200, ProvinceSchema)
    @blp.alt_response(404, description="Unknown province code (problem details)")
    def get(self, code: str) -> Any:
        """One province (two-digit Kemendagri code): totals and breakdowns."""
        return queries.province(get_engine(), code)
