"""The NUL guard on a tiny app (services/common/http/input_guard.py): what it refuses, what it
leaves alone, and that a protected route still answers 401/403 first."""
from __future__ import annotations

import json
from pathlib import Path

from devtools.dev_tokens import issue_token
from tests.unit.test_common_web import build


def test_a_nul_in_a_body_field_is_refused_with_its_place_and_nothing_is_stored(
        tmp_path: Path) -> None:
    app, _ = build(tmp_path)
    c = app.test_client()
    r = c.post("/v1/items", json={"id": "a\x00", "n": 1}, headers={"Idempotency-Key": "k1"})
    assert r.status_code == 422 and r.mimetype == "application/problem+json"
    body = r.get_json()
    assert body["code"] == "invalid_character"
    assert body["errors"] == {"json": {"id": [{
        "code": "invalid_character", "message_id": "Teks tidak boleh berisi karakter NUL "
        "(U+0000).", "message_en": "Text must not contain the NUL character (U+0000)."}]}}
    # Not stored, and the key was not spent: the corrected body with the same key is created.
    r = c.post("/v1/items", json={"id": "a", "n": 1}, headers={"Idempotency-Key": "k1"})
    assert r.status_code == 201 and "Idempotent-Replayed" not in r.headers


def test_keys_nested_values_raw_bytes_and_ndjson_lines(tmp_path: Path) -> None:
    app, _ = build(tmp_path)
    c = app.test_client()
    r = c.post("/v1/items", json={"id": "a", "n": 1, "x": [{"ok": "y"}, {"k\x00": 1}]})
    errors = r.get_json()["errors"]["json"]
    assert list(errors) == ["x"] and list(errors["x"]) == ["1"]
    assert errors["x"]["1"]["k\x00"][0]["code"] == "invalid_character"
    r = c.post("/v1/items", data=b'{"id": "a\x00"}', content_type="application/json")
    assert r.status_code == 422 and list(r.get_json()["errors"]) == ["body"]
    r = c.post("/v1/items", data=b'{"id": "a"}\n\n{"id": "b\\u0000"}\n',
               content_type="application/x-ndjson")
    assert r.status_code == 422 and list(r.get_json()["errors"]["json"]) == ["1"]
    r = c.post("/v1/items", data=b"id\na\x00\n", content_type="text/csv")
    assert r.status_code == 422 and r.get_json()["code"] == "invalid_character"


def test_an_escaped_backslash_before_u0000_is_ordinary_text(tmp_path: Path) -> None:
    app, _ = build(tmp_path)
    c = app.test_client()
    text = "C:\\u0000"  # a backslash then "u0000": six ordinary characters
    assert "\\u0000" in json.dumps({"id": text})
    r = c.post("/v1/items", json={"id": text, "n": 1})
    assert r.status_code == 201 and r.get_json()["id"] == text


def test_query_and_path_values_and_auth_first(tmp_path: Path) -> None:
    app, settings = build(tmp_path)
    c = app.test_client()
    r = c.get("/v1/items/conflict", query_string={"q": "x\x00"})
    assert r.status_code == 422 and "q" in r.get_json()["errors"]["query"]
    assert c.get("/v1/items/secret", query_string={"q": "x\x00"}).status_code == 401
    umkm = {"Authorization": "Bearer " + issue_token(settings, "u-1", "umkm")}
    assert c.get("/v1/items/secret?q=x%00", headers=umkm).status_code == 403
    op = {"Authorization": "Bearer " + issue_token(settings, "op-1", "operator")}
    r = c.get("/v1/items/secret?q=x%00", headers=op)
    assert r.status_code == 422 and r.get_json()["code"] == "invalid_character"
    assert c.get("/v1/items/secret?q=x", headers=op).status_code == 200
