"""HTTP endpoints: thin MethodViews (load -> handler -> dump) for registrations, and the
reference lists for forms. The partner endpoint is in partner/api.py."""
from __future__ import annotations

from functools import wraps
from typing import Any

from flask import Response, request
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import ValidationError

from services.common.errors import DomainError
from services.common.http import csv_export
from services.common.http.auth import current_principal, forbidden, require_role, unauthorized
from services.common.http.web import get_engine
from services.common.messaging import contracts
from services.common.reference import KBLI_SECTIONS, PLATFORMS, provinces
from services.registration import handlers, queries, ratelimit
from services.registration.config import (
    CONSENT_PURPOSE_EN,
    CONSENT_PURPOSE_ID,
    current_settings,
)
from services.registration.schemas import (
    ClaimIn,
    CurationIn,
    ListArgs,
    OwnedList,
    PlatformIn,
    RegistrationCreated,
    RegistrationIn,
    StatusOut,
    UmkmOperatorOut,
    UmkmOut,
    UmkmPage,
    VerificationIn,
)

blp = Blueprint("umkm", __name__, url_prefix="/v1/umkm",
                description="UMKM registration, status, operator workflow, withdrawal")
reference_blp = Blueprint("reference", __name__, url_prefix="/v1/reference",
                          description="Reference lists for forms")
OPERATORS = ("operator", "admin")
BEARER: list[dict[str, list[str]]] = [{"bearerAuth": []}]


def rate_limited(fn: Any) -> Any:
    """Refuse with 429 + Retry-After when this client used up its window."""
    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        s = current_settings()
        wait = ratelimit.hit(get_engine(), s, request.remote_addr or "unknown", s.rate_limit,
                             s.rate_window_seconds)
        if wait is not None:
            raise ratelimit.too_many(wait)
        return fn(*args, **kwargs)
    return wrapper


def _claims_limited() -> None:
    """Claim attempts (guesses of a NIK + NIB) count per client address and per account."""
    p = current_principal()
    engine, s = get_engine(), current_settings()
    for client in ("claim:" + (request.remote_addr or "unknown"),
                   "claim-subject:" + (p.subject if p else "")):
        wait = ratelimit.hit(engine, s, client, s.claim_rate_limit, s.rate_window_seconds)
        if wait is not None:
            raise ratelimit.too_many(wait)


def owner_only(fn: Any) -> Any:
    """Role `umkm`, with a subject events may carry as the owner (checked before the body)."""
    @require_role("umkm")
    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _owner()
        return fn(*args, **kwargs)
    return wrapper


def _owner() -> str:
    """The signed-in owner's account subject, as events may carry it (pseudonymous)."""
    p = current_principal()
    assert p is not None  # require_role has refused anonymous callers
    try:  # the contract's own rule: not an e-mail, a name or a bare number (NIK, NIP)
        contracts.UmkmClaimed().fields["owner_subject"].deserialize(p.subject)
    except ValidationError:
        raise DomainError("subject_unusable",
                          "Subjek token tidak dapat dipakai sebagai akun pemilik.",
                          "The token's subject cannot be used as an owner account.",
                          "forbidden") from None
    return p.subject


def _owner_or_staff(staff_roles: tuple[str, ...]) -> str | None:
    """The owner's subject for an `umkm` caller (ownership is checked on the row), None for
    staff of `staff_roles`; 401/403 for anyone else."""
    p = current_principal()
    if p is None:
        raise unauthorized("token_missing", "Token bearer diperlukan.",
                           "A bearer token is required.")
    if p.role == "umkm":
        return p.subject
    if p.role in staff_roles:
        return None
    raise forbidden()


