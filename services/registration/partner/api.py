"""Partner bulk onboarding: POST /v1/partner/onboardings with the partner's X-API-Key."""
from __future__ import annotations

from typing import Any

from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint

from services.common.http.web import get_engine
from services.registration.config import current_settings
from services.registration.partner import handlers
from services.registration.partner.items import parse_batch

partner_blp = Blueprint("partner", __name__, url_prefix="/v1/partner",
                        description="Bulk onboarding by partner platforms (X-API-Key)")
PARTNER_PATH = "/v1/partner/onboardings"


@partner_blp.route("/onboardings")
class Onboardings(MethodView):
    @partner_blp.doc(
        parameters=[{"in": "header", "name": "X-API-Key", "required": True,
                     "schema": {"type": "string"}}],
        requestBody={"required": True, "content": {
            "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
            "application/x-ndjson": {"schema": {"type": "string"}}}},
        description="Up to REGISTRATION_PARTNER_MAX_ITEMS (10,000) merchants, each a "
                    "registration plus `merchant_ref` (and optional `store_url`). Per item: "
                    "`created` (a new business, status registered, onboarded on this "
                    "platform), `onboarded` (a business already known by its NIB, or its "
                    "owner's NIK and name: this platform's onboarding is added), "
                    "`already_registered` (nothing new: already on this platform, or it "
                    "contradicts a known business's NIB) or `invalid` (with per-field "
                    "errors).")
    @partner_blp.response(200)
    def post(self) -> dict[str, Any]:
        """Report merchants the partner onboarded; per-item results."""
        engine, settings = get_engine(), current_settings()
        who = handlers.authenticate(engine, settings, request.headers.get("X-API-Key"))
        items = parse_batch(request.get_data(), request.content_type or "",
                            settings.partner_max_items)
        return handlers.onboard_batch(engine, settings, who, items)
