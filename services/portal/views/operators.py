"""Operators: the verification queue, the curation queue (approve, or reject with a
reason), search with filters and CSV export; all within the operator's province when the
token carries a province scope (the services enforce it; the pages only follow it)."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flask import (
    Blueprint,
    Response,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.wrappers import Response as WResponse

from services.portal.api_client import ApiProblem
from services.portal.auth import api, require, user
from services.portal.i18n import t

bp = Blueprint("operators", __name__, url_prefix="/operator")
OPS = ("operator", "admin")
FILTERS = ("province_code", "status", "scale", "platform", "curation")


def _scope() -> str | None:
    return (user() or {}).get("province_scope")


def _filters(args: Any) -> dict[str, Any]:
    out = {k: args.get(k) for k in FILTERS if args.get(k)}
    if _scope():
        out["province_code"] = _scope()  # a regional operator sees their province only
    if args.get("cursor"):
        out["cursor"] = args["cursor"]
    return out


@bp.get("")
@require(*OPS)
def queue() -> str:
    client = api()
    base = {"province_code": _scope()} if _scope() else {}
    to_verify = client.search_businesses({**base, "status": "registered", "limit": 50})
    to_curate = client.search_businesses({**base, "status": "onboarded", "curation": "none",
                                          "limit": 50})
    return render_template("queue.html", to_verify=to_verify["items"],
                           to_curate=to_curate["items"], scope=_scope())


@bp.get("/cari")
@require(*OPS)
def search() -> str:
    filters = _filters(request.args)
    page = api().search_businesses({**filters, "limit": 50})
    return render_template("search.html", page=page, filters=filters, scope=_scope(),
                           provinces=api().provinces(), platforms=api().platforms())


@bp.get("/ekspor.csv")
@require(*OPS)
def export() -> Response:
    client = api()
    g.pop("api")  # the body streams after the request ends: the stream closes the client
    try:
        body = client.export_businesses({k: v for k, v in _filters(request.args).items()
                                         if k != "cursor"})
    except Exception:
        client.close()
        raise

    def relay() -> Iterator[bytes]:
        try:
            yield from body
        finally:
            client.close()
    return Response(relay(), mimetype="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="umkm.csv"'})


@bp.post("/usaha/<uuid:umkm_id>/verifikasi")
@require(*OPS)
def verify(umkm_id: Any) -> WResponse:
    try:
        api().verify(str(umkm_id))
        flash(t("Usaha diverifikasi.", "Business verified."), "success")
    except ApiProblem as e:
        flash(t(e.message_id, e.message_en), "error")
    return redirect(request.form.get("back") or url_for("operators.queue"))


@bp.post("/usaha/<uuid:umkm_id>/kurasi")
@require(*OPS)
def curate(umkm_id: Any) -> WResponse:
    decision = request.form.get("decision", "")
    reason = (request.form.get("reason") or "").strip() or None
    try:
        api().curate(str(umkm_id), decision, reason)
        flash(t("Keputusan kurasi tersimpan.", "Curation decision saved."), "success")
    except ApiProblem as e:
        flash(t(e.message_id, e.message_en), "error")
    return redirect(url_for("operators.queue", _anchor=f"k-{umkm_id}"))
