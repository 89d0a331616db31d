"""Setting up what a journey needs through the services' public APIs (with dev-realm tokens
from the identity provider), and waiting for events to cross the broker."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.e2e.stack import Stack, eventually
from tests.unit.registration_helpers import payload

EVENT_WAIT = 90.0  # seconds for an event to reach another service's read model


def bearer(keycloak: Any, username: str) -> dict[str, str]:
    """A dev-realm account's access token (password grant of the dev client)."""
    from devtools.local_keycloak import password_token
    from tests.browser.kit import PASSWORD
    body = password_token(keycloak.token_endpoint, username, PASSWORD)
    return {"Authorization": f"Bearer {body['access_token']}"}


def ok(resp: httpx.Response, *codes: int) -> Any:
    assert resp.status_code in (codes or (200, 201, 202)), resp.text
    return resp.json()


def register(stack: Stack, owner: dict[str, str], n: int, **over: Any) -> dict[str, Any]:
    consent = ok(httpx.get(stack.url("registration", "/v1/reference/consent")))
    body = payload(n, consent={"given": True, "version": consent["version"]}, **over)
    return {**ok(httpx.post(stack.url("registration", "/v1/umkm"), json=body, headers=owner,
                            timeout=30)), "nib": body["nib"],
            "business_name": body["business_name"]}


def verify_and_onboard(stack: Stack, operator: dict[str, str], umkm_id: str,
                       platform: str = "shopee") -> None:
    base = stack.url("registration", f"/v1/umkm/{umkm_id}")
    ok(httpx.post(base + "/verification", json={}, headers=operator, timeout=30))
    ok(httpx.post(base + "/platforms", headers=operator, timeout=30,
                  json={"platform": platform, "store_url": f"https://{platform}.example/t"}))


def webinar(stack: Stack, operator: dict[str, str], capacity: int) -> dict[str, Any]:
    course = ok(httpx.post(stack.url("training", "/v1/courses"), headers=operator, json={
        "title": "Jualan daring untuk pemula", "level": "dasar",
        "description": "Foto produk, deskripsi dan harga.",
        "modules": [{"key": "foto", "title": "Foto produk"},
                    {"key": "harga", "title": "Menentukan harga"}]}))
    starts = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    session = ok(httpx.post(stack.url("training", "/v1/sessions"), headers=operator, json={
        "course_id": course["id"], "starts_at": starts.isoformat(), "duration_minutes": 90,
        "capacity": capacity, "join_link": "https://meet.example/bbi"}))
    return {"course": course, "session": session}


def training_knows(stack: Stack, owner: dict[str, str], umkm_id: str) -> None:
    """Wait until the training service has the business (its registration event)."""
    def known() -> None:
        r = httpx.get(stack.url("training", "/v1/me/enrolments"), headers=owner,
                      params={"umkm_id": umkm_id}, timeout=10)
        assert r.status_code == 200, r.text
    eventually(known, timeout=EVENT_WAIT)


def open_campaign(stack: Stack, operator: dict[str, str]) -> str:
    code = f"belanja-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC).replace(microsecond=0)
    ok(httpx.post(stack.url("campaign", "/v1/campaigns"), headers=operator, json={
        "code": code, "name": "Belanja Serentak Produk Lokal",
        "starts_at": (now - timedelta(hours=2)).isoformat(),
        "ends_at": (now + timedelta(days=1)).isoformat(),
        "band_min_idr": 100_000, "band_max_idr": 10_000_000}))
    ok(httpx.post(stack.url("campaign", f"/v1/campaigns/{code}/open"), headers=operator))
    return code


def campaign_knows(stack: Stack, official: dict[str, str], code: str, nib: str) -> None:
    def listed() -> None:
        r = httpx.get(stack.url("campaign", f"/v1/campaigns/{code}/sellers"),
                      params={"nib": nib}, headers=official, timeout=10)
        assert r.status_code == 200 and r.json(), r.text
    eventually(listed, timeout=EVENT_WAIT)
