"""Each service's Swagger UI (/docs) renders in Chromium with no network beyond the service
itself, under its Content-Security-Policy (a violation would show in the console)."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from tests.browser.kit import SHOTS
from tests.security.apps import SERVICES, build


@pytest.fixture
def served(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    app, _ = build(request.param, f"sqlite:///{tmp_path / 'db.sqlite'}")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield request.param, f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


@pytest.mark.parametrize("served", SERVICES, indirect=True)
def test_swagger_ui_renders_offline_under_its_csp(served: tuple[str, str],
                                                  new_page: Any) -> None:
    service, origin = served
    page = new_page(1280)
    problems: list[str] = []
    outside: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning")
            else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("request", lambda r: None if r.url.startswith(origin) else outside.append(r.url))
    resp = page.goto(origin + "/docs")
    assert resp is not None and "default-src 'none'" in resp.headers["content-security-policy"]
    page.locator(".opblock").first.wait_for()
    assert page.locator(".opblock").count() >= 2
    assert outside == [] and problems == []
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"docs-{service}-1280.png"))
