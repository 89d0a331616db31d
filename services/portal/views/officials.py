"""Officials: open buying days and joining one, finding the business bought from (by NIB,
or by name and province), recording a purchase in the official's own time zone, and my
purchases with a receipt each."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from services.portal.api_client import ApiProblem
from services.portal.auth import api, require, user
from services.portal.i18n import ZONES, t, zone_name
from services.portal.views.forms import field_messages, idempotency_key, rupiah_in, text

bp = Blueprint("officials", __name__, url_prefix="/pejabat")


def _my_zone() -> str:
    u = user() or {}
    return zone_name(u.get("region"))


@bp.get("")
@require("official")
def campaigns() -> str:
    return render_template("campaigns.html", items=api().campaigns("open"), zone=_my_zone())


@bp.post("/<code>/ikut")
@require("official")
def join(code: str) -> Response:
    try:
        api().join(code)
    except ApiProblem as e:
        if e.code != "already_joined":
            flash(t(e.message_id, e.message_en), "error")
            return redirect(url_for("officials.campaigns"))
    flash(t("Anda ikut belanja serentak ini.", "You joined this buying day."), "success")
    return redirect(url_for("officials.campaign", code=code))


@bp.get("/<code>")
@require("official")
def campaign(code: str) -> str:
    client = api()
    info = client.campaign(code)
    q = {k: v for k, v in (("nib", text(request.args, "nib")),
                           ("name", text(request.args, "name")),
                           ("province", text(request.args, "province"))) if v}
    results: list[dict[str, Any]] | None = None
    errors: dict[str, str] = {}
    if q:
        try:
            results = client.sellers(code, q)
        except ApiProblem as e:
            if e.status != 422:
                raise
            errors = field_messages(e) or {"nib": t(e.message_id, e.message_en)}
    return render_template("campaign.html", c=info, totals=client.campaign_totals(code),
                           provinces=client.provinces(), q=q, results=results, errors=errors,
                           zone=_my_zone())


def _purchase_form(code: str, values: dict[str, Any], errors: dict[str, str],
                   status: int = 200) -> Any:
    return render_template("purchase.html", c=api().campaign(code), values=values,
                           errors=errors, platforms=api().platforms(), zones=list(ZONES),
                           idempotency_key=values.get("idempotency_key") or idempotency_key(),
                           ), status


@bp.get("/<code>/beli")
@require("official")
def purchase_form(code: str) -> Any:
    values: dict[str, Any] = {k: request.args.get(k, "") for k in ("umkm_id", "nib",
                                                                    "business_name")}
    values["zone"] = _my_zone()
    return _purchase_form(code, values, {})


@bp.post("/<code>/beli")
@require("official")
def purchase(code: str) -> Any:
    f = request.form
    values: dict[str, Any] = {k: f.get(k, "") for k in ("umkm_id", "nib", "business_name",
                                                         "platform",
                                        "order_ref", "amount_idr", "date", "time", "zone",
                                        "idempotency_key")}
    zone = values["zone"] if values["zone"] in ZONES else _my_zone()
    offset = ZONES[zone].utcoffset(None)
    hours = int(offset.total_seconds() // 3600) if offset else 7
    moment = f"{values['date']}T{values['time'] or '00:00'}:00+{hours:02d}:00" \
        if values["date"] else ""
    body: dict[str, Any] = {"platform": values["platform"], "order_ref": values["order_ref"],
                            "amount_idr": rupiah_in(f, "amount_idr"), "purchased_at": moment}
    if values["umkm_id"]:
        body["umkm_id"] = values["umkm_id"]
    else:
        body["nib"] = values["nib"]
    try:
        made = api().record_purchase(code, body, values["idempotency_key"] or idempotency_key())
    except ApiProblem as e:
        errors = field_messages(e)
        if "purchased_at" in errors:
            errors["date"] = errors.pop("purchased_at")
        if not errors:
            errors["nib"] = t(e.message_id, e.message_en)
        values["idempotency_key"] = idempotency_key()
        return _purchase_form(code, values, errors, 422)
    flash(t("Pembelian tercatat.", "Purchase recorded."), "success")
    return redirect(url_for("officials.receipt", code=code, purchase_id=made["id"]))


@bp.get("/<code>/pembelian")
@require("official")
def my_purchases(code: str) -> str:
    mine = api().my_purchases(code)
    return render_template("my_purchases.html", c=api().campaign(code), mine=mine,
                           zone=_my_zone())


@bp.get("/<code>/pembelian/<purchase_id>")
@require("official")
def receipt(code: str, purchase_id: str) -> str:
    mine = api().my_purchases(code)
    p = next((x for x in mine.get("purchases", []) if x["id"] == purchase_id), None)
    if p is None:
        abort(404)
    return render_template("receipt.html", c=api().campaign(code), p=p, mine=mine,
                           zone=_my_zone())
