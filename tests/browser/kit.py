"""What the browser journeys share: axe-core (the npm package, fetched into a git-ignored
cache) injected into each page, screenshots at phone and desktop widths, and the identity
provider's own pages (sign-in, sign-up, the verification mail)."""
from __future__ import annotations

import email
import email.policy
import json
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from devtools.testing_infra import on_ci
from services.common.config import REPO_ROOT

AXE_VERSION = "4.14.1"  # MPL-2.0; npm's axe-core, never vendored
AXE_CACHE = REPO_ROOT / "var" / "cache" / "npm"
SHOTS = REPO_ROOT / "var" / "screenshots"
RESULTS = REPO_ROOT / "var" / "browser" / "axe.json"
WIDTHS = {"360": {"width": 360, "height": 780}, "1280": {"width": 1280, "height": 900}}
CHROMIUM = "/usr/bin/chromium"
PASSWORD = "bbi-dev-pass"  # the dev realm's test accounts (deploy/keycloak)


def need(ok: bool, why: str) -> None:
    """A missing tool skips off CI and fails on CI (CI=true)."""
    if ok:
        return
    if on_ci():
        pytest.fail(why + " -- CI=true: the browser suite is required")
    pytest.skip(why)


def axe_script() -> str:
    """axe.min.js of the pinned axe-core, installed with npm into var/cache/npm once."""
    path = AXE_CACHE / "node_modules" / "axe-core" / "axe.min.js"
    if not path.exists():
        npm = shutil.which("npm")
        need(npm is not None, "npm is not installed (apt-get install npm)")
        assert npm is not None
        AXE_CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run([npm, "install", "--no-audit", "--no-fund", "--no-save", "--prefix",
                        str(AXE_CACHE), f"axe-core@{AXE_VERSION}"], check=True, timeout=300)
    return path.read_text()


class Auditor:
    """Runs axe-core on pages, keeps every result, fails on serious/critical violations."""

    def __init__(self, script: str) -> None:
        self.script = script
        self.results: dict[str, dict[str, Any]] = {}

    def check(self, page: Page, name: str) -> None:
        # Evaluated through the DevTools protocol, which the page's CSP does not govern (a
        # script tag would be refused: the portal allows no inline script).
        page.evaluate(self.script + "\n;undefined")
        found = page.evaluate("""async () => {
            const r = await axe.run(document, {runOnly: {type: 'tag',
                values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}});
            return {violations: r.violations.map(v => ({id: v.id, impact: v.impact,
                        help: v.help, nodes: v.nodes.map(n => n.target.join(' '))})),
                    passes: r.passes.length, incomplete: r.incomplete.length};
        }""")
        self.results[name] = {"url": page.url, **found}
        bad = [v for v in found["violations"] if v["impact"] in ("serious", "critical")]
        assert not bad, f"axe-core on {name}: {json.dumps(bad, indent=1)}"

    def write(self) -> None:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(self.results, indent=1, sort_keys=True) + "\n")


def snap(page: Page, auditor: Auditor, name: str) -> None:
    """axe-core on the page, then full-page screenshots at 360 px and 1280 px wide."""
    auditor.check(page, name)
    SHOTS.mkdir(parents=True, exist_ok=True)
    before = page.viewport_size
    for label, size in WIDTHS.items():
        page.set_viewport_size(size)
        # Nothing wider than the screen at 360 px: a phone must never scroll sideways.
        if label == "360":
            overflow = page.evaluate("document.documentElement.scrollWidth")
            assert overflow <= size["width"], f"{name} is {overflow}px wide at 360px"
        page.screenshot(path=str(SHOTS / f"{name}-{label}.png"), full_page=True)
    if before:
        page.set_viewport_size(before)


def sign_in(page: Page, portal: str, username: str, next_path: str = "/") -> None:
    """Through the portal's "Masuk" to the identity provider's form and back."""
    page.goto(f"{portal}/masuk?next={next_path}")
    page.locator("#username").fill(username)
    page.locator("#password").fill(PASSWORD)
    page.locator("#kc-login").click()
    page.wait_for_url(f"{portal}{next_path}*")
    expect(page.get_by_role("button", name=re.compile("Keluar|Sign out"))).to_be_visible()


def verification_link(mail_dir: Path, address: str, timeout: float = 60.0) -> str:
    """The link of the verification mail the identity provider sent to `address`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for f in sorted(mail_dir.glob("*.eml")):
            msg = email.message_from_bytes(f.read_bytes(), policy=email.policy.default)
            if address not in str(msg["To"]):
                continue
            body = msg.get_body(preferencelist=("plain", "html"))
            text = body.get_content() if body is not None else ""
            found = re.search(r"https?://\S+action-token\S+", text)
            if found:
                return found.group(0).rstrip(">\"')").replace("&amp;", "&")
        time.sleep(0.5)
    raise AssertionError(f"no verification mail for {address} in {mail_dir}")
