"""Sign-in with the identity provider: OpenID Connect authorization code + PKCE through
Authlib, tokens kept in the server-side session (never in the browser), refreshed before
they lapse; sign-out also ends the provider's session (RP-initiated logout)."""
from __future__ import annotations

import time
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt
from authlib.integrations.flask_client import OAuth
from flask import Blueprint, Flask, abort, current_app, g, redirect, request, session, url_for
from werkzeug.wrappers import Response

from services.portal.api_client import ApiClient, ServiceUnavailable
from services.portal.config import PortalSettings

bp = Blueprint("auth", __name__)
ROLES = ("admin", "operator", "official", "umkm")


class SignInRequired(Exception):
    """The page needs a signed-in person (or the session's tokens could not be renewed)."""


def init_app(app: Flask, settings: PortalSettings) -> None:
    oauth = OAuth(app)  # one per app: tests build apps with different providers
    app.extensions["portal_oauth"] = oauth
    oauth.register(
        "idp", client_id=settings.oidc_client_id,
        server_metadata_url=settings.oidc_metadata_url
        or f"{settings.oidc_issuer}/.well-known/openid-configuration",
        client_kwargs={"scope": "openid profile email", "code_challenge_method": "S256",
                       "token_endpoint_auth_method": "none"})
    app.register_blueprint(bp)


def idp() -> Any:
    """The identity provider's Authlib client of this app."""
    return current_app.extensions["portal_oauth"].idp


def metadata() -> dict[str, Any]:
    """The provider's discovery document (cached by Authlib); ServiceUnavailable while the
    provider cannot be reached, so the person sees a "try again" page, not an error."""
    try:
        return idp().load_server_metadata()  # type: ignore[no-any-return]
    except Exception:  # requests' and Authlib's errors alike
        raise ServiceUnavailable("identity-provider") from None


def settings() -> PortalSettings:
    return current_app.config["PORTAL_SETTINGS"]  # type: ignore[no-any-return]


def user() -> dict[str, Any] | None:
    return session.get("user")


def roles() -> set[str]:
    u = user()
    return set(u["roles"]) if u else set()


def _claims(access_token: str) -> dict[str, Any]:
    # Not verified here: the token came straight from the provider's token endpoint over
    # the back channel, the portal reads it only to choose which pages to show, and every
    # service verifies it (signature, issuer, audience) before acting on it.
    return jwt.decode(access_token, options={"verify_signature": False})  # type: ignore[no-any-return]


def _user_from(claims: dict[str, Any], userinfo: dict[str, Any]) -> dict[str, Any]:
    found = set(claims.get("realm_access", {}).get("roles", []))
    found |= set(claims.get("roles", []) if isinstance(claims.get("roles"), list) else [])
    if isinstance(claims.get("role"), str):
        found.add(claims["role"])
    scope = claims.get("province_scope") or claims.get("province")
    # No name or e-mail: the pages never show them, so the session store does not keep them.
    return {"sub": claims.get("sub") or userinfo.get("sub"),
            "roles": [r for r in ROLES if r in found],
            "province_scope": str(scope) if scope else None,
            "region": str(claims.get("region") or "") or None,
            "agency": claims.get("agency")}


def _store(token: dict[str, Any]) -> None:
    session["tokens"] = {"access": token["access_token"],
                         "refresh": token.get("refresh_token"),
                         "id": token.get("id_token") or session.get("tokens", {}).get("id"),
                         "expires_at": int(token.get("expires_at")
                                           or time.time() + int(token.get("expires_in", 60)))}


def access_token() -> str | None:
    """The signed-in person's access token, renewed with the refresh token when it is
    within 30 s of expiring; SignInRequired when it cannot be."""
    tokens = session.get("tokens")
    if not tokens:
        return None
    if tokens["expires_at"] - 30 > time.time():
        return str(tokens["access"])
    if not tokens.get("refresh"):
        raise SignInRequired()
    meta = metadata()
    try:
        resp = httpx.post(meta["token_endpoint"], timeout=settings().api_timeout, data={
            "grant_type": "refresh_token", "refresh_token": tokens["refresh"],
            "client_id": settings().oidc_client_id})
    except httpx.HTTPError:
        raise ServiceUnavailable("identity-provider") from None
    if resp.status_code != 200:
        # Refresh tokens are single-use: another request of this session (a second tab) may
        # have just redeemed it. Its newer tokens are in the store; use them if so.
        fresh = current_app.session_interface.stored(session)  # type: ignore[attr-defined]
        newer = (fresh or {}).get("tokens") or {}
        if newer.get("refresh") != tokens["refresh"] and newer.get("expires_at", 0) > time.time():
            session["tokens"] = newer
            return str(newer["access"])
        session.clear()
        raise SignInRequired()
    _store(resp.json())
    return str(session["tokens"]["access"])


def api() -> ApiClient:
    """The API client of this request, with the signed-in person's token if any."""
    if "api" not in g:
        g.api = ApiClient(settings(), access_token(), g.get("correlation_id"),
                          current_app.config.get("PORTAL_API_TRANSPORT"), request.remote_addr)
    return g.api  # type: ignore[no-any-return]


def require(*wanted: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The page needs a signed-in person holding one of `wanted` (any role if empty)."""
    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if user() is None:
                raise SignInRequired()
            if wanted and not roles() & set(wanted):
                abort(403)
            return fn(*args, **kwargs)
        return wrapper
    return deco


def _safe_next(target: str | None) -> str:
    # Only paths on this site: an open redirect would hand a phishing page our name.
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("public.home")


@bp.get("/masuk")
def sign_in() -> Response:
    metadata()
    session["after_sign_in"] = _safe_next(request.args.get("next"))
    return idp().authorize_redirect(  # type: ignore[no-any-return]
        url_for("auth.callback", _external=True), ui_locales=_locale())


@bp.get("/daftar-akun")
def sign_up() -> Response:
    """Self-registration at the identity provider (OIDC prompt=create), then back here."""
    metadata()
    session["after_sign_in"] = _safe_next(request.args.get("next"))
    return idp().authorize_redirect(  # type: ignore[no-any-return]
        url_for("auth.callback", _external=True), prompt="create", ui_locales=_locale())


def _locale() -> str:
    from services.portal.i18n import lang
    return lang()


@bp.get("/auth/callback")
def callback() -> Response:
    if "error" in request.args:
        abort(401)
    token = idp().authorize_access_token()  # checks state, PKCE, id_token and nonce
    after = _safe_next(session.get("after_sign_in"))
    session.clear()
    session.regenerate()  # type: ignore[attr-defined]
    _store(token)
    session["user"] = _user_from(_claims(token["access_token"]), token.get("userinfo") or {})
    return redirect(after)


@bp.post("/keluar")
def sign_out() -> Response:
    tokens = session.get("tokens") or {}
    session.clear()
    session.regenerate()  # type: ignore[attr-defined]
    home = url_for("public.home", _external=True)
    try:
        end = metadata().get("end_session_endpoint")
    except ServiceUnavailable:  # provider unreachable: the local session is gone all the same
        end = None
    if not end:
        return redirect(home)
    params = {"post_logout_redirect_uri": home, "client_id": settings().oidc_client_id}
    if tokens.get("id"):
        params["id_token_hint"] = tokens["id"]
    return redirect(f"{end}?{urlencode(params)}")
