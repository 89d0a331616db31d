"""The portal's client of the four services' public APIs (server-side, over HTTP, with the
signed-in person's bearer token). Problem details come back as `ApiProblem`, with the
per-field errors flattened to "field" (or "parent.field") keys for the forms."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from services.portal.config import PortalSettings

Json = dict[str, Any]


@dataclass
class FieldError:
    code: str
    message_id: str
    message_en: str


@dataclass
class ApiProblem(Exception):
    """A 4xx answer: RFC 9457 problem details from a service."""

    status: int
    code: str
    message_id: str
    message_en: str
    fields: dict[str, list[FieldError]] = field(default_factory=dict)
    body: Json = field(default_factory=dict)
    retry_after: str | None = None

    @classmethod
    def from_response(cls, resp: httpx.Response) -> ApiProblem:
        try:
            body = resp.json()
        except ValueError:
            body = {}
        body = body if isinstance(body, dict) else {}
        return cls(resp.status_code, str(body.get("code", "http_error")),
                   str(body.get("message_id", "Permintaan tidak dapat diproses.")),
                   str(body.get("message_en", "The request could not be processed.")),
                   _flatten(body.get("errors") or {}), body, resp.headers.get("Retry-After"))


class ServiceUnavailable(Exception):
    """A service did not answer, or answered 5xx: the page says so instead of a trace."""

    def __init__(self, service: str, retry_after: str | None = None) -> None:
        super().__init__(service)
        self.service = service
        self.retry_after = retry_after


def _flatten(errors: Any, prefix: str = "") -> dict[str, list[FieldError]]:
    """{"json": {"nik": [...], "consent": {"given": [...]}}} -> {"nik": [...],
    "consent.given": [...]} (the location level, json/query, is dropped)."""
    out: dict[str, list[FieldError]] = {}
    if isinstance(errors, dict):
        for key, value in errors.items():
            if not prefix and key in ("json", "query", "form", "headers", "path"):
                out.update(_flatten(value, ""))
                continue
            name = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, list) and all(isinstance(v, dict) and "code" in v
                                               for v in value):
                out[name] = [FieldError(str(v["code"]), str(v.get("message_id", "")),
                                        str(v.get("message_en", ""))) for v in value]
            else:
                out.update(_flatten(value, name))
    return out


class ApiClient:
    """One client per request: the caller's token, correlation id and the four base URLs."""

    def __init__(self, settings: PortalSettings, token: str | None = None,
                 correlation_id: str | None = None,
                 transport: httpx.BaseTransport | None = None,
                 client_address: str | None = None) -> None:
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if correlation_id:
            headers["X-Correlation-ID"] = correlation_id
        if client_address:  # the services' per-client limits count the visitor, not us
            headers["X-Forwarded-For"] = client_address
        self.settings = settings
        self.http = httpx.Client(headers=headers, timeout=settings.api_timeout,
                                 transport=transport, follow_redirects=False)
        self.base = {"registration": settings.registration_url,
                     "training": settings.training_url, "campaign": settings.campaign_url,
                     "metrics": settings.metrics_url}

    def close(self) -> None:
        self.http.close()

    def call(self, service: str, method: str, path: str, **kw: Any) -> Any:
        try:
            resp = self.http.request(method, self.base[service] + path, **kw)
        except httpx.HTTPError:
            raise ServiceUnavailable(service) from None
        if resp.status_code >= 500:
            raise ServiceUnavailable(service, resp.headers.get("Retry-After"))
        if resp.status_code >= 400:
            raise ApiProblem.from_response(resp)
        if resp.status_code == 204 or not resp.content:
            return None
        return resp.json()

    def stream(self, service: str, path: str, params: dict[str, Any],
               accept: str) -> Iterator[bytes]:
        """A streamed body (CSV exports), relayed chunk by chunk."""
        req = self.http.build_request("GET", self.base[service] + path, params=params,
                                      headers={"Accept": accept})
        try:
            resp = self.http.send(req, stream=True)
        except httpx.HTTPError:
            raise ServiceUnavailable(service) from None
        if resp.status_code >= 400:
            resp.read()
            resp.close()
            if resp.status_code >= 500:
                raise ServiceUnavailable(service)
            raise ApiProblem.from_response(resp)

        def chunks() -> Iterator[bytes]:
            try:
                yield from resp.iter_bytes()
            finally:
                resp.close()
        return chunks()

    # --- registration ---------------------------------------------------------------------
    def provinces(self) -> list[Json]:
        return self.call("registration", "GET", "/v1/reference/provinces")

    def kbli_sections(self) -> list[Json]:
        return self.call("registration", "GET", "/v1/reference/kbli-sections")

    def platforms(self) -> list[Json]:
        return self.call("registration", "GET", "/v1/reference/platforms")

    def consent(self) -> Json:
        return self.call("registration", "GET", "/v1/reference/consent")

    def register(self, data: Json, idempotency_key: str) -> Json:
        return self.call("registration", "POST", "/v1/umkm", json=data,
                         headers={"Idempotency-Key": idempotency_key})

    def my_businesses(self) -> list[Json]:
        return self.call("registration", "GET", "/v1/umkm/mine")["items"]

    def business(self, umkm_id: str) -> Json:
        return self.call("registration", "GET", f"/v1/umkm/{umkm_id}")

    def withdraw(self, umkm_id: str) -> Json:
        return self.call("registration", "DELETE", f"/v1/umkm/{umkm_id}")

    def claim(self, nik: str, nib: str) -> Json:
        return self.call("registration", "POST", "/v1/umkm/claims",
                         json={"nik": nik, "nib": nib})

    def search_businesses(self, filters: dict[str, Any]) -> Json:
        return self.call("registration", "GET", "/v1/umkm", params=filters)

    def export_businesses(self, filters: dict[str, Any]) -> Iterator[bytes]:
        return self.stream("registration", "/v1/umkm/export.csv", filters, "text/csv")

    def verify(self, umkm_id: str) -> Json:
        return self.call("registration", "POST", f"/v1/umkm/{umkm_id}/verification",
                         json={})

    def curate(self, umkm_id: str, decision: str, reason: str | None) -> Json:
        return self.call("registration", "POST", f"/v1/umkm/{umkm_id}/curation",
                         json={"decision": decision, "reason": reason or None})

    # --- training -------------------------------------------------------------------------
    def courses(self) -> list[Json]:
        return self.call("training", "GET", "/v1/courses", params={"limit": 200})

    def webinars(self) -> list[Json]:
        return self.call("training", "GET", "/v1/sessions", params={"limit": 200})

    def enrol(self, session_id: str, umkm_id: str) -> Json:
        return self.call("training", "POST", f"/v1/sessions/{session_id}/enrolments",
                         json={"umkm_id": umkm_id})

    def cancel_enrolment(self, session_id: str, umkm_id: str) -> Json:
        return self.call("training", "DELETE",
                         f"/v1/sessions/{session_id}/enrolments/{umkm_id}")

    def my_enrolments(self, umkm_id: str) -> list[Json]:
        return self.call("training", "GET", "/v1/me/enrolments",
                         params={"umkm_id": umkm_id, "limit": 200})

    def my_completions(self, umkm_id: str) -> list[Json]:
        return self.call("training", "GET", "/v1/me/completions",
                         params={"umkm_id": umkm_id, "limit": 200})

    def module_done(self, course_id: str, key: str, umkm_id: str) -> Json:
        return self.call("training", "POST", f"/v1/me/courses/{course_id}/modules/{key}/done",
                         json={"umkm_id": umkm_id})

    def course_progress(self, course_id: str, umkm_id: str) -> Json:
        return self.call("training", "GET", f"/v1/me/courses/{course_id}/progress",
                         params={"umkm_id": umkm_id})

    def certificate(self, number: str) -> Json:
        # Typed by anyone: quoted whole, so "../courses" cannot reach another route.
        return self.call("training", "GET", f"/v1/certificates/{quote(number, safe='')}")

    # --- campaign -------------------------------------------------------------------------
    def campaigns(self, status: str | None = "open") -> list[Json]:
        params = {"status": status} if status else {}
        return self.call("campaign", "GET", "/v1/campaigns", params=params)

    def campaign(self, code: str) -> Json:
        return self.call("campaign", "GET", f"/v1/campaigns/{code}")

    def campaign_totals(self, code: str) -> Json:
        return self.call("campaign", "GET", f"/v1/campaigns/{code}/totals")

    def join(self, code: str) -> Json:
        return self.call("campaign", "POST", f"/v1/campaigns/{code}/join", json={})

    def sellers(self, code: str, params: dict[str, Any]) -> list[Json]:
        """The campaign's directory: by `nib`, or by `name` and `province`."""
        return self.call("campaign", "GET", f"/v1/campaigns/{code}/sellers", params=params)

    def record_purchase(self, code: str, data: Json, idempotency_key: str) -> Json:
        return self.call("campaign", "POST", f"/v1/campaigns/{code}/purchases", json=data,
                         headers={"Idempotency-Key": idempotency_key})

    def my_purchases(self, code: str) -> Json:
        return self.call("campaign", "GET", f"/v1/campaigns/{code}/purchases/mine",
                         params={"limit": 200})

    # --- metrics --------------------------------------------------------------------------
    def summary(self) -> Json:
        return self.call("metrics", "GET", "/v1/summary")
