"""The realm as the public meets it, on the real Keycloak: a person signs up on Keycloak's own
form, must verify the e-mail (the link arrives through the local SMTP sink), comes back to the
portal's redirect URI with a code, and the code + PKCE verifier give an access token that the
services accept as an owner (`umkm`, the realm's default role). The portal client has no
password grant and refuses a flow without PKCE."""
from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
import time
import urllib.parse
import uuid

import httpx

from devtools.local_keycloak import LocalKeycloak
from devtools.smtp_sink import verification_link
from services.common.http.auth import TokenVerifier
from tests.integration.keycloak_helpers import oidc_settings

REDIRECT = "http://127.0.0.1:8000/auth/callback"  # the portal's, in the realm's redirect URIs


class Browser:
    """Just enough of a browser for Keycloak's pages: it keeps Keycloak's cookies, which are
    marked Secure (a browser sends those to http://127.0.0.1; httpx's cookie jar does not)."""

    def __init__(self) -> None:
        self.client = httpx.Client(timeout=30, follow_redirects=False)
        self.cookies: dict[str, str] = {}

    def _keep(self, resp: httpx.Response) -> httpx.Response:
        for header in resp.headers.get_list("set-cookie"):
            name, _, rest = header.partition("=")
            value = rest.split(";", 1)[0]
            if value and "max-age=0" not in header.lower():
                self.cookies[name.strip()] = value
            else:
                self.cookies.pop(name.strip(), None)
        return resp

    def _headers(self) -> dict[str, str]:
        return {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}

    def get(self, url: str, **kw: object) -> httpx.Response:
        return self._keep(self.client.get(url, headers=self._headers(), **kw))  # type: ignore[arg-type]

    def post(self, url: str, **kw: object) -> httpx.Response:
        return self._keep(self.client.post(url, headers=self._headers(), **kw))  # type: ignore[arg-type]


def _form_action(page: str) -> str:
    m = re.search(r'<form[^>]*id="kc-(?:register|login)-form"[^>]*action="([^"]+)"', page) \
        or re.search(r'<form[^>]*action="([^"]+)"[^>]*id="kc-(?:register|login)-form"', page)
    assert m, page[:2000]
    return html.unescape(m.group(1))


def follow(browser: Browser, resp: httpx.Response) -> httpx.Response:
    """Follow Keycloak's redirects, stopping at the portal's redirect URI (the code)."""
    for _ in range(10):
        location = resp.headers.get("location", "")
        if resp.status_code not in (302, 303) or location.startswith(REDIRECT):
            return resp
        resp = browser.get(urllib.parse.urljoin(str(resp.url), location))
    raise AssertionError("redirect loop")


def _code_from(location: str) -> str:
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
    assert "code" in query, location
    return query["code"][0]


def test_a_person_signs_up_verifies_the_email_and_gets_an_owner_token(
        keycloak: LocalKeycloak) -> None:
    email = f"warga-{uuid.uuid4().hex[:10]}@bbi.test"
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(
        hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    oidc = f"{keycloak.issuer}/protocol/openid-connect"
    browser = Browser()
    with browser.client:
        page = browser.get(f"{oidc}/registrations", params={
            "client_id": "bbi-portal", "response_type": "code", "scope": "openid",
            "redirect_uri": REDIRECT, "state": "s1", "code_challenge": challenge,
            "code_challenge_method": "S256"})
        assert page.status_code == 200, page.text[:500]
        sent = browser.post(_form_action(page.text), data={
            "email": email, "firstName": "Warga", "lastName": "Uji",
            "password": "rahasia-kuat-1", "password-confirm": "rahasia-kuat-1"})
        sent = follow(browser, sent)
        # No code yet: the account must verify its e-mail first.
        assert sent.status_code == 200, sent.text[:1000]
        assert "kc-verify-email" in sent.text or "verify" in sent.text.lower()
        link = None
        deadline = time.monotonic() + 60
        while link is None:
            link = verification_link(keycloak.mail_dir, email)
            assert link or time.monotonic() < deadline, "no verification mail arrived"
            time.sleep(0.2)
        resp = follow(browser, browser.get(link))
        # The link, opened in the same browser, finishes the sign-up: back with a code.
        assert resp.status_code in (302, 303), resp.text[:2000]
        code = _code_from(resp.headers["location"])
        token = browser.post(f"{oidc}/token", data={
            "grant_type": "authorization_code", "client_id": "bbi-portal", "code": code,
            "redirect_uri": REDIRECT, "code_verifier": verifier})
        assert token.status_code == 200, token.text
    principal = TokenVerifier(oidc_settings(keycloak, "registration", "sqlite://")).verify(
        token.json()["access_token"])
    assert principal.roles == {"umkm"}
    assert "email" not in principal.claims  # personal data stays at the identity provider
    assert token.json()["refresh_token"]  # short access tokens, refreshed


def test_the_portal_client_needs_pkce_and_has_no_password_grant(keycloak: LocalKeycloak) -> None:
    oidc = f"{keycloak.issuer}/protocol/openid-connect"
    no_pkce = httpx.get(f"{oidc}/auth", timeout=30, params={
        "client_id": "bbi-portal", "response_type": "code", "scope": "openid",
        "redirect_uri": REDIRECT, "state": "s"})
    assert no_pkce.status_code in (302, 303, 400)
    if no_pkce.status_code in (302, 303):  # the error goes back to the client
        assert "error=invalid_request" in no_pkce.headers["location"]
        assert "code=" not in no_pkce.headers["location"]
    password = httpx.post(f"{oidc}/token", timeout=30, data={
        "grant_type": "password", "client_id": "bbi-portal", "username": "owner1@bbi.test",
        "password": "bbi-dev-pass"})
    assert password.status_code in (400, 401)
    assert password.json()["error"] == "unauthorized_client"
