"""U+0000 anywhere in a request is a 422 `invalid_character`, never a 500, and nothing is
written: every operation of every service's OpenAPI document is called with a NUL in each of
its inputs (body fields, each body media type, query and string path parameters, and an
undeclared query parameter), on SQLite and on PostgreSQL (which cannot store U+0000)."""
from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from tests.security.apps import SERVICES, bearer, build

NUL = "a\x00b"
METHODS = ("get", "post", "put", "patch", "delete")


@dataclass
class Case:
    label: str
    location: str  # where the error must point: json, query, path or body
    field: str  # the first key under that location
    path: str
    method: str
    query: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    content_type: str | None = None


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _body(spec: dict[str, Any], media: str, schema: dict[str, Any]) -> tuple[bytes, str, str]:
    """A body with a NUL in one field named by the schema; (bytes, location, field)."""
    schema = _resolve(spec, schema)
    if media == "text/csv":
        return f"umkm_id\n{NUL}\n".encode(), "body", "_"
    if media == "application/x-ndjson":
        return (json.dumps({"merchant_ref": NUL}) + "\n").encode(), "json", "0"
    if schema.get("type") == "array":
        items = _resolve(spec, schema.get("items", {}))
        item: Any = NUL if items.get("type") == "string" else {"merchant_ref": NUL}
        return json.dumps([item]).encode(), "json", "0"
    name = next(iter(schema.get("properties", {})), "name")
    return json.dumps({name: NUL}).encode(), "json", name


def _fill(path: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        path = path.replace("{" + name + "}", value)
    return path


def cases(spec: dict[str, Any]) -> Iterator[Case]:
    for path, item in spec["paths"].items():
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            params = item.get("parameters", []) + op.get("parameters", [])
            values = {p["name"]: str(uuid.uuid4())
                      if p.get("schema", {}).get("format") == "uuid" else "x"
                      for p in params if p["in"] == "path"}
            concrete = _fill(path, values)
            strings = [name for name, v in values.items() if v == "x"]
            label = f"{method.upper()} {path}"
            yield Case(label + " ?nul", "query", "nul", concrete, method, {"nul": NUL})
            for p in params:
                if p["in"] == "query":
                    yield Case(f"{label} ?{p['name']}", "query", p["name"], concrete, method,
                               {p["name"]: NUL})
            for name in strings:
                yield Case(f"{label} {{{name}}}", "path", name,
                           _fill(path, values | {name: "a%00b"}), method)
            for media, content in op.get("requestBody", {}).get("content", {}).items():
                body, location, key = _body(spec, media, content.get("schema", {}))
                yield Case(f"{label} {media}", location, key, concrete, method, body=body,
                           content_type=media)


def _rows(app: Flask) -> dict[str, int]:
    engine = app.extensions["bbi_engine"]
    with engine.connect() as conn:
        return {t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                for t in app.extensions["bbi_metadata"].sorted_tables}


@pytest.mark.parametrize("service", SERVICES)
def test_every_input_of_every_operation_refuses_a_nul(service: str, db_url: str) -> None:
    app, s = build(service, db_url)
    client = app.test_client()
    tokens = [{}, bearer(s, "umkm", str(uuid.uuid4())), bearer(s, "official", "198001012005011001"),
              bearer(s, "operator"), bearer(s, "admin")]
    spec = client.get("/openapi.json").get_json()
    before = _rows(app)
    refused: set[str] = set()  # labels of the cases answered 422 invalid_character
    all_cases = list(cases(spec))
    for case in all_cases:
        statuses = []
        for headers in tokens:
            resp = client.open(case.path, method=case.method.upper(), query_string=case.query,
                               data=case.body, content_type=case.content_type, headers=headers)
            statuses.append(resp.status_code)
            assert resp.status_code in (401, 403, 422), (case.label, resp.get_data(as_text=True))
            assert resp.mimetype == "application/problem+json", case.label
            if resp.status_code == 422:
                problem = resp.get_json()
                assert problem["code"] == "invalid_character", (case.label, problem)
                assert problem["message_id"] and problem["message_en"]
                errors = problem["errors"][case.location]
                entry = errors if case.location == "body" else errors.get(case.field)
                assert "invalid_character" in json.dumps(entry), (case.label, errors)
                refused.add(case.label)
        assert 422 in statuses, (case.label, statuses)  # a caller it admits is refused for the NUL
    assert _rows(app) == before  # nothing was written: no row, audit entry or rate-limit hit
    ops = {f"{m.upper()} {p}": op for p, item in spec["paths"].items()
           for m, op in item.items() if m in METHODS}
    assert ops and all(any(lbl.startswith(o + " ") for lbl in refused) for o in ops)
    with_body = {o for o, op in ops.items() if "requestBody" in op}
    assert with_body <= {c.label.rsplit(" ", 1)[0] for c in all_cases if c.body is not None}
    assert service == "metrics" or with_body  # metrics alone takes no body


@pytest.mark.parametrize("service", SERVICES)
def test_the_same_requests_without_the_nul_are_not_refused_for_it(service: str,
                                                                   tmp_path: Any) -> None:
    """The control: the 422 above is the NUL's, not the fake inputs'."""
    app, s = build(service, f"sqlite:///{tmp_path / 'db.sqlite'}")
    client = app.test_client()
    spec = client.get("/openapi.json").get_json()
    headers = bearer(s, "admin")
    for case in cases(spec):
        body = case.body.replace(b"\\u0000", b"").replace(b"\x00", b"") if case.body else None
        resp = client.open(case.path.replace("%00", ""), method=case.method.upper(),
                           query_string={k: v.replace("\x00", "") for k, v in case.query.items()},
                           data=body, content_type=case.content_type, headers=headers)
        assert resp.status_code < 500, (case.label, resp.get_data(as_text=True))
        if resp.mimetype == "application/problem+json":
            assert resp.get_json()["code"] != "invalid_character", case.label
