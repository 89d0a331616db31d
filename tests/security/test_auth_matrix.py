"""Every route of every service, from the app's own url_map, against every way to fake a
caller: no token, malformed, expired, wrongly signed, `alg: none`, wrong issuer/audience,
wrong role, another subject's resource. A route not listed as public is protected, so a new
endpoint is covered the day it is added, and the expected roles must be written down here."""
from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import jwt
import pytest
from flask import Flask

from services.common.config import Settings
from tests.security.apps import SERVICES, bearer, build
from tests.unit.registration_helpers import payload

PLUMBING = {"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs",
            "/docs/<path:filename>", "/static/<path:filename>"}
PUBLIC: dict[str, set[tuple[str, str]]] = {
    "registration": {("GET", "/v1/reference/provinces"),
                     ("GET", "/v1/reference/kbli-sections"), ("GET", "/v1/reference/platforms"),
                     ("GET", "/v1/reference/consent")},
    "training": {("GET", "/v1/courses"), ("GET", "/v1/courses/<uuid:course_id>"),
                 ("GET", "/v1/sessions"), ("GET", "/v1/sessions/<uuid:session_id>"),
                 ("GET", "/v1/certificates/<number>")},  # the public certificate check
    "campaign": {("GET", "/v1/campaigns/<code>"), ("GET", "/v1/campaigns/<code>/totals"),
                 ("GET", "/v1/campaigns/<code>/leaderboard/agencies"),
                 ("GET", "/v1/campaigns/<code>/leaderboard/provinces")},
    "metrics": {("GET", "/v1/summary"), ("GET", "/v1/provinces/<string:code>")},
}
API_KEY = {("registration", "POST", "/v1/partner/onboardings")}  # partner X-API-Key
OPS = frozenset({"operator", "admin"})
UMKM, OFFICIAL = frozenset({"umkm"}), frozenset({"official"})
ADMIN = frozenset({"admin"})


def _audit(service: str) -> dict[tuple[str, str], frozenset[str]]:
    """An audited service's log (one path per service, so the Ingress can route it): admins."""
    return {("GET", f"/v1/audit/{service}"): ADMIN}


ALLOWED: dict[str, dict[tuple[str, str], frozenset[str]]] = {
    "registration": {
        ("POST", "/v1/umkm"): UMKM,  # a signed-in person registers, and owns, the business
        ("POST", "/v1/umkm/claims"): UMKM, ("GET", "/v1/umkm/mine"): UMKM,
        ("GET", "/v1/umkm"): OPS, ("GET", "/v1/umkm/export.csv"): OPS,
        ("GET", "/v1/umkm/<uuid:umkm_id>"): OPS | UMKM,        # the owner only: see below
        ("DELETE", "/v1/umkm/<uuid:umkm_id>"): frozenset({"admin"}) | UMKM,
        ("POST", "/v1/umkm/<uuid:umkm_id>/verification"): OPS,
        ("POST", "/v1/umkm/<uuid:umkm_id>/platforms"): OPS,
        ("POST", "/v1/umkm/<uuid:umkm_id>/curation"): OPS, **_audit("registration")},
    "training": {
        ("POST", "/v1/courses"): OPS, ("PATCH", "/v1/courses/<uuid:course_id>"): OPS,
        ("POST", "/v1/sessions"): OPS, ("PATCH", "/v1/sessions/<uuid:session_id>"): OPS,
        ("POST", "/v1/sessions/<uuid:session_id>/cancel"): OPS,
        ("POST", "/v1/sessions/<uuid:session_id>/attendance"): OPS,
        ("POST", "/v1/sessions/<uuid:session_id>/enrolments"): UMKM,   # names the business
        ("DELETE", "/v1/sessions/<uuid:session_id>/enrolments/<uuid:umkm_id>"): UMKM,
        ("GET", "/v1/me/enrolments"): UMKM, ("GET", "/v1/me/completions"): UMKM,
        ("GET", "/v1/me/courses/<uuid:course_id>/progress"): UMKM,          # ?umkm_id=
        ("POST", "/v1/me/courses/<uuid:course_id>/modules/<module_key>/done"): UMKM,
        **_audit("training")},
    "campaign": {
        ("GET", "/v1/campaigns"): OPS | OFFICIAL,  # officials: the open campaigns
        ("POST", "/v1/campaigns"): OPS,
        ("GET", "/v1/campaigns/<code>/sellers"): OPS | OFFICIAL,
        ("POST", "/v1/campaigns/<code>/open"): OPS, ("POST", "/v1/campaigns/<code>/close"): OPS,
        ("GET", "/v1/campaigns/<code>/purchases.csv"): OPS,
        ("POST", "/v1/campaigns/<code>/join"): OFFICIAL,
        ("POST", "/v1/campaigns/<code>/purchases"): OFFICIAL,
        ("GET", "/v1/campaigns/<code>/purchases/mine"): OFFICIAL, **_audit("campaign")},
    "metrics": {},
}
ROLES = ("umkm", "official", "operator", "admin")
RESULTS = Path(__file__).parent.parent.parent / "var" / "security" / "auth_matrix"


