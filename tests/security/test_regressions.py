"""Bugs the fuzzing found, each pinned by the smallest request that showed it."""
from __future__ import annotations

from pathlib import Path

from tests.security.apps import bearer, build


def test_csv_export_with_a_bad_cursor_is_a_400_not_a_broken_stream(tmp_path: Path) -> None:
    app, s = build("registration", f"sqlite:///{tmp_path / 'db.sqlite'}")
    client = app.test_client()
    for path, headers in (("/v1/umkm/export.csv", {}), ("/v1/umkm", {"Accept": "text/csv"})):
        resp = client.get(path, query_string={"cursor": "not-a-cursor"},
                          headers=bearer(s, "operator") | headers)
        assert resp.status_code == 400, path
        assert resp.mimetype == "application/problem+json"
        assert resp.get_json()["code"] == "cursor_invalid"
    ok = client.get("/v1/umkm/export.csv", headers=bearer(s, "operator"))
    assert ok.status_code == 200 and ok.get_data(as_text=True).startswith("id,")
