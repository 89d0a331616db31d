"""The auth matrix on every protected campaign endpoint (taken from the app's url_map)."""
from __future__ import annotations

import time

import jwt
import pytest
from werkzeug.routing import Rule

from devtools.dev_tokens import issue_token
from services.campaign.app import create_app
from services.common.config import Settings
from tests.unit.campaign_helpers import build, nip

# Public by design: campaign detail, totals and leaderboards.
PUBLIC = {("GET", "/v1/campaigns/<code>"), ("GET", "/v1/campaigns/<code>/totals"),
          ("GET", "/v1/campaigns/<code>/leaderboard/agencies"),
          ("GET", "/v1/campaigns/<code>/leaderboard/provinces")}


def _endpoints() -> list[tuple[str, str]]:
    app = create_app(Settings.from_env("campaign", database_url="sqlite://"))
    rules: list[Rule] = [r for r in app.url_map.iter_rules()
                         if r.endpoint.startswith("campaigns.")]
    out = [(m, r.rule) for r in rules for m in sorted(r.methods - {"HEAD", "OPTIONS"})]
    assert len(out) >= 11
    return out


ENDPOINTS = _endpoints()
PROTECTED = [e for e in ENDPOINTS if e not in PUBLIC]


def _cases(s: Settings) -> list[tuple[str, dict[str, str], int]]:
    now = int(time.time())
    claims = {"sub": nip(1), "role": "operator", "iss": s.jwt_issuer, "aud": s.jwt_audience,
              "iat": now, "exp": now + 600, "agency": "BPS", "region": "31"}
    expired = jwt.encode(claims | {"iat": now - 7200, "exp": now - 3600}, s.jwt_secret,
                         algorithm="HS256")
    wrong_sig = jwt.encode(claims, "not-the-secret-" * 3, algorithm="HS256")
    alg_none = jwt.encode(claims, None, algorithm="none")  # type: ignore[arg-type]
    wrong_aud = jwt.encode(claims | {"aud": "elsewhere"}, s.jwt_secret, algorithm="HS256")
    bearer = lambda t: {"Authorization": f"Bearer {t}"}  # noqa: E731
    return [("none", {}, 401), ("not bearer", {"Authorization": "Basic dXNlcjpwYXNz"}, 401),
            ("empty bearer", {"Authorization": "Bearer "}, 401),
            ("garbage", bearer("abc.def.ghi"), 401), ("expired", bearer(expired), 401),
            ("wrong signature", bearer(wrong_sig), 401), ("alg none", bearer(alg_none), 401),
            ("wrong audience", bearer(wrong_aud), 401),
            ("wrong role", bearer(issue_token(s, nip(1), "umkm")), 403)]


@pytest.mark.parametrize(("method", "rule"), PROTECTED, ids=[f"{m} {r}" for m, r in PROTECTED])
def test_protected_endpoint_refuses_bad_tokens(db_url: str, method: str, rule: str) -> None:
    settings = Settings.from_env("campaign", database_url=db_url)
    app, _ = build(settings)
    client = app.test_client()
    url = rule.replace("<code>", "c-1")
    for name, headers, status in _cases(settings):
        r = client.open(url, method=method, headers=headers, json={})
        assert r.status_code == status, (name, r.get_json())
        assert r.mimetype == "application/problem+json", name
        if status == 401:
            assert r.headers.get("WWW-Authenticate", "").startswith("Bearer"), name


def test_roles_are_checked_per_endpoint(db_url: str) -> None:
    settings = Settings.from_env("campaign", database_url=db_url)
    app, _ = build(settings)
    c = app.test_client()
    official = {"Authorization": "Bearer " + issue_token(settings, nip(1), "official",
                                                         agency="BPS", region="31")}
    operator = {"Authorization": "Bearer " + issue_token(settings, "op", "operator")}
    assert c.post("/v1/campaigns", json={}, headers=official).status_code == 403
    assert c.get("/v1/campaigns", headers=official).status_code == 200  # the open ones
    assert c.get("/v1/campaigns/x/sellers?name=kopi", headers=operator).status_code == 404
    assert c.get("/v1/campaigns/x/sellers?name=kopi", headers={
        "Authorization": "Bearer " + issue_token(settings, "kc-1", "umkm")}).status_code == 403
    assert c.get("/v1/campaigns/x/purchases.csv", headers=official).status_code == 403
    assert c.post("/v1/campaigns/x/join", headers=operator).status_code == 403
    assert c.get("/v1/campaigns/x/purchases/mine", headers=operator).status_code == 403


def test_public_endpoints_need_no_token(db_url: str) -> None:
    settings = Settings.from_env("campaign", database_url=db_url)
    app, _ = build(settings)
    for _, rule in PUBLIC:
        assert app.test_client().get(rule.replace("<code>", "none")).status_code == 404
