"""The resource-server side of auth (services/common/http/auth.py, jwks.py) against a small
identity provider of our own on loopback: discovery + JWKS served over real HTTP, keys we
sign with. The same verifier is run against the real Keycloak in
tests/integration/test_auth_keycloak.py."""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from services.common.config import Settings
from services.common.http.auth import AuthConfigError, Principal, TokenVerifier, check_settings
from services.common.http.errors import ApiError


class FakeIdp:
    """Serves /.well-known/openid-configuration and /certs; `down` makes both 503."""

    def __init__(self) -> None:
        self.keys: dict[str, Any] = {}
        self.down = False
        self.hits = 0
        idp = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                idp.hits += 1
                if idp.down:
                    self.send_response(503)
                    self.end_headers()
                    return
                if self.path.endswith("/.well-known/openid-configuration"):
                    body = {"issuer": idp.issuer, "jwks_uri": idp.issuer + "/certs"}
                else:
                    body = {"keys": [idp.jwk(kid) for kid in idp.keys]}
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = f"http://127.0.0.1:{self.server.server_address[1]}/realms/bbi"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def add_key(self, kid: str) -> None:
        self.keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwk(self, kid: str) -> dict[str, Any]:
        d = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.keys[kid].public_key()))
        return d | {"kid": kid, "use": "sig", "alg": "RS256"}

    def token(self, kid: str, **claims: Any) -> str:
        now = int(time.time())
        body = {"sub": "person-1", "iss": self.issuer, "aud": "bbi", "iat": now,
                "exp": now + 300, "realm_access": {"roles": ["operator", "umkm"]}} | claims
        return jwt.encode({k: v for k, v in body.items() if v is not None}, self.keys[kid],
                          algorithm="RS256", headers={"kid": kid})


@pytest.fixture
def idp() -> Iterator[FakeIdp]:
    fake = FakeIdp()
    fake.add_key("k1")
    yield fake
    fake.server.shutdown()


def oidc(issuer: str, **kw: Any) -> Settings:
    return Settings.from_env("t", database_url="sqlite://", kafka_bootstrap_servers="x",
                             auth_mode="oidc", jwt_algorithm="RS256", jwt_issuer=issuer,
                             jwt_secret="", **kw)


def code_of(verifier: TokenVerifier, token: str) -> tuple[int, str, dict[str, str]]:
    with pytest.raises(ApiError) as err:
        verifier.verify(token)
    return err.value.status, err.value.code, err.value.headers


def test_a_valid_token_gives_the_principal_with_every_role_and_claim(idp: FakeIdp) -> None:
    v = TokenVerifier(oidc(idp.issuer))
    p = v.verify(idp.token("k1", province_scope="32", nip=None))
    assert p.subject == "person-1" and p.roles == {"operator", "umkm"}
    assert p.role == "operator" and p.has("umkm") and not p.has("admin")
    assert p.province_scope == frozenset({"32"}) and p.nip is None


def test_each_bad_token_has_its_own_code(idp: FakeIdp) -> None:
    v = TokenVerifier(oidc(idp.issuer, jwt_leeway_seconds=5))
    now = int(time.time())
    public_pem = idp.keys["k1"].public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    idp.add_key("stranger")
    stranger = idp.token("stranger")
    del idp.keys["stranger"]  # signed by a key the JWKS never published
    cases = {
        "token_expired": idp.token("k1", iat=now - 600, exp=now - 300),
        "token_not_yet_valid": idp.token("k1", nbf=now + 300),
        "token_wrong_issuer": idp.token("k1", iss="https://elsewhere.example/realms/bbi"),
        "token_wrong_audience": idp.token("k1", aud="account"),
        "token_claims_missing": idp.token("k1", sub=None),
        "token_unsigned": jwt.encode({"sub": "x"}, None, algorithm="none"),
        "token_algorithm_not_allowed": hs256_with_key(public_pem, {"sub": "x", "exp": now + 60}),
        "token_unknown_key": stranger,
        "token_malformed": "not.a.jwt",
        "token_bad_signature": idp.token("k1")[:-6] + "AAAAAA",
    }
    for expected, token in cases.items():
        status, code, headers = code_of(v, token)
        assert (status, code) == (401, expected)
        assert headers["WWW-Authenticate"].startswith("Bearer")


def hs256_with_key(key: bytes, claims: dict[str, Any]) -> str:
    """The algorithm-confusion forgery: HS256 keyed with the public key's PEM (PyJWT refuses
    to make one, so by hand)."""
    import base64
    import hashlib
    import hmac

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    head = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "k1"}).encode())
    body = b64(json.dumps(claims).encode())
    sig = hmac.new(key, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(sig)}"


def test_unknown_kids_refetch_at_most_once_per_floor(idp: FakeIdp) -> None:
    clock = [1000.0]
    v = TokenVerifier(oidc(idp.issuer, jwks_min_refresh_seconds=30))
    assert v.jwks is not None
    v.jwks.clock = lambda: clock[0]
    v.verify(idp.token("k1"))
    hits = idp.hits  # discovery + JWKS
    clock[0] += 31  # past the floor: the first unknown kid may re-fetch
    for n in range(50):  # a flood of made-up kids
        idp.add_key(f"made-up-{n}")
        token = idp.token(f"made-up-{n}")
        del idp.keys[f"made-up-{n}"]
        assert code_of(v, token)[1] == "token_unknown_key"
    assert idp.hits == hits + 1  # one JWKS re-fetch for the first; the rest wait the floor
    idp.add_key("k2")  # a real rotation: picked up once the floor has passed
    clock[0] += 31
    assert v.verify(idp.token("k2")).subject == "person-1"


