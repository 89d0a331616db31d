"""Flask plumbing every service shares: app factory helper, problem-details errors,
correlation ids, request metrics, health endpoints, Idempotency-Key replay."""
from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from typing import Any

import sqlalchemy as sa
from flask import Flask, Response, abort, current_app, g, request
from flask_smorest import Api
from sqlalchemy.engine import Engine
from werkzeug.exceptions import HTTPException

from services.common import audit
from services.common.config import Settings
from services.common.db.engine import make_engine
from services.common.errors import DomainError
from services.common.http import auth, idempotency, input_guard
from services.common.http.apidoc import (
    SecuredResponses,
    ServiceApi,
    install_swagger_ui,
    security_schemes,
)
from services.common.http.auth import current_principal
from services.common.http.errors import ApiError, field_errors, from_domain
from services.common.observability import (
    correlation_id,
    http_metrics,
    setup_logging,
    web_metrics_payload,
)

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"
_HTTP_CODES = {
    400: ("bad_request", "Permintaan tidak valid.", "Bad request."),
    401: ("unauthorized", "Autentikasi diperlukan.", "Authentication required."),
    403: ("forbidden", "Akses ditolak.", "Forbidden."),
    404: ("not_found", "Tidak ditemukan.", "Not found."),
    405: ("method_not_allowed", "Metode tidak diizinkan.", "Method not allowed."),
    406: ("not_acceptable", "Format tidak didukung.", "Not acceptable."),
    409: ("conflict", "Konflik dengan data yang ada.", "Conflict."),
    413: ("payload_too_large", "Ukuran permintaan terlalu besar.", "Request body too large."),
    415: ("unsupported_media_type", "Jenis konten tidak didukung.", "Unsupported media type."),
    422: ("validation_failed", "Data tidak valid.", "Validation failed."),
    429: ("rate_limited", "Terlalu banyak permintaan.", "Too many requests."),
}


def create_service_app(name: str, settings: Settings, md: sa.MetaData,
                       title: str, engine: Engine | None = None) -> tuple[Flask, Api]:
    """A Flask app with the shared plumbing; the service registers its blueprints on `api`."""
    setup_logging(name)
    app = Flask(name)
    app.config.update(
        BBI_SETTINGS=settings,
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        API_TITLE=title, API_VERSION="v1", OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/", OPENAPI_JSON_PATH="openapi.json",
        API_SPEC_OPTIONS={"components": {"securitySchemes": security_schemes(settings)}},
        JSON_SORT_KEYS=False,
    )
    auth.init_app(app, settings)  # refuses to start on unusable auth settings
    app.extensions["bbi_engine"] = engine or make_engine(settings.database_url)
    app.extensions["bbi_metadata"] = md
    api = ServiceApi(app, spec_kwargs={"extra_plugins": [SecuredResponses()]})
    install_request_metrics(app, name)  # first: the clock starts before the other hooks
    _install_request_hooks(app)
    _install_error_handlers(app)
    _install_health(app)
    install_swagger_ui(app, title)  # /docs from the packaged dist, not a CDN
    return app, api


def get_engine() -> Engine:
    return current_app.extensions["bbi_engine"]  # type: ignore[no-any-return]


def get_settings() -> Settings:
    return current_app.config["BBI_SETTINGS"]  # type: ignore[no-any-return]


def problem_response(err: ApiError) -> Response:
    resp = Response(json.dumps(err.to_problem(), ensure_ascii=False), status=err.status,
                    mimetype=PROBLEM_JSON)
    for k, v in err.headers.items():
        resp.headers[k] = v
    return resp


def install_request_metrics(app: Flask, service: str, direct_scrape_only: bool = False) -> None:
    """Request count and latency per route template, and GET /metrics: gunicorn
    multiprocess-safe (aggregated over the workers through PROMETHEUS_MULTIPROC_DIR). Every
    web process has them, the portal too. `direct_scrape_only`: /metrics answers 404 to a
    request that came through a proxy (for an app the Ingress routes as a whole)."""
    @app.before_request
    def _clock() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def _count(resp: Response) -> Response:
        route = request.url_rule.rule if request.url_rule else "unmatched"
        m = http_metrics()
        m.requests.labels(service, request.method, route, str(resp.status_code)).inc()
        if "started" in g:
            m.latency.labels(service, request.method, route).observe(
                time.perf_counter() - g.started)
        return resp

    @app.get("/metrics")
    def metrics() -> Response:
        # ingress-nginx always sets X-Forwarded-For; Prometheus reaches the pod directly.
        if direct_scrape_only and any(h in request.headers for h in _PROXY_HEADERS):
            abort(404)
        extra = app.extensions.get("bbi_extra_metrics")
        body = web_metrics_payload() + (extra() if extra else b"")
        return Response(body, mimetype="text/plain; version=0.0.4; charset=utf-8")


_PROXY_HEADERS = ("X-Forwarded-For", "X-Real-IP", "Forwarded")


