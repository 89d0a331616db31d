"""The portal's own behaviour against fake APIs: pages render what the APIs say, API field
errors land next to their fields, tokens stay server-side, forms need a CSRF token, errors
are pages in the portal's style, and an operator's province scope is followed."""
from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.portal import auth
from services.portal.app import create_app
from services.portal.config import PortalSettings
from services.portal.sessions import sessions
from tests.unit.portal_helpers import UMKM_ID, FakeApis, csrf, portal, problem, sign_in


def test_home_shows_national_progress_under_a_strict_csp(tmp_path: Path) -> None:
    app = portal(tmp_path, FakeApis())
    resp = app.test_client().get("/")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert 'data-stat="registered">1.234<' in html and "Rp1.500.000" in html
    assert "2.000.000" in html and 'lang="id"' in html
    csp = resp.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe" not in csp
    assert "form-action 'self' http://idp.test" in csp
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), "inline script"
    assert " style=" not in html and "http://" not in html.replace("http://localhost", "")


def test_english_switch(tmp_path: Path) -> None:
    client = portal(tmp_path, FakeApis()).test_client()
    resp = client.get("/bahasa/en?next=/")
    assert resp.status_code == 302 and resp.headers["Location"] == "/"
    html = client.get("/").get_data(as_text=True)
    assert 'lang="en"' in html and "National progress" in html and "1,234" in html
    assert client.get("/bahasa/en?next=//evil.example").headers["Location"] == "/"


def test_register_shows_each_api_field_error_next_to_its_field_then_succeeds(
        tmp_path: Path) -> None:
    fake = FakeApis()
    answers = [problem(422, "validation_failed", {
        "nik": [{"code": "nik_invalid", "message_id": "NIK tidak valid.",
                 "message_en": "Invalid NIK."}],
        "consent": {"given": [{"code": "consent_required", "message_id": "Wajib setuju.",
                               "message_en": "Consent required."}]}}),
               httpx.Response(201, json={"id": UMKM_ID, "status": "registered",
                                         "scale": "mikro"})]
    fake.on("POST", "/v1/umkm", lambda _r: answers.pop(0))
    client = portal(tmp_path, fake).test_client()
    sign_in(client, "umkm")
    form = {"csrf_token": csrf(client, "/usaha/daftar"), "business_name": "Kopi Sari",
            "owner_name": "Sari", "nik": "123", "phone": "0812 3456 7890",
            "province_code": "31", "regency_code": "3171", "address": "Jl. Melati 1",
            "postal_code": "12345", "kbli_code": "10792", "capital_idr": "Rp 50.000.000",
            "qris": "ya", "platforms": "tokopedia", "consent_version": "2024-01",
            "idempotency_key": "k1"}
    resp = client.post("/usaha/daftar", data=form)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    nik_box = html[html.index('data-field="nik"'):html.index('data-field="phone"')]
    assert "NIK tidak valid." in nik_box and 'aria-invalid="true"' in nik_box
    assert 'id="e-consent_given"' in html and "Wajib setuju." in html
    assert 'value="Kopi Sari"' in html  # what was typed stays
    sent = fake.bodies("POST", "/v1/umkm")[0]
    assert sent["capital_idr"] == 50_000_000 and sent["qris"] is True
    assert sent["platforms"] == ["tokopedia"] and sent["consent"]["given"] is False
    assert fake.seen[-1].headers["Authorization"] == "Bearer access-token-1"

    form.update(nik="3171011708450001", consent="ya", csrf_token=csrf(client, "/usaha/daftar"))
    resp = client.post("/usaha/daftar", data=form)
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"#usaha-{UMKM_ID}")
    keys = [r.headers["Idempotency-Key"] for r in fake.seen if r.method == "POST"]
    assert len(keys) == 2 and keys[0] == "k1"