def routes(app: Flask) -> list[tuple[str, str]]:
    """Every (method, rule) the app answers, plumbing aside."""
    out = []
    for rule in app.url_map.iter_rules():
        if rule.rule in PLUMBING or rule.endpoint.startswith("api-docs"):
            continue
        out += [(m, rule.rule) for m in sorted(rule.methods or ()) if m not in ("HEAD", "OPTIONS")]
    return sorted(out)


def url(rule: str, umkm_id: str | None = None) -> str:
    """A concrete URL for a rule: any value of the right type (auth is checked first)."""
    parts = {"uuid": umkm_id or str(uuid.uuid4()), "string": "31", "path": "x"}
    out, rest = "", rule
    while "<" in rest:
        head, _, tail = rest.partition("<")
        spec, _, rest = tail.partition(">")
        conv = spec.split(":")[0] if ":" in spec else "string"
        out += head + (parts.get(conv, "kode-1") if spec != "module_key" else "modul-1")
    return out + rest


def forged_tokens(s: Settings) -> dict[str, str]:
    """Authorization headers that must never get in (each answers 401)."""
    now = int(time.time())
    good = {"sub": "op-1", "realm_access": {"roles": ["admin"]}, "iss": s.jwt_issuer,
            "aud": s.jwt_audience, "iat": now, "exp": now + 600}
    unsigned = jwt.encode(good, None, algorithm="none")
    return {
        "no_token": "",
        "not_bearer": "Basic b3A6b3A=",
        "empty_bearer": "Bearer ",
        "malformed": "Bearer not.a.jwt",
        "garbage": "Bearer " + "A" * 5000,
        "expired": "Bearer " + jwt.encode(good | {"iat": now - 7200, "exp": now - 3600},
                                          s.jwt_secret, algorithm="HS256"),
        "wrong_key": "Bearer " + jwt.encode(good, "another-secret-" + "x" * 32, "HS256"),
        "alg_none": "Bearer " + unsigned,
        "alg_none_signed_looking": "Bearer " + unsigned + "c2lnbmF0dXJl",
        "alg_hs512": "Bearer " + jwt.encode(good, s.jwt_secret, algorithm="HS512"),
        "wrong_issuer": "Bearer " + jwt.encode(good | {"iss": "evil"}, s.jwt_secret, "HS256"),
        "wrong_audience": "Bearer " + jwt.encode(good | {"aud": "other"}, s.jwt_secret,
                                                 "HS256"),
        "no_exp": "Bearer " + jwt.encode({k: v for k, v in good.items() if k != "exp"},
                                         s.jwt_secret, "HS256"),
        "not_yet_valid": "Bearer " + jwt.encode(good | {"iat": now + 3600, "nbf": now + 3600},
                                                s.jwt_secret, "HS256"),
    }


def assert_problem(resp: Any, status: int, where: str) -> None:
    assert resp.status_code == status, (where, resp.status_code, resp.get_data(as_text=True)[:300])
    assert resp.mimetype == "application/problem+json", where
    body = resp.get_json()
    assert body["status"] == status and body["code"] and body["message_id"], where
    if status == 401:
        assert resp.headers.get("WWW-Authenticate", "").startswith("Bearer"), where


def call(client: Any, method: str, path: str, headers: dict[str, str]) -> Any:
    resp = client.open(path, method=method, headers=headers, json={})
    # Read and close: an unclosed streamed (CSV) response keeps its request context pushed,
    # and the next request would then share its `g` (and cached principal).
    resp.get_data()
    resp.close()
    return resp


@pytest.mark.filterwarnings("ignore:The HMAC key")  # the forged HS512 token uses the HS256 key
@pytest.mark.parametrize("service", SERVICES)
def test_every_protected_route_refuses_every_forged_caller(service: str, tmp_path: Path) -> None:
    app, s = build(service, f"sqlite:///{tmp_path / 'db.sqlite'}")
    client = app.test_client()
    all_routes = routes(app)
    public = PUBLIC[service]
    protected = [r for r in all_routes if r not in public and (service, *r) not in API_KEY]
    # Written down = what exists: a new route fails here until its roles are declared.
    assert set(protected) == set(ALLOWED[service]), set(protected) ^ set(ALLOWED[service])
    assert public <= set(all_routes), public - set(all_routes)
    doc = client.get("/openapi.json").get_json()
    forged = forged_tokens(s)
    tally: Counter[str] = Counter()
    for method, rule in protected:
        path = url(rule)
        op = doc["paths"][rule_to_openapi(rule)][method.lower()]
        assert op.get("security"), f"{method} {rule} is protected but not documented so"
        for name, header in forged.items():
            headers = {"Authorization": header} if header else {}
            assert_problem(call(client, method, path, headers), 401, f"{method} {rule} {name}")
            tally[name] += 1
        for role in ROLES:
            sub = _subject(role)
            # An owner's token gets past auth to the ownership check (the business is unknown
            # here: 404 or 409); another owner's business is refused in the tests below.
            own = url(rule, sub) if role == "umkm" and "umkm_id" in rule else path
            resp = call(client, method, own, bearer(s, role, sub))
            if role in ALLOWED[service][(method, rule)]:
                assert resp.status_code not in (401, 403), (method, rule, role)
                tally["allowed_role"] += 1
            else:
                assert_problem(resp, 403, f"{method} {rule} as {role}")
                tally["wrong_role"] += 1
    for method, rule in public:  # and the public ones really are public
        assert call(client, method, url(rule), {}).status_code not in (401, 403), rule
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{service}.json").write_text(json.dumps({
        "service": service, "routes": len(all_routes), "protected": len(protected),
        "public": len(public), "forged_variants": len(forged), "roles": len(ROLES),
        "checks": sum(tally.values()), "by_variant": dict(tally)}, indent=1))