def _install_request_hooks(app: Flask) -> None:
    @app.before_request
    def _start() -> Response | None:
        cid = request.headers.get("X-Correlation-ID", "")
        g.correlation_id = cid if 0 < len(cid) <= 64 and cid.isprintable() else str(uuid.uuid4())
        g.cid_token = correlation_id.set(g.correlation_id)
        g.actor_token = audit.bind_actor(current_principal)
        input_guard.refuse_nul()  # before any view, replay or database write
        return _idempotent_replay()

    @app.after_request
    def _finish(resp: Response) -> Response:
        resp.headers["X-Correlation-ID"] = g.get("correlation_id", "")
        _idempotent_store(resp)
        return resp

    @app.teardown_request
    def _reset(_exc: BaseException | None) -> None:
        idempotency.discard()  # a keyed request's transaction never outlives it
        actor = g.pop("actor_token", None)
        if actor is not None:
            audit.unbind_actor(actor)
        token = g.pop("cid_token", None)
        if token is not None:
            correlation_id.reset(token)


def _install_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(err: ApiError) -> Response:
        return problem_response(err)

    @app.errorhandler(DomainError)
    def _domain_error(err: DomainError) -> Response:
        return problem_response(from_domain(err))

    @app.errorhandler(idempotency.Replay)
    def _replay(err: idempotency.Replay) -> Response:
        return _replayed(err.row)  # a concurrent retry with this key committed first

    @app.errorhandler(HTTPException)
    def _http_error(err: HTTPException) -> Response:
        status = err.code or 500
        code, mid, men = _HTTP_CODES.get(status, ("http_error", "Kesalahan permintaan.",
                                                  err.name))
        errors = None
        data = getattr(err, "data", None)
        if isinstance(data, dict) and "messages" in data:
            errors = field_errors(data["messages"])
        return problem_response(ApiError(status, code, mid, men, errors))

    @app.errorhandler(sa.exc.OperationalError)
    @app.errorhandler(sa.exc.InterfaceError)
    @app.errorhandler(sa.exc.TimeoutError)
    def _db_down(err: Exception) -> Response:
        log.warning("database unavailable: %s", type(err).__name__)
        return problem_response(ApiError(
            503, "service_unavailable", "Layanan sedang tidak tersedia, coba lagi sebentar.",
            "Service temporarily unavailable; retry shortly.", headers={"Retry-After": "5"}))

    @app.errorhandler(RecursionError)
    def _too_deep(err: RecursionError) -> Response:
        # Python's JSON parsers (Flask's, webargs', ours) recurse per nesting level, so a
        # body like [[[[...]]]] 100,000 deep ends here: the client's fault, not a 500.
        if request.mimetype.endswith("json") and request.content_length:
            return problem_response(ApiError(
                400, "json_too_deep", "JSON terlalu dalam bersarang.",
                "The JSON body is nested too deeply."))
        return _unexpected(err)

    @app.errorhandler(Exception)
    def _unexpected(err: Exception) -> Response:
        log.exception("unhandled error")  # type and trace go to the log, never to the client
        return problem_response(ApiError(500, "internal_error", "Terjadi kesalahan internal.",
                                         "Internal server error."))


def _install_health(app: Flask) -> None:
    @app.get("/healthz")
    def healthz() -> Any:
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> Any:
        try:
            with get_engine().connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except sa.exc.SQLAlchemyError:
            return problem_response(ApiError(
                503, "database_unavailable", "Basis data tidak dapat dijangkau.",
                "Database unreachable.", headers={"Retry-After": "5"}))
        return {"status": "ready"}


# --- Idempotency-Key: a retried write returns the first answer, and runs once ------------
def _idempotency_scope() -> tuple[str, str] | None:
    key = request.headers.get("Idempotency-Key")
    if not key or request.method not in ("POST", "PUT", "PATCH", "DELETE"):
        return None
    if len(key) > 200:
        raise ApiError(400, "idempotency_key_invalid", "Idempotency-Key terlalu panjang.",
                       "Idempotency-Key too long (max 200).")
    who = request.headers.get("Authorization", "") + request.headers.get("X-API-Key", "")
    caller = hashlib.sha256(who.encode()).hexdigest()[:16]
    return key, f"{request.method} {request.path} {caller}"


def _idempotent_replay() -> Response | None:
    """A committed answer to this key is replayed; otherwise the request's first unit of
    work claims the key in its transaction (services/common/http/idempotency.py)."""
    scope = _idempotency_scope()
    if scope is None:
        return None
    settings = get_settings()
    t = current_app.extensions["bbi_metadata"].tables["idempotency_keys"]
    claim = idempotency.Claim(get_engine(), t, scope[0], scope[1],
                              idempotency.fingerprint(request.get_data()),
                              settings.idempotency_ttl_seconds,
                              settings.idempotency_wait_seconds)
    with get_engine().connect() as conn:
        row = idempotency.live_row(conn, t, claim.key, claim.scope, claim.cutoff())
    if row is None:
        idempotency.current.set(claim)
        return None
    idempotency.check_same_request(row, claim.fingerprint)
    return _replayed(row)


def _replayed(row: Any) -> Response:
    resp = Response(row.body, status=row.status)
    for k, v in json.loads(row.headers).items():
        resp.headers[k] = v
    resp.headers["Idempotent-Replayed"] = "true"
    return resp


def _idempotent_store(resp: Response) -> None:
    if idempotency.current.get() is None:
        return
    headers = {k: v for k, v in resp.headers.items() if k in ("Content-Type", "Location")}
    idempotency.finish(resp.status_code, resp.get_data(), headers)
