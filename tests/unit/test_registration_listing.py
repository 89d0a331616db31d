"""Operator listing: filters, keyset pagination, CSV export."""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest

from tests.unit.registration_helpers import bearer, make_app, owner, payload, sqlite_url


@pytest.fixture
def env(tmp_path: Path) -> Any:
    app, settings = make_app(sqlite_url(tmp_path), max_page_size=3)
    client = app.test_client()
    op = bearer(settings, "operator")
    ids = []
    for n in range(1, 8):
        over: dict[str, Any] = {}
        if n % 2 == 0:
            over = {"province_code": "32", "regency_code": "3273", "capital_idr": 2_000_000_000}
        ids.append(client.post("/v1/umkm", json=payload(n, **over),
                               headers=owner(settings)).get_json()["id"])
    for i in ids[:2]:
        client.post(f"/v1/umkm/{i}/verification", json={}, headers=op)
    client.post(f"/v1/umkm/{ids[0]}/platforms", headers=op,
                json={"platform": "tokopedia", "store_url": "https://tokopedia.com/a"})
    client.post(f"/v1/umkm/{ids[1]}/curation", json={"decision": "approved"}, headers=op)
    return client, op, ids


def _all(client: Any, op: dict[str, str], query: str = "") -> list[dict[str, Any]]:
    items, cursor, pages = [], None, 0
    while True:
        q = query + (f"&cursor={cursor}" if cursor else "")
        body = client.get(f"/v1/umkm?{q}", headers=op).get_json()
        items += body["items"]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return items
        assert pages < 10


def test_list_requires_operator(env: Any) -> None:
    client, _, ids = env
    assert client.get("/v1/umkm").status_code == 401
    from devtools.dev_tokens import issue_token
    from services.common.config import Settings
    s = Settings.from_env("registration")
    mine = {"Authorization": "Bearer " + issue_token(s, "kc-owner-1", "umkm")}
    assert client.get("/v1/umkm", headers=mine).status_code == 403
    assert client.get("/v1/umkm/export.csv", headers=mine).status_code == 403


def test_keyset_pages_cover_everything_once(env: Any) -> None:
    client, op, ids = env
    first = client.get("/v1/umkm?limit=100", headers=op).get_json()
    assert len(first["items"]) == 3  # capped by max_page_size
    assert [i["id"] for i in _all(client, op, "limit=3")] == ids
    r = client.get("/v1/umkm?cursor=garbage", headers=op)
    assert r.status_code == 400 and r.get_json()["code"] == "cursor_invalid"


@pytest.mark.parametrize("query,expect", [
    ("province_code=32", [1, 3, 5]), ("scale=kecil", [1, 3, 5]),
    ("status=verified", [1]), ("status=onboarded", [0]), ("platform=tokopedia", [0]),
    ("curation=approved", [1]), ("curation=none", [0, 2, 3, 4, 5, 6]),
    ("province_code=31&status=registered", [2, 4, 6]),
])
def test_filters(env: Any, query: str, expect: list[int]) -> None:
    client, op, ids = env
    assert [i["id"] for i in _all(client, op, query)] == [ids[n] for n in expect]


def test_bad_filter_is_422(env: Any) -> None:
    client, op, _ = env
    r = client.get("/v1/umkm?status=sleeping", headers=op)
    assert r.status_code == 422 and "status" in r.get_json()["errors"]["query"]


def test_csv_export_route_and_accept_header_match_the_filter(env: Any) -> None:
    client, op, ids = env
    r = client.get("/v1/umkm/export.csv?province_code=32", headers=op)
    assert r.status_code == 200 and r.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(r.get_data(as_text=True))))
    assert [row["id"] for row in rows] == [ids[1], ids[3], ids[5]]
    assert rows[0]["nik_masked"].endswith("0002") and rows[0]["registered_at_wib"].endswith(
        "+07:00")
    via_accept = client.get("/v1/umkm?province_code=32", headers={**op, "Accept": "text/csv"})
    assert via_accept.mimetype == "text/csv"
    assert via_accept.get_data(as_text=True) == r.get_data(as_text=True)
    everything = client.get("/v1/umkm/export.csv", headers=op).get_data(as_text=True)
    assert len(list(csv.DictReader(io.StringIO(everything)))) == 7  # beyond one page


def test_csv_neutralises_formulas(tmp_path: Path) -> None:
    app, settings = make_app(sqlite_url(tmp_path))
    client = app.test_client()
    client.post("/v1/umkm", json=payload(business_name="=HYPERLINK(\"x\")"),
                headers=owner(settings))
    text = client.get("/v1/umkm/export.csv", headers=bearer(settings, "operator")).get_data(
        as_text=True)
    assert "'=HYPERLINK" in text
