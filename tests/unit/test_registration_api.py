"""Public registration and the owner/operator read endpoints via the Flask test client."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from services.registration.store import umkm
from tests.unit.registration_helpers import (
    assert_no_pii,
    bearer,
    make_app,
    nik,
    outbox_events,
    owner,
    payload,
    sqlite_url,
    with_knobs,
)


@pytest.fixture
def env(tmp_path: Path) -> Any:
    app, settings = make_app(sqlite_url(tmp_path), max_body_bytes=8192)
    return app.test_client(), settings, app


def _codes(r: Any, field: str) -> list[str]:
    return [e["code"] for e in r.get_json()["errors"]["json"][field]]


def test_register_needs_an_owner_and_answers_no_token(env: Any) -> None:
    client, settings, app = env
    assert client.post("/v1/umkm", json=payload()).status_code == 401
    official = client.post("/v1/umkm", json=payload(), headers=bearer(settings, "official"))
    assert official.status_code == 403
    r = client.post("/v1/umkm", json=payload(), headers=owner(settings))
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    assert body == {"id": body["id"], "status": "registered", "scale": "mikro"}  # no token
    with app.extensions["bbi_engine"].connect() as conn:
        row = conn.execute(sa.select(umkm)).one()
    assert row.owner_subject == "kc-owner-1"
    assert row.nik_last4 == "0001" and nik(1) not in str(tuple(row))
    assert row.phone == "+6281234567890" and row.consent_version == "2025-01"
    assert row.consent_at is not None
    events = outbox_events(app)
    assert [e["type"] for e in events] == ["bbi.umkm.registered.v1"]
    assert events[0]["data"]["channel"] == "public" and events[0]["subject"] == body["id"]
    data = events[0]["data"]
    assert (data["owner_subject"], data["trade_name"], data["nib"]) == (
        "kc-owner-1", "Warung Bu Sri 1", payload()["nib"])
    assert_no_pii([str(e) for e in events])


def test_a_subject_events_cannot_carry_is_refused(env: Any) -> None:
    client, settings, app = env
    for sub in ("sri@example.id", "3171011708450001", "Sri Rahayu"):
        r = client.post("/v1/umkm", json=payload(), headers=owner(settings, sub))
        assert r.status_code == 403 and r.get_json()["code"] == "subject_unusable"
    assert outbox_events(app) == []


@pytest.mark.parametrize("over,field,code", [
    ({"nik": "123"}, "nik", "nik_invalid_format"),
    ({"nik": "9971011708450001"}, "nik", "nik_invalid_province"),
    ({"nib": "12"}, "nib", "nib_invalid"),
    ({"phone": "021-5551234"}, "phone", "phone_not_mobile"),
    ({"email": "not-an-email"}, "email", "invalid"),
    ({"province_code": "99"}, "province_code", "province_invalid"),
    ({"regency_code": "3271"}, "regency_code", "regency_outside_province"),
    ({"postal_code": "01234"}, "postal_code", "postal_code_invalid"),
    ({"kbli_code": "00111"}, "kbli_code", "kbli_invalid"),
    ({"capital_idr": 10_000_000_001}, "capital_idr", "scale_above_menengah"),
    ({"capital_idr": None}, "capital_idr", "scale_basis_missing"),
    ({"capital_idr": 1.5}, "capital_idr", "not_integer"),
    ({"platforms": ["myspace"]}, "platforms", "invalid"),
    ({"npwp": "01.234.567.8-901.000"}, "npwp", "npwp_invalid_checksum"),
    ({"consent": {"given": False, "version": "2025-01"}}, "consent", "consent_required"),
    ({"consent": {"given": True, "version": "2019"}}, "consent", "consent_version_outdated"),
    ({"qris": None}, "qris", "null"),
])
def test_invalid_fields_are_422_with_bilingual_codes(env: Any, over: dict[str, Any],
                                                     field: str, code: str) -> None:
    client, _, _ = env
    r = client.post("/v1/umkm", json=payload(**over), headers=owner(env[1]))
    assert r.status_code == 422 and r.mimetype == "application/problem+json"
    errors = r.get_json()["errors"]["json"][field]
    flat = errors if isinstance(errors, list) else [e for v in errors.values() for e in
                                                     (v if isinstance(v, list) else
                                                      [x for w in v.values() for x in w])]
    assert code in [e["code"] for e in flat], r.get_json()
    assert all(e["message_id"] and e["message_en"] for e in flat)


def test_consent_is_required(env: Any) -> None:
    client, _, _ = env
    body = payload()
    del body["consent"]
    r = client.post("/v1/umkm", json=body, headers=owner(env[1]))
    assert r.status_code == 422 and _codes(r, "consent") == ["required"]


def test_annual_sales_alone_decides_the_scale(env: Any) -> None:
    client, _, _ = env
    r = client.post("/v1/umkm", json=payload(capital_idr=None, annual_sales_idr=3_000_000_000),
                    headers=owner(env[1]))
    assert r.status_code == 201 and r.get_json()["scale"] == "kecil"


def test_duplicates_are_409_with_the_existing_registration(env: Any) -> None:
    client, settings, app = env
    h = owner(settings)
    first = client.post("/v1/umkm", json=payload(), headers=h).get_json()
    same_nib = client.post("/v1/umkm", json=payload(2, nib=payload()["nib"]), headers=h)
    assert same_nib.status_code == 409
    assert same_nib.get_json()["code"] == "already_registered"
    assert same_nib.get_json()["id"] == first["id"]
    assert same_nib.get_json()["current_status"] == "registered"
    assert same_nib.get_json()["claimable"] is False  # it has an owner
    same_nik_name = client.post("/v1/umkm", json=payload(
        1, nib=None, business_name="  warung BU-SRI  1 "), headers=h)
    assert same_nik_name.status_code == 409 and same_nik_name.get_json()["id"] == first["id"]
    other_business = client.post("/v1/umkm", json=payload(1, nib=None,
                                                          business_name="Katering Sri"),
                                 headers=h)
    assert other_business.status_code == 201
    with app.extensions["bbi_engine"].connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(umkm)).scalar_one() == 2


def test_idempotency_key_replays_the_first_answer(env: Any) -> None:
    client, settings, app = env
    h = {"Idempotency-Key": "reg-1"} | owner(settings)
    a = client.post("/v1/umkm", json=payload(), headers=h)
    b = client.post("/v1/umkm", json=payload(), headers=h)
    assert a.status_code == b.status_code == 201
    assert a.get_json() == b.get_json() and b.headers["Idempotent-Replayed"] == "true"
    assert len(outbox_events(app)) == 1
    c = client.post("/v1/umkm", json=payload(2), headers=h)
    assert c.status_code == 422 and c.get_json()["code"] == "idempotency_key_reused"


def test_rate_limit_per_client_with_retry_after(env: Any) -> None:
    client, settings, app = env
    with_knobs(app, rate_limit=2)
    a, h = {"REMOTE_ADDR": "10.0.0.1"}, owner(settings)
    assert client.post("/v1/umkm", json=payload(1), environ_base=a, headers=h).status_code \
        == 201
    assert client.post("/v1/umkm", json=payload(1), environ_base=a, headers=h).status_code \
        == 409
    r = client.post("/v1/umkm", json=payload(2), environ_base=a, headers=h)
    assert r.status_code == 429 and r.get_json()["code"] == "rate_limited"
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    other = client.post("/v1/umkm", json=payload(2), environ_base={"REMOTE_ADDR": "10.0.0.2"},
                        headers=h)
    assert other.status_code == 201


def test_body_size_is_bounded(env: Any) -> None:
    client, settings, _ = env
    r = client.post("/v1/umkm", json=payload(address="x" * 10_000), headers=owner(settings))
    assert r.status_code == 413 and r.get_json()["code"] == "payload_too_large"


def test_get_owner_sees_non_personal_fields_operator_also_contact(env: Any) -> None:
    client, settings, _ = env
    created = client.post("/v1/umkm", json=payload(), headers=owner(settings)).get_json()
    url = f"/v1/umkm/{created['id']}"
    assert client.get(url).status_code == 401
    mine = client.get(url, headers=owner(settings))
    assert mine.status_code == 200
    body = mine.get_json()
    assert body["status"] == "registered" and body["province_code"] == "31"
    assert "nik_masked" not in body and "phone" not in body and "owner_name" not in body
    op = client.get(url, headers=bearer(settings, "operator")).get_json()
    assert op["nik_masked"] == "*" * 12 + "0001" and op["phone"] == "+6281234567890"
    assert op["email"] == "sri@example.id" and op["platforms_declared"] == ["shopee"]
    other = client.get(url, headers=owner(settings, "kc-someone-else"))
    assert other.status_code == 403 and other.get_json()["code"] == "not_owner"
    assert client.get(url, headers=bearer(settings, "official")).status_code == 403
    bad = client.get(url, headers={"Authorization": "Bearer nonsense"})
    assert bad.status_code == 401 and bad.get_json()["code"] == "token_malformed"


def test_get_unknown_is_404(env: Any) -> None:
    client, settings, _ = env
    op = bearer(settings, "operator")
    r = client.get("/v1/umkm/3f0c5b8e-1111-4222-8333-444455556666", headers=op)
    assert r.status_code == 404 and r.get_json()["code"] == "not_found"
    assert client.get("/v1/umkm/not-a-uuid", headers=op).status_code == 404


def test_reference_lists(env: Any) -> None:
    client, _, _ = env
    provinces = client.get("/v1/reference/provinces").get_json()
    assert len(provinces) == 38 and {"code": "65", "name": provinces[
        [p["code"] for p in provinces].index("65")]["name"]} in provinces
    sections = client.get("/v1/reference/kbli-sections").get_json()
    assert [s["section"] for s in sections][:3] == ["A", "B", "C"] and len(sections) == 21
    platforms = {p["code"] for p in client.get("/v1/reference/platforms").get_json()}
    assert {"tokopedia", "shopee", "lkpp_ekatalog"} <= platforms
    consent = client.get("/v1/reference/consent").get_json()
    assert consent["version"] == "2025-01" and consent["purpose_id"]


def test_openapi_documents_every_endpoint(env: Any) -> None:
    client, _, _ = env
    paths = client.get("/openapi.json").get_json()["paths"]
    for p in ("/v1/umkm", "/v1/umkm/{umkm_id}", "/v1/umkm/export.csv", "/v1/umkm/mine",
              "/v1/umkm/claims",
              "/v1/umkm/{umkm_id}/verification", "/v1/umkm/{umkm_id}/platforms",
              "/v1/umkm/{umkm_id}/curation", "/v1/partner/onboardings",
              "/v1/reference/provinces"):
        assert p in paths, p
