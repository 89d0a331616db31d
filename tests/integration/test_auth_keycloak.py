"""The services as resource servers of the real identity provider (Keycloak 26, realm bbi,
started once per session by the `keycloak` fixture): its tokens are accepted, every bad token
gets its own problem details and writes nothing, the JWKS being down degrades as designed,
and a key rotated mid-run keeps everything working."""
from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
import sqlalchemy as sa
from flask import Flask

from devtools.local_keycloak import LocalKeycloak
from services.common.db.engine import make_engine
from services.common.db.migrations import upgrade
from services.training.app import create_app
from tests.integration.keycloak_helpers import (
    Forger,
    add_rsa_key,
    bearer,
    hs256_with_public_key,
    jwks_proxy,
    make_rs256_keys_passive,
    oidc_settings,
    published_kids,
    signing_kid,
    token,
    tokens,
)

COURSE = {"title": "Memotret produk", "level": "dasar",
          "modules": [{"key": "m1", "title": "Cahaya"}]}
OPERATOR, OWNER = "operator1@bbi.test", "owner1@bbi.test"


def training_app(kc: LocalKeycloak, tmp_path: Path, **kw: Any) -> tuple[Flask, sa.Engine]:
    url = f"sqlite:///{tmp_path / f'{uuid.uuid4().hex[:8]}.db'}"
    upgrade("training", url)
    return create_app(oidc_settings(kc, "training", url, **kw)), make_engine(url)


def written(engine: sa.Engine) -> int:
    """Rows the requests wrote: courses, plus any event or audit row they would carry."""
    with engine.connect() as conn:
        return sum(conn.scalar(sa.text(f"SELECT count(*) FROM {t}")) or 0
                   for t in ("courses", "outbox", "audit_log"))


def eventually(check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.2)


def test_a_token_from_keycloaks_token_endpoint_is_accepted(keycloak: LocalKeycloak,
                                                           tmp_path: Path) -> None:
    app, engine = training_app(keycloak, tmp_path)
    client = app.test_client()
    resp = client.post("/v1/courses", json=COURSE, headers=bearer(token(keycloak, OPERATOR)))
    assert resp.status_code == 201, resp.get_json()
    assert written(engine) >= 1
    owner = client.post("/v1/courses", json=COURSE, headers=bearer(token(keycloak, OWNER)))
    assert owner.status_code == 403 and owner.get_json()["code"] == "forbidden"
    # The OpenAPI document tells Swagger UI where to sign in.
    scheme = client.get("/openapi.json").get_json()["components"]["securitySchemes"]
    assert scheme["bearerAuth"] == {
        "type": "openIdConnect", "description": scheme["bearerAuth"]["description"],
        "openIdConnectUrl": f"{keycloak.issuer}/.well-known/openid-configuration"}


def test_the_principal_carries_roles_and_attributes_from_keycloak(keycloak: LocalKeycloak,
                                                                  tmp_path: Path) -> None:
    from services.common.http.auth import TokenVerifier

    v = TokenVerifier(oidc_settings(keycloak, "training", "sqlite://"))
    official = v.verify(token(keycloak, "official1@bbi.test"))
    assert official.roles == {"official"} and official.role == "official"
    assert (official.nip, official.agency, official.region) == (
        "198001012005011001", "KemenKopUKM", "31")
    regional = v.verify(token(keycloak, "operator-jabar@bbi.test"))
    assert regional.roles == {"operator"} and regional.province_scope == frozenset({"32"})
    national = v.verify(token(keycloak, OPERATOR))
    assert national.province_scope is None
    owner = v.verify(token(keycloak, OWNER))
    assert owner.roles == {"umkm"} and uuid.UUID(owner.subject)  # a person's account id
    # No name or e-mail in the access token: the services never need them.
    assert not {"email", "name", "given_name", "preferred_username"} & set(owner.claims)


def test_every_bad_token_gets_its_own_problem_and_writes_nothing(keycloak: LocalKeycloak,
                                                                tmp_path: Path) -> None:
    app, engine = training_app(keycloak, tmp_path)
    client = app.test_client()
    forger = Forger(keycloak)
    assert forger.kid in published_kids(keycloak)
    now = int(time.time())
    real = tokens(keycloak, OPERATOR)
    stranger = jwt.encode({"sub": "x", "iss": keycloak.issuer, "aud": "bbi", "iat": now,
                           "exp": now + 300}, _fresh_key(), algorithm="RS256",
                          headers={"kid": "made-up-kid"})  # a key Keycloak never published
    cases = {
        "token_expired": forger.sign(iat=now - 900, exp=now - 600),
        "token_not_yet_valid": forger.sign(nbf=now + 600),
        "token_wrong_issuer": forger.sign(iss="https://sso.example.go.id/realms/bbi"),
        "token_wrong_audience": real["id_token"],  # Keycloak's ID token: aud is the client
        "token_unsigned": jwt.encode({"sub": "x", "realm_access": {"roles": ["admin"]}}, None,
                                     algorithm="none"),
        "token_algorithm_not_allowed": hs256_with_public_key(keycloak, {
            "sub": "x", "iss": keycloak.issuer, "aud": "bbi", "iat": now, "exp": now + 300,
            "realm_access": {"roles": ["admin"]}}),
        "token_unknown_key": stranger,
        "token_malformed": "eyJhbGciOiJSUzI1NiJ9.not-base64!.x",
        "token_bad_signature": real["access_token"][:-8] + "AAAAAAAA",
        "token_claims_missing": forger.sign(exp=None),
    }
    for code, bad in cases.items():
        resp = client.post("/v1/courses", json=COURSE, headers=bearer(bad))
        assert resp.status_code == 401, (code, resp.get_json())
        body = resp.get_json()
        assert resp.mimetype == "application/problem+json" and body["code"] == code, body
        assert body["message_id"] and body["message_en"]
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    # Keycloak's refresh token is HS512, signed with a realm secret: never an access token.
    refresh = client.post("/v1/courses", json=COURSE, headers=bearer(real["refresh_token"]))
    assert refresh.get_json()["code"] == "token_algorithm_not_allowed"
    assert written(engine) == 0
    # And the forger's own key does sign a token the service accepts: the cases above fail
    # for the reason named, not because the key is unknown.
    ok = client.post("/v1/courses", json=COURSE, headers=bearer(forger.sign()))
    assert ok.status_code == 201 and written(engine) >= 1