def test_identity_provider_down_cached_keys_verify_new_kid_503_then_recovers(
        idp: FakeIdp) -> None:
    clock = [1000.0]
    v = TokenVerifier(oidc(idp.issuer, jwks_min_refresh_seconds=10))
    assert v.jwks is not None
    v.jwks.clock = lambda: clock[0]
    v.verify(idp.token("k1"))
    idp.down = True
    idp.add_key("k2")
    clock[0] += 11  # past the floor: an unknown kid may try a re-fetch, which fails
    assert v.verify(idp.token("k1")).subject == "person-1"  # cached key: unaffected
    status, code, headers = code_of(v, idp.token("k2"))
    assert (status, code) == (503, "identity_provider_unavailable")
    assert 1 <= int(headers["Retry-After"]) <= 10
    clock[0] += 3
    assert code_of(v, idp.token("k2"))[0] == 503  # within the floor: no new attempt
    idp.down = False
    clock[0] += 10
    assert v.verify(idp.token("k2")).subject == "person-1"  # recovered, no restart


def test_stale_keys_are_refetched_but_kept_when_the_idp_is_down(idp: FakeIdp) -> None:
    clock = [0.0]
    v = TokenVerifier(oidc(idp.issuer, jwks_max_age_seconds=60))
    assert v.jwks is not None
    v.jwks.clock = lambda: clock[0]
    v.verify(idp.token("k1"))
    idp.down = True
    clock[0] += 120  # keys are stale; the refresh fails; they keep verifying
    assert v.verify(idp.token("k1")).subject == "person-1"
    idp.down = False
    del idp.keys["k1"]
    idp.add_key("k2")
    clock[0] += 120  # a successful refresh drops the key the IdP no longer publishes
    assert v.verify(idp.token("k2")).subject == "person-1"
    assert "k1" not in v.jwks.keys


@pytest.mark.parametrize("overrides,message", [
    ({"auth_mode": "oidc", "jwt_issuer": ""}, "BBI_JWT_ISSUER is not set"),
    ({"auth_mode": "oidc", "jwt_issuer": "https://sso.example/realms/bbi",
      "jwt_algorithm": "HS256"}, "BBI_JWT_ALGORITHM=HS256"),
    ({"auth_mode": "dev", "jwt_algorithm": "HS256", "jwt_secret": ""}, "no default secret"),
    ({"auth_mode": "dev", "jwt_algorithm": "RS256", "jwt_secret": "s" * 40}, "HS256 tokens only"),
    ({"auth_mode": "oidc", "jwt_issuer": "https://sso.example/realms/bbi",
      "jwt_leeway_seconds": 3600}, "LEEWAY"),
    ({"auth_mode": "", "jwt_issuer": ""}, "use oidc or dev"),
])
def test_unusable_auth_settings_refuse_to_start(overrides: dict[str, Any], message: str) -> None:
    s = Settings.from_env("t", database_url="sqlite://", kafka_bootstrap_servers="x",
                          **({"jwt_algorithm": "RS256"} | overrides))
    with pytest.raises(AuthConfigError, match=message):
        check_settings(s)


def test_production_defaults_without_an_issuer_refuse_to_start(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """No BBI_* auth variable at all (a forgotten ConfigMap) is no silent local secret."""
    for name in ("BBI_AUTH_MODE", "BBI_JWT_ALGORITHM", "BBI_JWT_SECRET", "BBI_JWT_ISSUER"):
        monkeypatch.delenv(name, raising=False)
    s = Settings.from_env("t", database_url="sqlite://", kafka_bootstrap_servers="x")
    assert (s.auth_mode, s.jwt_algorithm, s.jwt_secret) == ("oidc", "RS256", "")
    from services.registration.app import create_app

    with pytest.raises(AuthConfigError, match="BBI_JWT_ISSUER is not set"):
        create_app(s)


def test_no_production_module_can_reach_the_development_signer() -> None:
    """devtools (the dev signer, local servers, the `bbi` CLI) and tests (fixtures) are not
    shipped: no module under services/ imports either."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "services"
    offenders = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            if any(n.split(".")[0] in ("devtools", "tests") for n in names):
                offenders.append(str(path.relative_to(root.parent)))
    assert offenders == []
    import services.common.http.auth as auth

    assert not hasattr(auth, "issue_token")


@pytest.mark.parametrize("claim, scope", [
    (None, None), ("32", {"32"}), ("31,32", {"31", "32"}), (["33"], {"33"}),
    ("", {"--"}), ([], {"--"}), ("jabar", {"--"}), (32, {"--"}),
])
def test_province_scope_fails_closed_when_present_but_unusable(claim: Any, scope: Any) -> None:
    claims = {"sub": "kc-op", "realm_access": {"roles": ["operator"]}}
    if claim is not None:
        claims["province_scope"] = claim
    p = Principal(subject="kc-op", roles=frozenset({"operator"}), claims=claims)
    assert p.province_scope == (None if scope is None else frozenset(scope))
