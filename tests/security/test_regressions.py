"""Bugs the fuzzing found, each pinned by the smallest request that showed it."""
from __future__ import annotations

from pathlib import Path

import pytest

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


def test_course_with_broken_modules_is_a_422(tmp_path: Path) -> None:
    app, s = build("training", f"sqlite:///{tmp_path / 'db.sqlite'}")
    client = app.test_client()
    for modules in ([1], [{}], [{"key": "a", "title": "b"}, {"title": "no key"}]):
        body = {"title": "Kursus", "level": "dasar", "modules": modules}
        resp = client.post("/v1/courses", json=body, headers=bearer(s, "operator"))
        assert resp.status_code == 422, (modules, resp.get_data(as_text=True))
        assert "modules" in resp.get_json()["errors"]["json"]


def test_times_at_the_edges_of_the_calendar_are_refused_and_old_ones_written_in_rfc3339(
        tmp_path: Path) -> None:
    app, s = build("campaign", f"sqlite:///{tmp_path / 'db.sqlite'}")
    client = app.test_client()

    def create(code: str, starts: str, ends: str) -> object:
        return client.post("/v1/campaigns", headers=bearer(s, "operator"), json={
            "code": code, "name": "Belanja", "starts_at": starts, "ends_at": ends,
            "band_min_idr": 1, "band_max_idr": 2})

    # Year 1 in WIB is before year 1 in UTC; 9999 late in UTC is year 10000 in WIB.
    for starts, ends in (("0001-01-01T03:00:00", "0001-01-02T00:00:00"),
                         ("9999-12-31T10:00:00Z", "9999-12-31T20:00:00Z")):
        resp = create("edge", starts, ends)
        assert resp.status_code == 422, resp.get_data(as_text=True)
        fields = resp.get_json()["errors"]["json"]
        assert any(e["code"] == "datetime_out_of_range" for f in fields.values() for e in f)
    # Asia/Jakarta's history gave 1900 an offset of +07:07:12; WIB is +07:00.
    resp = create("old", "1900-01-01T08:00:00", "1900-01-01T10:00:00")
    assert resp.status_code == 201
    assert resp.get_json()["starts_at"] == "1900-01-01T08:00:00+07:00"


@pytest.mark.postgres
def test_a_band_beyond_bigint_is_a_422_on_postgresql(pg_url: str) -> None:
    app, s = build("campaign", pg_url)
    resp = app.test_client().post("/v1/campaigns", headers=bearer(s, "operator"), json={
        "code": "besar", "name": "Belanja", "starts_at": "2030-01-01T08:00:00",
        "ends_at": "2030-01-01T10:00:00", "band_min_idr": 1, "band_max_idr": 10**22})
    assert resp.status_code == 422, resp.get_data(as_text=True)
    assert "band_max_idr" in resp.get_json()["errors"]["json"]


def test_a_nul_character_in_a_course_title_is_a_422_and_nothing_is_written(db_url: str) -> None:
    # PostgreSQL text cannot hold U+0000: psycopg's DataError was a 500.
    app, s = build("training", db_url)
    client = app.test_client()
    course = {"title": "Pemasaran\x00digital", "level": "dasar",
              "modules": [{"key": "satu", "title": "Modul satu"}]}
    resp = client.post("/v1/courses", json=course, headers=bearer(s, "operator"))
    assert resp.status_code == 422, resp.get_data(as_text=True)
    problem = resp.get_json()
    assert problem["code"] == "invalid_character" and problem["message_id"]
    assert problem["errors"]["json"]["title"][0]["code"] == "invalid_character"
    assert client.get("/v1/courses").get_json() == []
    course["title"] = "Pemasaran digital"
    assert client.post("/v1/courses", json=course, headers=bearer(s, "operator")).status_code == 201
