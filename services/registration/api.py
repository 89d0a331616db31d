"""HTTP endpoints: thin MethodViews (load -> handler -> dump)."""
from __future__ import annotations

import itertools
from functools import wraps
from typing import Any

from flask import Response, request, stream_with_context
from flask.views import MethodView
from flask_smorest import Blueprint

from services.common.auth import current_principal, forbidden, require_role, unauthorized
from services.common.web import get_engine, get_settings
from services.registration import config, handlers, queries, ratelimit, transitions
from services.registration.schemas import (
    CurationIn,
    ListArgs,
    PlatformIn,
    RegistrationCreated,
    RegistrationIn,
    StatusOut,
    UmkmOperatorOut,
    UmkmPage,
    VerificationIn,
)

blp = Blueprint("umkm", __name__, url_prefix="/v1/umkm",
                description="UMKM registration, status, operator workflow, withdrawal")
OPERATORS = ("operator", "admin")
BEARER: list[dict[str, list[str]]] = [{"bearerAuth": []}]


def rate_limited(fn: Any) -> Any:
    """Refuse with 429 + Retry-After when this client used up its window."""
    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        wait = ratelimit.hit(get_engine(), get_settings(), request.remote_addr or "unknown",
                             config.rate_limit(), config.rate_window_seconds())
        if wait is not None:
            raise ratelimit.too_many(wait)
        return fn(*args, **kwargs)
    return wrapper


def _caller_for(umkm_id: str, owner_roles: tuple[str, ...]) -> bool:
    """True for an operator view, False for the owner; 401/403 for anyone else."""
    p = current_principal()
    if p is None:
        raise unauthorized("token_missing", "Token bearer diperlukan.",
                           "A bearer token is required.")
    if p.role == "umkm" and p.subject == umkm_id:
        return False
    if p.role in owner_roles:
        return True
    raise forbidden()


@blp.route("")
class Umkm(MethodView):
    @rate_limited
    # An instance, not the class: webargs builds a new schema per request from a class (a
    # tenth of the request's CPU, bench/notes/registration_http.md); loading is stateless.
    @blp.arguments(RegistrationIn())
    @blp.response(201, RegistrationCreated)
    @blp.alt_response(409, description="already_registered (with id and status)")
    @blp.alt_response(429, description="rate_limited (Retry-After)")
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Register an UMKM (public); answers an access token for the owner."""
        return handlers.register(get_engine(), get_settings(), data)

    @require_role(*OPERATORS)
    @blp.arguments(ListArgs, location="query")
    @blp.response(200, UmkmPage)
    @blp.doc(security=BEARER)
    @blp.alt_response(403, description="forbidden; province_out_of_scope (a regional "
                                       "operator filtering on another province)")
    def get(self, args: dict[str, Any]) -> Any:
        """List registrations (operators; a regional operator sees its province only);
        Accept: text/csv exports the same filter. Every page read is audited."""
        best = request.accept_mimetypes.best_match(["application/json", "text/csv"])
        if best == "text/csv" and request.accept_mimetypes["text/csv"] > \
                request.accept_mimetypes["application/json"]:
            return _csv(args)
        return queries.page(get_engine(), args, get_settings().max_page_size, _staff())


def _staff() -> Any:
    """The operator/admin acting (require_role has refused everyone else)."""
    p = current_principal()
    assert p is not None
    return p


def _csv(args: dict[str, Any]) -> Response:
    gen = queries.export_csv(get_engine(), args, _staff())
    # The first chunk is made now, so a bad cursor answers 400 before the 200 starts streaming.
    first = next(gen)
    return Response(stream_with_context(itertools.chain([first], gen)), mimetype="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="umkm.csv"'})


@blp.route("/export.csv")
class UmkmExport(MethodView):
    @require_role(*OPERATORS)
    @blp.arguments(ListArgs, location="query")
    @blp.response(200, content_type="text/csv")
    @blp.doc(security=BEARER)
    @blp.alt_response(403, description="forbidden; province_out_of_scope")
    def get(self, args: dict[str, Any]) -> Response:
        """CSV export of the filtered registrations (times in WIB; a regional operator's
        province only). Every export is audited."""
        return _csv(args)


@blp.route("/<uuid:umkm_id>")
class UmkmItem(MethodView):
    @blp.response(200, UmkmOperatorOut)
    @blp.doc(security=BEARER)
    def get(self, umkm_id: Any) -> dict[str, Any]:
        """Status and fields: the owner (its token) or an operator (also masked NIK, contact)."""
        operator = _caller_for(str(umkm_id), OPERATORS)
        if operator:  # staff: personal data, in scope only, and the read is audited
            return queries.operator_view(get_engine(), str(umkm_id), _staff())
        return handlers.get(get_engine(), str(umkm_id), operator)

    @blp.response(200, StatusOut)
    @blp.doc(security=BEARER)
    def delete(self, umkm_id: Any) -> dict[str, Any]:
        """Withdraw (UU 27/2022): the owner or an admin; personal data is erased."""
        admin = _caller_for(str(umkm_id), ("admin",))
        return transitions.withdraw(get_engine(), get_settings(), str(umkm_id),
                                    actor=_staff() if admin else None)


@blp.route("/<uuid:umkm_id>/verification")
class Verification(MethodView):
    @require_role(*OPERATORS)
    @blp.arguments(VerificationIn)
    @blp.response(200, StatusOut)
    @blp.alt_response(409, description="invalid_transition (with the current state)")
    @blp.doc(security=BEARER)
    def post(self, _body: dict[str, Any], umkm_id: Any) -> dict[str, Any]:
        """Verify a registration (operators in scope; audited)."""
        return transitions.verify(get_engine(), get_settings(), str(umkm_id), _staff())


@blp.route("/<uuid:umkm_id>/platforms")
class Platforms(MethodView):
    @require_role(*OPERATORS)
    @blp.arguments(PlatformIn)
    @blp.response(200, StatusOut)
    @blp.alt_response(409, description="invalid_transition / already_onboarded")
    @blp.doc(security=BEARER)
    def post(self, body: dict[str, Any], umkm_id: Any) -> dict[str, Any]:
        """Record onboarding on a digital platform, with the store link (operators in scope;
        audited)."""
        return transitions.onboard(get_engine(), get_settings(), str(umkm_id),
                                   body["platform"], body["store_url"], _staff())


@blp.route("/<uuid:umkm_id>/curation")
class Curation(MethodView):
    @require_role(*OPERATORS)
    @blp.arguments(CurationIn)
    @blp.response(200, StatusOut)
    @blp.alt_response(409, description="invalid_transition (with the current state)")
    @blp.doc(security=BEARER)
    def post(self, body: dict[str, Any], umkm_id: Any) -> dict[str, Any]:
        """Curate for the procurement catalogue: approved / rejected with a reason (operators
        in scope; audited)."""
        return transitions.curate(get_engine(), get_settings(), str(umkm_id),
                                  body["decision"], body["reason"], _staff())
