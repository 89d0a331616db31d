"""The auth matrix of test_auth_matrix.py again, on the real identity provider's tokens: each
service verifies Keycloak's RS256 tokens (production settings), and every protected route
lets in exactly the roles written down in ALLOWED, signed in as the dev realm's users
through the token endpoint; forged tokens signed with a key Keycloak publishes are refused."""
from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import pytest

from devtools.local_keycloak import LocalKeycloak
from services.common.http.auth import TokenVerifier
from tests.integration.keycloak_helpers import (
    Forger,
    bearer,
    hs256_with_public_key,
    oidc_settings,
    token,
)
from tests.security.apps import SERVICES, build
from tests.security.test_auth_matrix import (
    ALLOWED,
    RESULTS,
    assert_problem,
    call,
    routes,
    url,
)

USERS = {"umkm": "owner1@bbi.test", "official": "official1@bbi.test",
         "operator": "operator1@bbi.test", "admin": "admin1@bbi.test"}


@pytest.fixture(scope="module")
def forger(keycloak: LocalKeycloak) -> Forger:
    return Forger(keycloak)


@pytest.mark.parametrize("service", SERVICES)
def test_every_protected_route_on_keycloak_tokens(service: str, tmp_path: Path,
                                                  keycloak: LocalKeycloak,
                                                  forger: Forger) -> None:
    s = oidc_settings(keycloak, service, f"sqlite:///{tmp_path / 'db.sqlite'}")
    app, _ = build(service, s.database_url, **{k: getattr(s, k) for k in (
        "auth_mode", "jwt_algorithm", "jwt_secret", "jwt_issuer", "jwt_audience",
        "jwks_min_refresh_seconds")})
    client = app.test_client()
    verifier = TokenVerifier(s)
    signed_in = {role: token(keycloak, user) for role, user in USERS.items()}
    subjects = {role: verifier.verify(t).subject for role, t in signed_in.items()}
    now = int(time.time())
    forged = {
        "expired": forger.sign(iat=now - 900, exp=now - 600),
        "not_yet_valid": forger.sign(nbf=now + 600),
        "wrong_issuer": forger.sign(iss="https://sso.example.go.id/realms/other"),
        "wrong_audience": forger.sign(aud="account"),
        "hs256_public_key": hs256_with_public_key(keycloak, {
            "sub": "x", "iss": keycloak.issuer, "aud": "bbi", "iat": now, "exp": now + 300,
            "realm_access": {"roles": ["admin"]}}),
    }
    # That every route is declared is test_auth_matrix's job; here, each declared one.
    protected = [r for r in routes(app) if r in ALLOWED[service]]
    assert protected or not ALLOWED[service]
    tally: Counter[str] = Counter()
    for method, rule in protected:
        path = url(rule)
        for name, bad in forged.items():
            assert_problem(call(client, method, path, bearer(bad)), 401, f"{rule} {name}")
            tally[name] += 1
        # Signed, but holding none of our roles: authenticated, not authorised.
        no_role = forger.sign(realm_access={"roles": ["offline_access"]})
        assert_problem(call(client, method, path, bearer(no_role)), 403, f"{rule} no role")
        for role, tok in signed_in.items():
            own = url(rule, subjects[role]) if role == "umkm" and "umkm_id" in rule else path
            resp = call(client, method, own, bearer(tok))
            if role in ALLOWED[service][(method, rule)]:
                assert resp.status_code not in (401, 403), (method, rule, role,
                                                            resp.get_data(as_text=True)[:300])
                tally["allowed_role"] += 1
            else:
                assert_problem(resp, 403, f"{method} {rule} as {role}")
                tally["wrong_role"] += 1
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{service}.keycloak.json").write_text(json.dumps({
        "service": service, "protected": len(protected), "forged_variants": len(forged) + 1,
        "roles": len(signed_in), "checks": sum(tally.values()), "by_variant": dict(tally)},
        indent=1))