def _fresh_key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def test_jwks_down_cached_key_works_new_kid_503_then_recovers(keycloak: LocalKeycloak,
                                                              tmp_path: Path) -> None:
    with jwks_proxy(keycloak) as proxy:
        app, engine = training_app(keycloak, tmp_path, jwt_jwks_url=proxy.jwks_url)
        client = app.test_client()
        before = token(keycloak, OPERATOR)
        assert client.post("/v1/courses", json=COURSE, headers=bearer(before)).status_code \
            == 201
        proxy.down = True
        new_kid = add_rsa_key(keycloak, f"tests-rotated-{uuid.uuid4().hex[:6]}")
        after = token(keycloak, OPERATOR)
        assert jwt.get_unverified_header(after)["kid"] == new_kid
        # The cached key keeps verifying while the JWKS cannot be fetched.
        assert client.post("/v1/courses", json=COURSE, headers=bearer(before)).status_code \
            == 201
        # A token signed by a key not cached: 503 + Retry-After, problem details, no write.
        # (The first attempt may fall inside the refetch floor of the last good fetch:
        # 401 unknown key; once past it, the failed refetch answers 503.)
        seen: dict[str, Any] = {}
        at_outage = written(engine)

        def unavailable() -> bool:
            r = client.post("/v1/courses", json=COURSE, headers=bearer(after))
            seen.update(status=r.status_code, body=r.get_json(), headers=dict(r.headers))
            return r.status_code == 503

        eventually(unavailable, timeout=30)
        assert seen["body"]["code"] == "identity_provider_unavailable"
        assert 1 <= int(seen["headers"]["Retry-After"]) <= 5
        assert seen["headers"]["Content-Type"].startswith("application/problem+json")
        assert written(engine) == at_outage  # the 503s wrote nothing
        proxy.down = False  # back: the next attempt past the floor fetches the new key
        eventually(lambda: client.post("/v1/courses", json=COURSE,
                                       headers=bearer(after)).status_code == 201)
        assert written(engine) > at_outage
        make_rs256_keys_passive(keycloak, except_kid=new_kid)


def test_a_key_rotated_in_keycloak_mid_run_keeps_everything_working(keycloak: LocalKeycloak,
                                                                    tmp_path: Path) -> None:
    app, engine = training_app(keycloak, tmp_path)
    client = app.test_client()
    old_kid = signing_kid(keycloak)
    before = token(keycloak, OPERATOR)
    assert client.post("/v1/courses", json=COURSE, headers=bearer(before)).status_code == 201
    new_kid = add_rsa_key(keycloak, f"tests-rotated-{uuid.uuid4().hex[:6]}")
    assert old_kid in make_rs256_keys_passive(keycloak, except_kid=new_kid)
    after = token(keycloak, OPERATOR)
    assert jwt.get_unverified_header(after)["kid"] == new_kid != old_kid
    # New tokens verify (the unknown kid triggers one JWKS fetch), and so do the tokens
    # signed before the rotation: the old key is passive, still published.
    assert old_kid in published_kids(keycloak)
    eventually(lambda: client.post("/v1/courses", json=COURSE,
                                   headers=bearer(after)).status_code == 201)
    assert client.post("/v1/courses", json=COURSE, headers=bearer(before)).status_code == 201
    # Refreshing a session issued before the rotation gives a token of the new key.
    refreshed = tokens(keycloak, OWNER)
    assert jwt.get_unverified_header(refreshed["access_token"])["kid"] == new_kid
    with engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT count(*) FROM courses")) == 3


@pytest.mark.parametrize("username,role", [("owner2@bbi.test", "umkm"),
                                           ("admin1@bbi.test", "admin")])
def test_every_dev_user_signs_in_through_the_token_endpoint(keycloak: LocalKeycloak,
                                                           username: str, role: str) -> None:
    from services.common.http.auth import TokenVerifier

    p = TokenVerifier(oidc_settings(keycloak, "training", "sqlite://")).verify(
        token(keycloak, username))
    assert p.roles == {role}