def test_my_businesses_timeline(tmp_path: Path) -> None:
    fake = FakeApis()
    fake.on("GET", "/v1/umkm/mine", lambda _r: httpx.Response(200, json={"items": [{
        "id": UMKM_ID, "status": "onboarded", "business_name": "Kopi Papua",
        "province_code": "91", "registered_at": "2026-07-01T01:00:00+00:00",
        "verified_at": "2026-07-02T02:30:00+00:00", "curation": "rejected",
        "curation_reason": "Foto produk kurang jelas", "scale": "mikro", "nib": None,
        "platforms": [{"platform": "tokopedia", "onboarded_at": "2026-07-03T00:00:00Z"}]}]}))
    client = portal(tmp_path, fake).test_client()
    sign_in(client, "umkm")
    html = client.get("/usaha-saya").get_data(as_text=True)
    assert "2 Juli 2026 11.30 WIT" in html  # 02:30 UTC in Papua
    assert "Foto produk kurang jelas" in html and "Tokopedia" in html
    empty = FakeApis()
    empty.on("GET", "/v1/umkm/mine", lambda _r: httpx.Response(200, json={"items": []}))
    client = portal(tmp_path / "b", empty).test_client()
    sign_in(client, "umkm")
    assert "Belum ada usaha" in client.get("/usaha-saya").get_data(as_text=True)


def test_tokens_never_reach_the_browser_and_the_cookie_is_locked_down(tmp_path: Path) -> None:
    client = portal(tmp_path, FakeApis()).test_client()
    sign_in(client, "umkm")
    resp = client.get("/")
    assert "access-token-1" not in resp.get_data(as_text=True)
    cookie = client.get_cookie("bbi_portal")
    assert cookie is not None and "access-token-1" not in cookie.value
    assert cookie.http_only and cookie.same_site == "Lax"


def test_forms_need_the_csrf_token(tmp_path: Path) -> None:
    fake = FakeApis()
    client = portal(tmp_path, fake).test_client()
    sign_in(client, "umkm")
    resp = client.post("/usaha/daftar", data={"business_name": "x"})
    assert resp.status_code == 400 and "Formulir kedaluwarsa" in resp.get_data(as_text=True)
    assert not fake.bodies("POST", "/v1/umkm")


def test_sign_in_required_redirects_and_wrong_role_is_a_styled_403(tmp_path: Path) -> None:
    client = portal(tmp_path, FakeApis()).test_client()
    resp = client.get("/usaha-saya")
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/masuk?next=")
    sign_in(client, "official")
    resp = client.get("/usaha-saya")
    assert resp.status_code == 403 and "Akses ditolak" in resp.get_data(as_text=True)


