"""Pages for the public: national progress, registering a business, my businesses with
their status timeline, withdrawal, and the public certificate check."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from services.portal.api_client import ApiProblem
from services.portal.auth import api, require
from services.portal.i18n import t
from services.portal.views.forms import field_messages, idempotency_key, rupiah_in, text

bp = Blueprint("public", __name__)
REGISTER_FIELDS = ("business_name", "owner_name", "nik", "nib", "phone", "email",
                   "province_code", "regency_code", "address", "postal_code", "kbli_code",
                   "capital_idr", "annual_sales_idr", "mentor_org", "npwp")


@bp.get("/")
def home() -> str:
    summary = api().summary()
    targets = sorted(summary.get("targets", []), key=lambda x: (x.get("year", 0),
                                                                x.get("metric", "")))
    # Targets the portal cannot measure (no actual) go in one short list, not a card each.
    return render_template("home.html", national=summary.get("national", {}),
                           targets=[x for x in targets if x.get("actual") is not None],
                           unmeasured=[x for x in targets if x.get("actual") is None],
                           last_applied_at=summary.get("last_applied_at"))


def _form_context(values: dict[str, Any], errors: dict[str, str]) -> dict[str, Any]:
    client = api()
    return {"provinces": client.provinces(), "kbli_sections": client.kbli_sections(),
            "platforms": client.platforms(), "consent": client.consent(), "values": values,
            "errors": errors, "idempotency_key": values.get("idempotency_key")
            or idempotency_key()}


@bp.get("/usaha/daftar")
@require("umkm")
def register_form() -> str:
    return render_template("register.html", **_form_context({}, {}))


def _registration_body(form: Any, consent_version: str) -> dict[str, Any]:
    body: dict[str, Any] = {k: text(form, k) for k in REGISTER_FIELDS}
    for k in ("capital_idr", "annual_sales_idr"):
        body[k] = rupiah_in(form, k)
    for k in ("business_name", "owner_name", "nik", "phone", "province_code",
              "regency_code", "address", "postal_code", "kbli_code"):
        body[k] = body[k] or ""  # required: the API names a missing one
    body["platforms"] = form.getlist("platforms")
    body["qris"] = {"ya": True, "tidak": False}.get(form.get("qris", ""))
    body["consent"] = {"given": form.get("consent") == "ya", "version": consent_version}
    return body


@bp.post("/usaha/daftar")
@require("umkm")
def register_submit() -> Any:
    form = request.form
    values: dict[str, Any] = {k: form.get(k, "") for k in (*REGISTER_FIELDS, "qris", "consent",
                                           "idempotency_key")}
    values["platforms"] = form.getlist("platforms")
    consent_version = form.get("consent_version") or api().consent()["version"]
    try:
        created = api().register(_registration_body(form, consent_version),
                                 form.get("idempotency_key") or idempotency_key())
    except ApiProblem as e:
        if e.status != 422 and not e.fields:
            raise
        errors = field_messages(e)
        if "qris" in errors or values["qris"] not in ("ya", "tidak"):
            errors.setdefault("qris", t("Pilih ya atau tidak.", "Choose yes or no."))
        # A 422 is answered per field; the same form comes back with a new key, since the
        # corrected body is a new request.
        values["idempotency_key"] = idempotency_key()
        return render_template("register.html", **_form_context(values, errors),
                               summary=t(e.message_id, e.message_en)), 422
    flash(t("Usaha Anda sudah terdaftar. Statusnya bisa diikuti di sini.",
            "Your business is registered. Follow its status here."), "success")
    return redirect(url_for("public.my_businesses", _anchor=f"usaha-{created['id']}"))


@bp.get("/usaha-saya")
@require("umkm")
def my_businesses() -> str:
    return render_template("my_businesses.html", items=api().my_businesses())


def _mine(umkm_id: str) -> dict[str, Any]:
    for item in api().my_businesses():
        if item["id"] == umkm_id:
            return item  # type: ignore[no-any-return]
    abort(404)


@bp.get("/usaha/<uuid:umkm_id>/tarik")
@require("umkm")
def withdraw_confirm(umkm_id: Any) -> str:
    return render_template("withdraw.html", item=_mine(str(umkm_id)))


@bp.post("/usaha/<uuid:umkm_id>/tarik")
@require("umkm")
def withdraw(umkm_id: Any) -> Response:
    item = _mine(str(umkm_id))
    if request.form.get("confirm") != "ya":
        flash(t("Centang konfirmasi untuk menarik data.",
                "Tick the confirmation to withdraw."), "error")
        return redirect(url_for("public.withdraw_confirm", umkm_id=umkm_id))
    api().withdraw(str(umkm_id))
    flash(t(f"Data pribadi {item.get('business_name') or ''} telah dihapus.",
            f"The personal data of {item.get('business_name') or ''} has been erased."),
          "success")
    return redirect(url_for("public.my_businesses"))


@bp.route("/usaha/klaim", methods=["GET", "POST"])
@require("umkm")
def claim() -> Any:
    errors: dict[str, str] = {}
    if request.method == "POST":
        try:
            api().claim(request.form.get("nik", "").strip(), request.form.get("nib", "").strip())
        except ApiProblem as e:
            errors = field_messages(e) or {"nib": t(e.message_id, e.message_en)}
            return render_template("claim.html", errors=errors, nib=request.form.get("nib")), 422
        flash(t("Usaha berhasil diklaim.", "The business is now yours."), "success")
        return redirect(url_for("public.my_businesses"))
    return render_template("claim.html", errors=errors, nib="")


@bp.get("/cek-sertifikat")
def certificate_check() -> Any:
    """Public: anyone holding a certificate number checks it (training's public lookup)."""
    number = (request.args.get("nomor") or "").strip()[:64]
    if not number:
        return render_template("certificate_check.html", number="", found=None, cert=None)
    try:
        cert = api().certificate(number)
    except ApiProblem as e:
        if e.status in (404, 422):  # no such certificate, or not a number at all
            return render_template("certificate_check.html", number=number, found=False,
                                   cert=None)
        if e.status == 429:
            return render_template("certificate_check.html", number=number, found=None,
                                   cert=None, limited=True), 429, \
                {"Retry-After": e.retry_after or "60"}
        raise
    return render_template("certificate_check.html", number=number, found=True, cert=cert)
