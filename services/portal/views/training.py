"""Training: the catalogue (webinars with seats left, e-learning modules), enrolment and
cancellation for one of my businesses, my completions and a printable certificate."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from services.portal.api_client import ApiProblem
from services.portal.auth import api, require, roles
from services.portal.i18n import t
from services.portal.views.forms import remember_business

bp = Blueprint("training", __name__, url_prefix="/pelatihan")


def _my_business(chosen: str | None) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """My active businesses, and the one I am working with (chosen, remembered or first)."""
    items = [u for u in api().my_businesses() if u.get("status") != "withdrawn"]
    wanted = remember_business(chosen)
    current = next((u for u in items if u["id"] == wanted), items[0] if items else None)
    if current:
        remember_business(current["id"])
    return items, current


@bp.get("")
def catalogue() -> str:
    client = api()
    courses = client.courses()
    titles = {c["id"]: c["title"] for c in courses}
    webinars = [w for w in client.webinars() if w.get("status") != "cancelled"]
    businesses: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    enrolments: dict[str, Any] = {}
    progress: dict[str, Any] = {}
    lagging = False
    if "umkm" in roles():
        businesses, current = _my_business(request.args.get("usaha"))
        if current:
            try:
                enrolments = {e["session_id"]: e for e in client.my_enrolments(current["id"])}
                progress = {c["id"]: client.course_progress(c["id"], current["id"])
                            for c in courses}
            except ApiProblem as e:
                # The training service learns of a new business through an event: until
                # then it does not know it. Say so instead of failing.
                if e.status not in (403, 404, 409, 422):
                    raise
                lagging = True
    return render_template("training.html", courses=courses, titles=titles,
                           webinars=webinars, businesses=businesses, current=current,
                           enrolments=enrolments, progress=progress, lagging=lagging)


@bp.post("/webinar/<uuid:session_id>/daftar")
@require("umkm")
def enrol(session_id: Any) -> Response:
    _, current = _my_business(request.form.get("usaha"))
    if current is None:
        abort(404)
    try:
        result = api().enrol(str(session_id), current["id"])
    except ApiProblem as e:
        flash(t(e.message_id, e.message_en), "error")
    else:
        if result.get("state") == "waitlisted":
            flash(t(f"Kursi penuh: Anda di daftar tunggu nomor {result.get('position')}.",
                    f"The webinar is full: you are number {result.get('position')} on the "
                    "waiting list."), "success")
        else:
            flash(t("Anda terdaftar di webinar ini.", "You are enrolled in this webinar."),
                  "success")
    return redirect(url_for("training.catalogue", usaha=current["id"], _anchor=f"w-{session_id}"))


@bp.post("/webinar/<uuid:session_id>/batal")
@require("umkm")
def cancel(session_id: Any) -> Response:
    _, current = _my_business(request.form.get("usaha"))
    if current is None:
        abort(404)
    try:
        api().cancel_enrolment(str(session_id), current["id"])
    except ApiProblem as e:
        flash(t(e.message_id, e.message_en), "error")
    else:
        flash(t("Pendaftaran dibatalkan. Kursi Anda diberikan ke daftar tunggu.",
                "Enrolment cancelled. Your seat goes to the waiting list."), "success")
    return redirect(url_for("training.catalogue", usaha=current["id"]))


@bp.post("/kursus/<uuid:course_id>/modul/<key>/selesai")
@require("umkm")
def module_done(course_id: Any, key: str) -> Response:
    _, current = _my_business(request.form.get("usaha"))
    if current is None:
        abort(404)
    try:
        api().module_done(str(course_id), key, current["id"])
    except ApiProblem as e:
        flash(t(e.message_id, e.message_en), "error")
    return redirect(url_for("training.catalogue", usaha=current["id"], _anchor=f"c-{course_id}"))


@bp.get("/sertifikat")
@require("umkm")
def completions() -> str:
    businesses, current = _my_business(request.args.get("usaha"))
    items: list[dict[str, Any]] = []
    if current:
        try:
            items = api().my_completions(current["id"])
        except ApiProblem as e:
            if e.status not in (403, 404, 409, 422):
                raise
    titles = {c["id"]: c["title"] for c in api().courses()}
    return render_template("completions.html", items=items, businesses=businesses,
                           current=current, titles=titles)


@bp.get("/sertifikat/<number>")
@require("umkm")
def certificate(number: str) -> str:
    _, current = _my_business(request.args.get("usaha"))
    items = api().my_completions(current["id"]) if current else []
    cert = next((c for c in items if c.get("certificate_number") == number), None)
    if cert is None:
        abort(404)
    titles = {c["id"]: c["title"] for c in api().courses()}
    check_url = url_for("public.certificate_check", nomor=number, _external=True)
    return render_template("certificate.html", cert=cert, business=current,
                           title=titles.get(cert["course_id"], ""), check_url=check_url)
