"""The real stack for the browser journeys: Keycloak (the session's `keycloak` fixture, realm
`bbi` of deploy/keycloak), the broker, PostgreSQL, the four services and the portal as
processes, and Debian's Chromium driven by Playwright (it cannot download browsers here)."""
from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from devtools.keycloak_for_tests import oidc_env
from services.common.config import REPO_ROOT
from tests.browser.kit import CHROMIUM, Auditor, axe_script, need
from tests.e2e.stack import Stack, free_port


def _allow_portal(kc: Any, origin: str) -> None:
    """Register the test portal's address with the realm's portal client (redirect and
    post-logout URIs), as an operator of the identity provider would for a new host."""
    status, clients = kc.admin("GET", "/clients?clientId=bbi-portal")
    assert status == 200 and clients, clients
    client = clients[0]
    client["redirectUris"] = [*client.get("redirectUris", []), f"{origin}/*"]
    attrs = client.setdefault("attributes", {})
    logout = [u for u in attrs.get("post.logout.redirect.uris", "").split("##") if u]
    attrs["post.logout.redirect.uris"] = "##".join([*logout, f"{origin}/*"])
    status, body = kc.admin("PUT", f"/clients/{client['id']}", client)
    assert status in (200, 204), body


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, pg_base_url: str, keycloak: Any) -> Iterator[Stack]:
    prefix = f"b{uuid.uuid4().hex[:6]}."
    s = Stack(kafka=kafka_bootstrap, pg_base=pg_base_url,
              workdir=REPO_ROOT / "var" / f"browser-{prefix.strip('.')}", prefix=prefix,
              # production auth: the identity provider's RS256 tokens, verified by JWKS;
              # every journey registers from one loopback address
              extra_env=oidc_env(keycloak, REGISTRATION_RATE_LIMIT="10000"))
    try:
        s.start()
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def portal(stack: Stack, keycloak: Any) -> str:
    """The portal as a gunicorn process (deploy/bin/web portal) against the stack."""
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    _allow_portal(keycloak, origin)
    stack._spawn("portal_web", ["bash", "deploy/bin/web", "portal"], {
        "PORT": str(port), "PROMETHEUS_MULTIPROC_DIR": str(stack.workdir / "prom-portal"),
        "GUNICORN_WORKERS": "2", "GUNICORN_THREADS": "4",
        "PORTAL_REGISTRATION_URL": stack.url("registration"),
        "PORTAL_TRAINING_URL": stack.url("training"),
        "PORTAL_CAMPAIGN_URL": stack.url("campaign"),
        "PORTAL_METRICS_URL": stack.url("metrics"),
        "PORTAL_OIDC_ISSUER": keycloak.issuer,
        "PORTAL_SESSION_DATABASE_URL": f"sqlite:///{stack.workdir / 'portal-sessions.db'}"})
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{origin}/readyz", timeout=2).status_code == 200:
                return origin
        except httpx.HTTPError:
            pass
        assert stack.procs["portal_web"].poll() is None, stack.log_tail("portal_web")
        assert time.monotonic() < deadline, stack.log_tail("portal_web")
        time.sleep(0.2)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    need(os.path.exists(CHROMIUM), f"{CHROMIUM} is missing (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="session")
def auditor() -> Iterator[Auditor]:
    a = Auditor(axe_script())
    try:
        yield a
    finally:
        a.write()


@pytest.fixture
def new_page(browser: Any) -> Iterator[Any]:
    """A fresh browser context per person (its own cookies), phone-sized by default."""
    contexts = []

    def make(width: int = 360) -> Any:
        ctx = browser.new_context(viewport={"width": width, "height": 780}, locale="id-ID",
                                  timezone_id="Asia/Jakarta")
        ctx.set_default_timeout(20_000)
        contexts.append(ctx)
        return ctx.new_page()

    yield make
    for ctx in contexts:
        ctx.close()
