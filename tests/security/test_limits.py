"""Hostile bodies: too large, too many, too deep, not UTF-8, not JSON; and injection strings
in every free-text field, which must be stored and returned verbatim and harm nothing."""
from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from services.registration.partner import handlers as partner
from tests.security.apps import bearer, build
from tests.unit.campaign_helpers import campaign_body
from tests.unit.registration_helpers import payload
from tests.unit.training_helpers import course_body

# (service, path, role, a valid body) of every endpoint that creates something from free text.
CREATE = [
    ("registration", "/v1/umkm", "umkm", payload(1)),
    ("training", "/v1/courses", "operator", course_body()),
    ("campaign", "/v1/campaigns", "operator", campaign_body()),
]
HOSTILE = [
    "'; DROP TABLE umkm;--",
    "Robert'); DROP TABLE courses; --",
    "\" OR \"1\"=\"1",
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "${jndi:ldap://127.0.0.1/a}",
    "{{7*7}} %s %n %x",
    "Zalgo: Z̴̡͔̈a̵͎̾l̶̢͝g̸̱̈o̶͈̊",
    "RTL \u202eevil\u202c and zero\u200bwidth\ufeff",
    "emoji 🇮🇩 🏪 and CJK 印尼",
    "back\\slash \"quote\" tab\there",
]


def _app(service: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **kw: Any) -> Any:
    monkeypatch.setenv("REGISTRATION_RATE_LIMIT", "100000")
    return build(service, f"sqlite:///{tmp_path / f'{service}.db'}", **kw)


