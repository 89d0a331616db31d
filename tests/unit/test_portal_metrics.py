"""The portal exports the services' request metrics at /metrics (services/common/http/web.py), to a
scraper that reaches it directly; through the Ingress, which routes every portal path, it is
a 404 page."""
from __future__ import annotations

from pathlib import Path

import httpx
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from services.portal.sessions import sessions
from tests.unit.portal_helpers import FakeApis, portal


def _sample(body: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(body):
        for s in family.samples:
            if s.name == name and labels.items() <= s.labels.items():
                return float(s.value)
    return 0.0


def test_requests_are_counted_per_route_and_served_at_metrics(tmp_path: Path) -> None:
    fake = FakeApis()
    fake.on("GET", "/v1/certificates/BBI-W-2026-0000000000",
            lambda _r: httpx.Response(404, json={"code": "certificate_not_found"}))
    app = portal(tmp_path, fake)
    client = app.test_client()
    check = {"service": "portal", "method": "GET", "route": "/cek-sertifikat", "status": "200"}
    missing = {"service": "portal", "method": "GET", "route": "unmatched", "status": "404"}
    before = client.get("/metrics").get_data(as_text=True)
    for _ in range(3):
        assert client.get("/cek-sertifikat?nomor=BBI-W-2026-0000000000").status_code == 200
    assert client.get("/tidak-ada").status_code == 404
    resp = client.get("/metrics")
    assert resp.status_code == 200 and resp.mimetype == "text/plain"
    after = resp.get_data(as_text=True)
    total = "bbi_http_requests_total"
    assert _sample(after, total, **check) - _sample(before, total, **check) == 3
    assert _sample(after, total, **missing) - _sample(before, total, **missing) == 1
    count = "bbi_http_request_duration_seconds_count"
    timed = {k: v for k, v in check.items() if k != "status"}
    assert _sample(after, count, **timed) - _sample(before, count, **timed) == 3
    # No label carries what was typed: routes are templates.
    assert "BBI-W-2026" not in after and "tidak-ada" not in after
    with app.extensions["portal_session_engine"].connect() as conn:  # scrapes make no session
        assert conn.execute(sa.select(sa.func.count()).select_from(sessions)).scalar_one() == 0


def test_through_the_ingress_metrics_is_not_there(tmp_path: Path) -> None:
    client = portal(tmp_path, FakeApis()).test_client()
    for header in ({"X-Forwarded-For": "203.0.113.7"}, {"X-Real-IP": "203.0.113.7"},
                   {"Forwarded": "for=203.0.113.7"}):
        resp = client.get("/metrics", headers=header)
        assert resp.status_code == 404 and resp.mimetype == "text/html", header
        assert "bbi_http_requests_total" not in resp.get_data(as_text=True)