@blp.route("")
class Umkm(MethodView):
    @owner_only
    @rate_limited
    # An instance, not the class: webargs builds a new schema per request from a class (a
    # tenth of the request's CPU, bench/notes/registration_http.md); loading is stateless.
    @blp.arguments(RegistrationIn())
    @blp.response(201, RegistrationCreated)
    @blp.alt_response(409, description="already_registered (with id, status, claimable)")
    @blp.alt_response(429, description="rate_limited (Retry-After)")
    @blp.doc(security=BEARER)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Register an UMKM: the signed-in owner (role umkm) becomes its owner."""
        return handlers.register(get_engine(), current_settings(), data, _owner())

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
        return queries.page(get_engine(), args, current_settings().max_page_size, _staff())


def _staff() -> Any:
    """The operator/admin acting (require_role has refused everyone else)."""
    p = current_principal()
    assert p is not None
    return p


def _csv(args: dict[str, Any]) -> Response:
    # A bad cursor or filter answers 400/403 before the 200 starts streaming.
    return csv_export.response(queries.export_csv(get_engine(), args, _staff()), "umkm.csv")


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
    @blp.alt_response(403, description="not_owner: another owner's business")
    def get(self, umkm_id: Any) -> dict[str, Any]:
        """Status and fields: its owner, or an operator (also masked NIK, contact)."""
        owner = _owner_or_staff(OPERATORS)
        if owner is None:  # staff: personal data, in scope only, and the read is audited
            return queries.operator_view(get_engine(), str(umkm_id), _staff())
        return queries.owner_view(get_engine(), str(umkm_id), owner)

    @blp.response(200, StatusOut)
    @blp.doc(security=BEARER)
    @blp.alt_response(403, description="not_owner: another owner's business")
    def delete(self, umkm_id: Any) -> dict[str, Any]:
        """Withdraw (UU 27/2022): its owner or an admin; personal data is erased."""
        owner = _owner_or_staff(("admin",))
        return handlers.withdraw(get_engine(), current_settings(), str(umkm_id), owner,
                                    actor=_staff() if owner is None else None)


@blp.route("/claims")
class Claims(MethodView):
    @owner_only
    @blp.arguments(ClaimIn)
    @blp.response(200, UmkmOut)
    @blp.alt_response(404, description="claim_no_match: no business with this NIK and NIB")
    @blp.alt_response(409, description="already_claimed: another account owns it")
    @blp.alt_response(429, description="rate_limited (Retry-After)")
    @blp.doc(security=BEARER)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Claim a business reported without an owner (e.g. by a partner platform) by proving
        its owner's NIK and its NIB; from then on it is the signed-in owner's."""
        owner = _owner()
        _claims_limited()
        return handlers.claim(get_engine(), current_settings(), owner, body["nik"], body["nib"])


# Under /v1/umkm, not /v1/me: the Ingress sends /v1/me to the training service.
@blp.route("/mine")
class MyUmkm(MethodView):
    @owner_only
    @blp.response(200, OwnedList)
    @blp.doc(security=BEARER)
    def get(self) -> dict[str, Any]:
        """My businesses, each with its lifecycle: status (registered, verified, onboarded),
        the platforms it is onboarded on, and the curation decision with its reason."""
        return queries.owned(get_engine(), _owner(), current_settings().max_page_size)


@blp.route("/<uuid:umkm_id>/verification")
class Verification(MethodView):
    @require_role(*OPERATORS)
    @blp.arguments(VerificationIn)
    @blp.response(200, StatusOut)
    @blp.alt_response(409, description="invalid_transition (with the current state)")
    @blp.doc(security=BEARER)
    def post(self, _body: dict[str, Any], umkm_id: Any) -> dict[str, Any]:
        """Verify a registration (operators in scope; audited)."""
        return handlers.verify(get_engine(), current_settings(), str(umkm_id), _staff())


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
        return handlers.onboard(get_engine(), current_settings(), str(umkm_id),
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
        return handlers.curate(get_engine(), current_settings(), str(umkm_id),
                                  body["decision"], body["reason"], _staff())


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
class PlatformList(MethodView):
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
        return {"version": current_settings().consent_version,
                "purpose_id": CONSENT_PURPOSE_ID, "purpose_en": CONSENT_PURPOSE_EN}