def _problem(resp: Any, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.get_data(as_text=True)[:400]
    assert resp.mimetype == "application/problem+json"
    body = resp.get_json()
    assert body["status"] == status and body["code"]
    return body  # type: ignore[no-any-return]


@pytest.mark.parametrize("service,path,role,body", CREATE)
def test_oversized_bodies_are_413(service: str, path: str, role: str | None, body: Any,
                                  tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app, s = _app(service, tmp_path, monkeypatch)
    headers = bearer(s, role) if role else {}
    big = json.dumps(body | {"description": "x" * s.max_body_bytes}).encode()
    resp = app.test_client().post(path, data=big, headers=headers,
                                  content_type="application/json")
    assert _problem(resp, 413)["code"] == "payload_too_large"


@pytest.mark.parametrize("service,path,role,body", CREATE)
@pytest.mark.parametrize("raw,content_type", [
    (b"\xff\xfe\xfa not utf-8", "application/json"),
    (b'{"title": "\xc3\x28"}', "application/json"),
    (b"[" * 100_000 + b"]" * 100_000, "application/json"),   # deeper than any parser stack
    (b'{"a":' * 50_000 + b"1" + b"}" * 50_000, "application/json"),
    (b"{not json", "application/json"),
    (b"", "application/json"),
    (b"title=x", "application/x-www-form-urlencoded"),
    (b"1e999999", "application/json"),
    (b'"just a string"', "application/json"),
])
def test_malformed_bodies_are_clear_4xx(service: str, path: str, role: str | None, body: Any,
                                        raw: bytes, content_type: str, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    app, s = _app(service, tmp_path, monkeypatch)
    headers = bearer(s, role) if role else {}
    resp = app.test_client().post(path, data=raw, headers=headers, content_type=content_type)
    assert 400 <= resp.status_code < 500, (resp.status_code, resp.get_data(as_text=True)[:300])
    assert resp.mimetype == "application/problem+json" and resp.get_json()["code"]


def _partner(app: Any, s: Any) -> dict[str, str]:
    key = partner.create_partner(app.extensions["bbi_engine"], s, "tokoku", "tokopedia", "Tokoku")
    return {"X-API-Key": key}


@pytest.mark.parametrize("raw,content_type,status", [
    (b"[" * 100_000 + b"]" * 100_000, "application/json", 400),
    (b"{}\n" + b"[" * 100_000 + b"]" * 100_000, "application/x-ndjson", 400),
    (b"\xff\xfe", "application/json", 400),
    (b"[]", "application/json", 422),
    (b'{"merchants": []}', "application/json", 422),
])
def test_partner_malformed_batches(raw: bytes, content_type: str, status: int, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    app, s = _app("registration", tmp_path, monkeypatch)
    resp = app.test_client().post("/v1/partner/onboardings", data=raw,
                                  headers=_partner(app, s), content_type=content_type)
    _problem(resp, status)


def test_partner_batches_beyond_the_limits(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGISTRATION_PARTNER_MAX_ITEMS", "50")
    monkeypatch.setenv("REGISTRATION_PARTNER_MAX_BODY_BYTES", "200000")
    app, s = _app("registration", tmp_path, monkeypatch)
    client, key = app.test_client(), _partner(app, s)
    item = payload(1) | {"merchant_ref": "m-1"}
    resp = client.post("/v1/partner/onboardings", json=[item] * 51, headers=key)
    assert _problem(resp, 422)["code"] == "batch_too_large"
    resp = client.post("/v1/partner/onboardings", json=[item | {"address": "x" * 250_000}],
                       headers=key)
    assert _problem(resp, 413)["code"] == "payload_too_large"
    # 50 copies of one merchant: one row, the rest answered as duplicates, never a 500.
    resp = client.post("/v1/partner/onboardings", json=[item] * 50, headers=key)
    assert resp.status_code == 200, resp.get_data(as_text=True)[:300]
    with app.extensions["bbi_engine"].connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM umkm")).scalar_one() == 1


def _text_fields(service: str, text: str, n: int) -> dict[str, Any]:
    """A valid create body whose every free-text field carries `text`."""
    if service == "registration":
        return payload(n, business_name=f"{text} {n}", owner_name=text, address=text,
                       mentor_org=text)
    if service == "training":
        return course_body(title=text, description=text,
                           modules=[{"key": "m1", "title": text}])
    return campaign_body(code=f"c-{n}", name=text, description=text, eligible_agencies=[text])


@pytest.mark.parametrize("service", ["registration", "training", "campaign"])
def test_injection_strings_are_stored_and_returned_verbatim(
        service: str, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGISTRATION_RATE_LIMIT", "100000")
    app, s = build(service, pg_url)
    client, op = app.test_client(), bearer(s, "operator")
    path = {"registration": "/v1/umkm", "training": "/v1/courses",
            "campaign": "/v1/campaigns"}[service]
    for n, text in enumerate(HOSTILE, start=1):
        resp = client.post(path, json=_text_fields(service, text, n),
                           headers=bearer(s, "umkm") if service == "registration" else op)
        assert resp.status_code == 201, (text, resp.get_data(as_text=True)[:400])
        raw = resp.get_data(as_text=True)
        assert "<script>" not in raw or service != "registration"  # nothing echoes unasked
        created = resp.get_json()
        read_path = {"registration": f"/v1/umkm/{created.get('id')}",
                     "training": f"/v1/courses/{created.get('id')}",
                     "campaign": f"/v1/campaigns/c-{n}"}[service]
        back = client.get(read_path, headers=op)
        assert back.status_code == 200 and back.mimetype == "application/json"
        # JSON, not HTML: angle brackets are data, and the content type says so.
        assert back.headers.get("Content-Type", "").startswith("application/json")
        got = back.get_json()
        for key in {"registration": ("owner_name", "address", "mentor_org"),
                    "training": ("title", "description"),
                    "campaign": ("name", "description")}[service]:
            assert got[key] == text, (key, got[key], text)
    with app.extensions["bbi_engine"].connect() as conn:
        table = {"registration": "umkm", "training": "courses", "campaign": "campaigns"}[service]
        assert conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one() == len(HOSTILE)
        assert sa.inspect(conn).has_table("outbox")


def test_injection_in_query_and_path_parameters(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    app, s = _app("registration", tmp_path, monkeypatch)
    client, op = app.test_client(), bearer(s, "operator")
    assert client.post("/v1/umkm", json=payload(1), headers=bearer(s, "umkm")).status_code == 201
    for text in HOSTILE:
        for query in ({"province_code": text}, {"status": text}, {"cursor": text},
                      {"limit": text}, {"platform": text}):
            resp = client.get("/v1/umkm", query_string=query, headers=op)
            assert resp.status_code in (400, 422), (query, resp.status_code)
        resp = client.get(f"/v1/umkm/{text}", headers=op)
        assert resp.status_code == 404 and resp.mimetype == "application/problem+json"
    page = client.get("/v1/umkm", headers=op).get_json()
    assert len(page["items"]) == 1  # still there
    assert client.get(f"/v1/umkm/{uuid.uuid4()}", headers=op).status_code == 404