def test_a_service_down_is_a_styled_503_without_a_trace(tmp_path: Path) -> None:
    fake = FakeApis()
    def down(_r: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")
    fake.on("GET", "/v1/summary", down)
    resp = portal(tmp_path, fake).test_client().get("/")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 503 and resp.headers["Retry-After"] == "5"
    assert "Layanan sedang sibuk" in html and "Traceback" not in html
    resp = portal(tmp_path / "x", FakeApis()).test_client().get("/tidak-ada")
    assert resp.status_code == 404 and "Halaman tidak ditemukan" in resp.get_data(as_text=True)


def test_sign_out_ends_the_identity_provider_session(tmp_path: Path) -> None:
    client = portal(tmp_path, FakeApis()).test_client()
    sign_in(client, "umkm")
    resp = client.post("/keluar", data={"csrf_token": csrf(client, "/")})
    location = resp.headers["Location"]
    assert location.startswith("http://idp.test/realms/bbi/logout?")
    assert "id_token_hint=id-token-1" in location and "post_logout_redirect_uri=" in location
    with client.session_transaction() as s:
        assert "tokens" not in s
    assert client.get_cookie("bbi_portal") is None  # the old id is gone from the browser


def test_operator_scope_limits_search_and_export(tmp_path: Path) -> None:
    fake = FakeApis()
    fake.on("GET", "/v1/umkm", lambda _r: httpx.Response(200, json={"items": [],
                                                                     "next_cursor": None}))
    fake.on("GET", "/v1/umkm/export.csv",
            lambda _r: httpx.Response(200, content=b"id,name\n", headers={
                "Content-Type": "text/csv"}))
    client = portal(tmp_path, fake).test_client()
    sign_in(client, "operator", province_scope="73")
    assert client.get("/operator/cari?province_code=31").status_code == 200
    assert client.get("/operator").status_code == 200
    resp = client.get("/operator/ekspor.csv?province_code=31&status=verified")
    assert resp.data == b"id,name\n" and resp.mimetype == "text/csv"
    provinces = {r.url.params.get("province_code") for r in fake.seen
                 if r.url.path.startswith("/v1/umkm")}
    assert provinces == {"73"}


def test_public_certificate_check(tmp_path: Path) -> None:
    fake = FakeApis()
    fake.on("GET", "/v1/certificates/BBI-E-2026-7F3A9C21D0", lambda _r: httpx.Response(200, json={
        "certificate_number": "BBI-E-2026-7F3A9C21D0", "course_title": "Foto Produk",
        "kind": "elearning", "completed_at": "2026-07-01T10:00:00+07:00",
        "trade_name": "Keripik Sagu Mama Yuli"}))
    fake.on("GET", "/v1/certificates/BBI-W-2026-0000000000",
            lambda _r: problem(404, "certificate_not_found"))
    fake.on("GET", "/v1/certificates/BBI-W-2026-1111111111", lambda _r: httpx.Response(
        429, json={"code": "rate_limited", "message_id": "x", "message_en": "x"},
        headers={"Retry-After": "42"}))
    client = portal(tmp_path, fake).test_client()
    visitor = {"REMOTE_ADDR": "203.0.113.7"}
    resp = client.get("/cek-sertifikat?nomor=BBI-E-2026-7F3A9C21D0", environ_base=visitor)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and 'data-certificate="valid"' in html
    for shown in ("Sertifikat sah", "BBI-E-2026-7F3A9C21D0", "Foto Produk",
                  "Belajar mandiri (e-learning)", "Keripik Sagu Mama Yuli", "1 Juli 2026"):
        assert shown in html, shown
    lookup = fake.seen[-1]
    # Anonymous, and the training service counts this visitor, not the portal.
    assert "authorization" not in lookup.headers
    assert lookup.headers["x-forwarded-for"] == "203.0.113.7"

    html = client.get("/cek-sertifikat?nomor=BBI-W-2026-0000000000").get_data(as_text=True)
    assert 'data-certificate="not-found"' in html and "Sertifikat tidak ditemukan" in html
    assert "Sertifikat sah" not in html
    # Anything typed goes to the lookup as one path segment: never another route.
    html = client.get("/cek-sertifikat?nomor=../courses").get_data(as_text=True)
    assert "Sertifikat tidak ditemukan" in html
    assert fake.seen[-1].url.raw_path == b"/v1/certificates/..%2Fcourses"
    limited = client.get("/cek-sertifikat?nomor=BBI-W-2026-1111111111")
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "42"
    assert "Terlalu banyak pengecekan" in limited.get_data(as_text=True)
    assert "Sertifikat" not in client.get("/cek-sertifikat").get_data(as_text=True).split(
        "</form>")[1]


def test_behind_the_ingress_the_visitor_address_is_passed_on(tmp_path: Path) -> None:
    fake = FakeApis()
    settings = PortalSettings(session_database_url=f"sqlite:///{tmp_path / 's.db'}",
                              oidc_issuer="http://idp.test/realms/bbi", trusted_proxies=1)
    client = create_app(settings, PORTAL_API_TRANSPORT=httpx.MockTransport(fake),
                        TESTING=True).test_client()
    client.get("/cek-sertifikat?nomor=BBI-W-2026-0000000000",
               headers={"X-Forwarded-For": "198.51.100.1, 203.0.113.9"},
               environ_base={"REMOTE_ADDR": "10.0.0.2"})  # the Ingress controller
    # The entry the Ingress wrote, not one the visitor forged in front of it.
    assert fake.seen[-1].headers["x-forwarded-for"] == "203.0.113.9"


def test_a_purchase_time_is_sent_in_the_zone_the_official_chose(tmp_path: Path) -> None:
    fake = FakeApis()
    campaign = {"code": "hari-1", "name": "Hari belanja", "starts_at": "2026-07-01T00:00:00Z",
                "ends_at": "2026-07-02T00:00:00Z"}
    fake.on("GET", "/v1/campaigns/hari-1", lambda _r: httpx.Response(200, json=campaign))
    fake.on("POST", "/v1/campaigns/hari-1/purchases",
            lambda _r: httpx.Response(201, json={"id": "p-1"}))
    client = portal(tmp_path, fake).test_client()
    sign_in(client, "official", region="94")  # Papua: WIT
    form = client.get("/pejabat/hari-1/beli?umkm_id=" + UMKM_ID).get_data(as_text=True)
    assert '<option selected>WIT</option>' in form
    resp = client.post("/pejabat/hari-1/beli", data={
        "csrf_token": csrf(client, "/pejabat/hari-1/beli"), "umkm_id": UMKM_ID,
        "platform": "shopee", "order_ref": "INV-1", "amount_idr": "Rp 150.000",
        "date": "2026-07-01", "time": "10:30", "zone": "WIT", "idempotency_key": "k"})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/pembelian/p-1")
    sent = fake.bodies("POST", "/v1/campaigns/hari-1/purchases")[0]
    assert sent == {"umkm_id": UMKM_ID, "platform": "shopee", "order_ref": "INV-1",
                    "amount_idr": 150_000, "purchased_at": "2026-07-01T10:30:00+09:00"}


def _expire(client: Any) -> None:
    with client.session_transaction() as s:
        s["tokens"] = {**s["tokens"], "expires_at": int(time.time()) + 5}


def test_tokens_are_refreshed_before_they_lapse(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeApis()
    fake.on("GET", "/v1/umkm/mine", lambda _r: httpx.Response(200, json={"items": []}))
    client = portal(tmp_path, fake).test_client()
    sign_in(client, "umkm")
    _expire(client)
    sent: list[dict[str, str]] = []

    def token_endpoint(url: str, data: dict[str, str], **_: Any) -> httpx.Response:
        sent.append({"url": url, **data})
        return httpx.Response(200, json={"access_token": "access-token-2",
                                         "refresh_token": "r2", "expires_in": 300})
    monkeypatch.setattr(auth.httpx, "post", token_endpoint)
    assert client.get("/usaha-saya").status_code == 200
    assert sent == [{"url": "http://idp.test/realms/bbi/token", "grant_type": "refresh_token",
                     "refresh_token": "r", "client_id": "bbi-portal"}]
    assert fake.seen[-1].headers["Authorization"] == "Bearer access-token-2"
    with client.session_transaction() as s:
        assert s["tokens"]["refresh"] == "r2" and s["tokens"]["id"] == "id-token-1"


def test_a_refresh_token_another_tab_redeemed_first_is_not_a_sign_out(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeApis()
    fake.on("GET", "/v1/umkm/mine", lambda _r: httpx.Response(200, json={"items": []}))
    app = portal(tmp_path, fake)
    client = app.test_client()
    sign_in(client, "umkm")
    _expire(client)
    # The other tab's request saved newer tokens after this one's session was read.
    iface = app.session_interface
    real_open = iface.open_session

    def open_stale(a: Any, request: Any) -> Any:
        sess = real_open(a, request)
        fresh = dict(sess["tokens"], access="access-token-3", refresh="r3",
                     expires_at=int(time.time()) + 300)
        with iface.engine.begin() as conn:  # type: ignore[attr-defined]
            conn.execute(sessions.update().values(data=json.dumps({**dict(sess),
                                                                   "tokens": fresh})))
        return sess
    monkeypatch.setattr(iface, "open_session", open_stale)
    monkeypatch.setattr(auth.httpx, "post", lambda *_a, **_k: httpx.Response(
        400, json={"error": "invalid_grant"}))
    assert client.get("/usaha-saya").status_code == 200
    assert fake.seen[-1].headers["Authorization"] == "Bearer access-token-3"
    monkeypatch.setattr(iface, "open_session", real_open)
    _expire(client)
    resp = client.get("/usaha-saya")  # refused, and nothing newer stored: sign in again
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/masuk?next=")


def test_identity_provider_down_is_a_styled_503(tmp_path: Path) -> None:
    from services.portal.app import create_app
    from services.portal.config import PortalSettings

    app = create_app(PortalSettings(session_database_url=f"sqlite:///{tmp_path / 's.db'}",
                                    oidc_issuer="http://127.0.0.1:1/realms/bbi"),
                     PORTAL_API_TRANSPORT=httpx.MockTransport(FakeApis()))
    resp = app.test_client().get("/masuk?next=/usaha-saya")
    assert resp.status_code == 503 and "Layanan sedang sibuk" in resp.get_data(as_text=True)