def _subject(role: str) -> str:
    return {"umkm": str(uuid.uuid4()), "official": "198001012005011001"}.get(role, "op-1")


def rule_to_openapi(rule: str) -> str:
    out, rest = "", rule
    while "<" in rest:
        head, _, tail = rest.partition("<")
        spec, _, rest = tail.partition(">")
        out += head + "{" + spec.split(":")[-1] + "}"
    return out + rest


def test_an_owner_token_opens_only_its_own_registration(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    app, s = build("registration", f"sqlite:///{tmp_path / 'db.sqlite'}")
    client = app.test_client()
    owners = []
    for n in (1, 2):  # two people, each registering their business
        who = bearer(s, "umkm", f"kc-person-{n}")
        resp = client.post("/v1/umkm", json=payload(n), headers=who)
        assert resp.status_code == 201, resp.get_json()
        owners.append((resp.get_json(), who))
    (a, mine), (b, theirs) = owners
    assert client.get(f"/v1/umkm/{a['id']}", headers=mine).status_code == 200
    for method in ("GET", "DELETE"):
        assert_problem(call(client, method, f"/v1/umkm/{b['id']}", mine), 403,
                       f"{method} another owner's registration")
    # A token whose subject is the business id is no owner: subjects are people.
    assert_problem(call(client, "GET", f"/v1/umkm/{b['id']}", bearer(s, "umkm", b["id"])), 403,
                   "the business id as subject")
    # An operator may read it but only an admin or the owner may withdraw it.
    assert client.get(f"/v1/umkm/{b['id']}", headers=bearer(s, "operator")).status_code == 200
    assert_problem(call(client, "DELETE", f"/v1/umkm/{b['id']}", bearer(s, "operator")), 403,
                   "operator withdraws")
    assert client.get(f"/v1/umkm/{b['id']}", headers=theirs).status_code == 200


def test_partner_endpoint_refuses_missing_and_wrong_api_keys(tmp_path: Path) -> None:
    app, _ = build("registration", f"sqlite:///{tmp_path / 'db.sqlite'}")
    client = app.test_client()
    for headers in ({}, {"X-API-Key": ""}, {"X-API-Key": "bbi_" + "x" * 43},
                    {"X-API-Key": "' OR 1=1 --"}, {"Authorization": bearer_admin(app)}):
        resp = client.post("/v1/partner/onboardings", json=[payload(1)], headers=headers)
        assert resp.status_code == 401, (headers, resp.get_data(as_text=True))
        assert resp.mimetype == "application/problem+json" and resp.get_json()["code"]


def bearer_admin(app: Flask) -> str:
    return bearer(app.config["BBI_SETTINGS"], "admin")["Authorization"]


@pytest.mark.parametrize("service,claims,sub", [
    ("registration", {}, "3171011708450001"),  # an owner's subject events could not carry
    ("registration", {}, "sri@example.id"),
    ("campaign", {"agency": "", "region": "31"}, "198001012005011001"),
    ("campaign", {"agency": "Kemenkeu", "region": "00"}, "198001012005011001"),
    ("campaign", {"agency": "Kemenkeu", "region": "31"}, "12345"),  # not a NIP
])
def test_tokens_with_a_valid_signature_but_unusable_claims_are_403(
        service: str, claims: dict[str, str], sub: str, tmp_path: Path) -> None:
    app, s = build(service, f"sqlite:///{tmp_path / 'db.sqlite'}")
    role = "umkm" if service == "registration" else "official"
    path = "/v1/umkm" if service == "registration" else "/v1/campaigns/kode-1/join"
    method = "POST"
    from devtools.dev_tokens import issue_token

    headers = {"Authorization": "Bearer " + issue_token(s, sub, role, **claims)}
    assert_problem(call(app.test_client(), method, path, headers), 403, f"{service} {claims}")
