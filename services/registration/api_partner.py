"""Partner bulk onboarding and the reference lists."""
from __future__ import annotations

from typing import Any

from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint

from services.common.http.web import get_engine, get_settings
from services.common.reference import KBLI_SECTIONS, PLATFORMS, provinces
from services.registration import config, partner, partner_batch

partner_blp = Blueprint("partner", __name__, url_prefix="/v1/partner",
                        description="Bulk onboarding by partner platforms (X-API-Key)")
reference_blp = Blueprint("reference", __name__, url_prefix="/v1/reference",
                          description="Reference lists for forms")
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
        engine, settings = get_engine(), get_settings()
        who = partner.authenticate(engine, settings, request.headers.get("X-API-Key"))
        items = partner.parse_batch(request.get_data(), request.content_type or "",
                                    config.partner_max_items())
        return partner_batch.onboard_batch(engine, settings, who, items)


@reference_blp.route("/provinces")
class Provinces(MethodView):
    @reference_blp.response(200)
    def get(self) -> list[dict[str, str]]:
        """The 38 provinces with their Kemendagri codes."""
        return [{"code": c, "name": n} for c, n in sorted(provinces().items())]


@reference_blp.route("/kbli-sections")
class KbliSections(MethodView):
    @reference_blp.response(200)
    def get(self) -> list[dict[str, str]]:
        """KBLI 2020 sections A-U."""
        return [{"section": s, "title": t} for s, t in KBLI_SECTIONS.items()]


@reference_blp.route("/platforms")
class Platforms(MethodView):
    @reference_blp.response(200)
    def get(self) -> list[dict[str, str]]:
        """Digital platforms an UMKM can declare or be onboarded to."""
        return [{"code": p.code, "name": p.name, "category": p.category}
                for p in PLATFORMS.values()]


@reference_blp.route("/consent")
class Consent(MethodView):
    @reference_blp.response(200)
    def get(self) -> dict[str, str]:
        """The processing purpose owners consent to, and its current version."""
        return {"version": config.consent_version(), "purpose_id": config.CONSENT_PURPOSE_ID,
                "purpose_en": config.CONSENT_PURPOSE_EN}
