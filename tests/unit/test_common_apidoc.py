"""/docs works offline: every asset the Swagger UI page references is served by the service
itself (no CDN), the page carries a strict Content-Security-Policy with no inline script, and
what it loads exists in the packaged swagger-ui distribution."""
from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from services.common.http.apidoc import docs_csp
from tests.security.apps import SERVICES, build


class _Refs(HTMLParser):
    """Collects src/href of script, link and img tags, and any inline script or style."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []
        self.inline: list[str] = []
        self._tag = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self._tag = tag
        if any(k.startswith("on") for k in a) or "style" in a:
            self.inline.append(f"{tag} attribute")
        ref = a.get("src") or (a.get("href") if tag == "link" else None)
        if ref:
            self.refs.append(ref)

    def handle_data(self, data: str) -> None:
        if self._tag in ("script", "style") and data.strip():
            self.inline.append(self._tag)

    def handle_endtag(self, tag: str) -> None:
        self._tag = ""


def _directives(csp: str) -> dict[str, str]:
    return {d.strip().split(" ", 1)[0]: d.strip().partition(" ")[2]
            for d in csp.split(";") if d.strip()}


@pytest.mark.parametrize("service", SERVICES)
def test_docs_and_every_asset_it_references_come_from_the_app(service: str,
                                                               tmp_path: Path) -> None:
    app, _ = build(service, f"sqlite:///{tmp_path / 'db.sqlite'}")
    client = app.test_client()
    resp = client.get("/docs")
    assert resp.status_code == 200 and resp.mimetype == "text/html"
    csp = _directives(resp.headers["Content-Security-Policy"])
    assert csp["default-src"] == "'none'" and csp["script-src"] == "'self'"
    assert "unsafe" not in resp.headers["Content-Security-Policy"]
    page = _Refs()
    page.feed(resp.get_data(as_text=True))
    assert page.inline == [], "inline script/style would be blocked by the CSP"
    assert any(r.endswith("swagger-ui-bundle.js") for r in page.refs)
    assert any(r.endswith("swagger-ui.css") for r in page.refs)
    assert len(page.refs) >= 4
    for ref in page.refs:
        assert ref.startswith("/"), f"{ref} is not served by the service itself"
        asset = client.get(ref)
        assert asset.status_code == 200, ref
        assert len(asset.data) > 100, ref
        expected = {"js": "text/javascript", "css": "text/css", "png": "image/png"}
        assert asset.mimetype == expected[ref.rsplit(".", 1)[1]], ref
    # The init script reads the spec URL from the page, and the spec is there.
    spec_url = re.search(r'data-spec-url="([^"]+)"', resp.get_data(as_text=True))
    assert spec_url and client.get(spec_url.group(1)).json["openapi"].startswith("3.")
    redirect = client.get("/docs/oauth2-redirect.html")
    assert redirect.status_code == 200 and "Content-Security-Policy" in redirect.headers
    ref = _Refs()
    ref.feed(redirect.get_data(as_text=True))
    assert ref.inline == [] and all(client.get(r).status_code == 200 for r in ref.refs)


def test_docs_serve_only_the_listed_assets(tmp_path: Path) -> None:
    app, _ = build("metrics", f"sqlite:///{tmp_path / 'db.sqlite'}")
    client = app.test_client()
    for name in ("index.css", "../apidoc.py", "swagger-editor-bundle.js", "%2e%2e/web.py"):
        assert client.get(f"/docs/assets/{name}").status_code == 404, name


def test_docs_csp_admits_only_the_identity_provider_besides_self() -> None:
    csp = _directives(docs_csp("https://sso.example.go.id/realms/bbi"))
    assert csp["connect-src"] == "'self' https://sso.example.go.id"
    assert _directives(docs_csp("bbi-local"))["connect-src"] == "'self'"
