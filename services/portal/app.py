"""The portal web app (gunicorn: 'services.portal.app:create_app()')."""
from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import Flask, Response, g, redirect, render_template, request, url_for
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from services.common.http.web import install_request_metrics
from services.common.observability import setup_logging
from services.portal import auth, i18n
from services.portal.api_client import ApiProblem, ServiceUnavailable
from services.portal.config import PortalSettings
from services.portal.sessions import ServerSessionInterface
from services.portal.views import officials, operators, public, training

log = logging.getLogger(__name__)


def create_app(settings: PortalSettings | None = None, **config: Any) -> Flask:
    """Build the app; nothing happens at import time."""
    settings = settings or PortalSettings.from_env()
    setup_logging("portal")
    # httpx logs every call's URL at INFO: noise, and search terms would reach the logs.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    app = Flask("services.portal")
    if settings.trusted_proxies:  # the visitor's address, not the Ingress's, goes on to the APIs
        app.wsgi_app = ProxyFix(app.wsgi_app,  # type: ignore[method-assign]
                                x_for=settings.trusted_proxies)
    app.config.update(
        PORTAL_SETTINGS=settings, SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_SECURE=settings.cookie_secure, SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax", MAX_CONTENT_LENGTH=64 * 1024,
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session
        PREFERRED_URL_SCHEME="https" if settings.cookie_secure else "http", **config)
    url = sa.engine.make_url(settings.session_database_url)
    if url.get_backend_name() == "sqlite" and url.database:
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, pool_pre_ping=True)
    app.extensions["portal_session_engine"] = engine
    app.session_interface = ServerSessionInterface(engine, settings.session_seconds)
    # The services' request metrics and /metrics; the Ingress routes all of the portal's paths,
    # so /metrics answers only a scraper that reaches the pod itself.
    install_request_metrics(app, "portal", direct_scrape_only=True)
    CSRFProtect(app)
    auth.init_app(app, settings)
    for bp in (public.bp, training.bp, officials.bp, operators.bp):
        app.register_blueprint(bp)
    app.jinja_env.globals.update(t=i18n.t, lang=i18n.lang, when=i18n.when, rupiah=i18n.rupiah,
                                 number=i18n.number, zone_name=i18n.zone_name,
                                 platform_name=i18n.platform_name,
                                 province_name=i18n.province_name,
                                 current_user=auth.user, roles=auth.roles)
    _install_hooks(app, settings)
    _install_errors(app)
    return app


def _csp(settings: PortalSettings) -> str:
    idp = urlsplit(settings.oidc_issuer)
    # Sign-out is a form whose answer redirects to the provider: form-action must allow it.
    origin = f" {idp.scheme}://{idp.netloc}" if idp.netloc else ""
    return ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "font-src 'self'; connect-src 'self'; "
            f"form-action 'self'{origin}; base-uri 'none'; frame-ancestors 'none'")


def _install_hooks(app: Flask, settings: PortalSettings) -> None:
    policy = _csp(settings)

    @app.before_request
    def _start() -> None:
        cid = request.headers.get("X-Correlation-ID", "")
        g.correlation_id = cid if 0 < len(cid) <= 64 and cid.isprintable() else str(uuid.uuid4())

    @app.after_request
    def _headers(resp: Response) -> Response:
        resp.headers["Content-Security-Policy"] = policy
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "same-origin"
        resp.headers["X-Frame-Options"] = "DENY"
        if resp.mimetype == "text/html":
            resp.headers["Cache-Control"] = "no-store"  # pages show personal data
        return resp

    @app.teardown_request
    def _close(_exc: BaseException | None) -> None:
        client = g.pop("api", None)
        if client is not None:
            client.close()

    @app.get("/bahasa/<choice>")
    def language(choice: str) -> Any:
        resp = redirect(auth._safe_next(request.args.get("next")))
        if choice in i18n.LANGS:
            resp.set_cookie(i18n.LANG_COOKIE, choice, max_age=365 * 86400, samesite="Lax",
                            secure=settings.cookie_secure, httponly=True)
        return resp

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> Any:
        try:
            with app.extensions["portal_session_engine"].connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except sa.exc.SQLAlchemyError:
            return {"status": "session store unreachable"}, 503
        return {"status": "ready"}


def _page(status: int, title: str, message: str, **extra: Any) -> tuple[str, int]:
    return render_template("error.html", status=status, title=title, message=message,
                           **extra), status


def _install_errors(app: Flask) -> None:
    t = i18n.t

    @app.errorhandler(auth.SignInRequired)
    def _sign_in(_e: auth.SignInRequired) -> Any:
        if request.method == "GET":
            return redirect(url_for("auth.sign_in", next=request.full_path.rstrip("?")))
        return _page(401, t("Silakan masuk", "Please sign in"),
                     t("Sesi Anda telah berakhir. Masuk lagi lalu ulangi.",
                       "Your session has ended. Sign in again and retry."))

    @app.errorhandler(ServiceUnavailable)
    def _down(e: ServiceUnavailable) -> Any:
        log.warning("service unavailable: %s", e.service)
        body, status = _page(503, t("Layanan sedang sibuk", "Service temporarily unavailable"),
                             t("Kami tidak dapat menghubungi layanan saat ini. Data Anda aman; "
                               "coba lagi dalam beberapa saat.",
                               "We cannot reach the service right now. Your data is safe; "
                               "please try again in a moment."))
        return body, status, {"Retry-After": e.retry_after or "5"}

    @app.errorhandler(ApiProblem)
    def _problem(e: ApiProblem) -> Any:
        return _page(e.status if 400 <= e.status < 500 else 400,
                     t("Permintaan tidak dapat diproses", "The request could not be processed"),
                     t(e.message_id, e.message_en))

    @app.errorhandler(CSRFError)
    def _csrf(_e: CSRFError) -> Any:
        return _page(400, t("Formulir kedaluwarsa", "The form has expired"),
                     t("Muat ulang halaman lalu kirim lagi.", "Reload the page and submit again."))

    @app.errorhandler(HTTPException)
    def _http(e: HTTPException) -> Any:
        status = e.code or 500
        texts = {
            403: (t("Akses ditolak", "Access denied"),
                  t("Halaman ini tidak tersedia untuk akun Anda.",
                    "This page is not available to your account.")),
            404: (t("Halaman tidak ditemukan", "Page not found"),
                  t("Alamat yang Anda buka tidak ada. Periksa lagi tautannya.",
                    "The address you opened does not exist. Check the link.")),
        }
        title, message = texts.get(status, (t("Terjadi kesalahan", "Something went wrong"),
                                            t("Permintaan tidak dapat diproses.",
                                              "The request could not be processed.")))
        return _page(status, title, message)

    @app.errorhandler(Exception)
    def _unexpected(_e: Exception) -> Any:
        log.exception("unhandled error")  # the trace goes to the log, never to the page
        return _page(500, t("Terjadi kesalahan", "Something went wrong"),
                     t("Maaf, ada kesalahan di pihak kami. Coba lagi nanti.",
                       "Sorry, something went wrong on our side. Please try again later."),
                     reference=g.get("correlation_id"))
