"""Regression: the production configuration, run for real. Public registration under the
auth environment of deploy/k8s/overlays/prod used to commit the row and answer 500 (the
service tried to sign an owner token with a key it did not have), then 409 on retry.

The registration web process (deploy/bin/web, gunicorn) runs with exactly the prod overlay's
ConfigMap, rendered by kustomize, and nothing from the test's environment; the only change
is the issuer's address, pointed at the test Keycloak. A person signed in at Keycloak
registers a business: 201, no token in the answer."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devtools.local_kafka import free_port
from devtools.local_keycloak import LocalKeycloak
from services.common.db.migrations import upgrade
from tests.deploy.deploy_helpers import DEPLOY, REPO, kustomize
from tests.integration.keycloak_helpers import bearer, token
from tests.unit.registration_helpers import payload

AUTH_PREFIXES = ("BBI_AUTH_", "BBI_JWT_", "BBI_JWKS_")


def prod_config() -> dict[str, str]:
    rendered = kustomize(DEPLOY / "k8s" / "overlays" / "prod")
    (cm,) = [d for d in rendered if d["kind"] == "ConfigMap"
             and d["metadata"]["name"].startswith("bbi-config")]
    return {k: str(v) for k, v in cm["data"].items()}


@pytest.fixture
def prod_registration(keycloak: LocalKeycloak, pg_url: str,
                      tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    config = prod_config()
    auth = {k: v for k, v in config.items() if k.startswith(AUTH_PREFIXES)}
    # What production trusts: an identity provider's RS256 tokens, no secret, no dev mode.
    assert auth["BBI_JWT_ALGORITHM"] == "RS256" and auth.get("BBI_AUTH_MODE", "oidc") == "oidc"
    assert "BBI_JWT_SECRET" not in config and auth["BBI_JWT_ISSUER"].startswith("https://")
    env = dict(config, BBI_JWT_ISSUER=keycloak.issuer)
    upgrade("registration", pg_url)
    port = free_port()
    env |= {  # the Secret's keys (prod creates it out of band) and the process's own
        "REGISTRATION_DATABASE_URL": pg_url, "BBI_PII_HASH_KEY": "prod-config-test-" + "k" * 24,
        "PORT": str(port), "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom"),
        "GUNICORN_WORKERS": "1", "GUNICORN_THREADS": "2",
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(tmp_path),
    }
    log = (tmp_path / "web.log").open("ab")
    proc = subprocess.Popen(["bash", str(DEPLOY / "bin" / "web"), "registration"], cwd=REPO,
                            env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, (tmp_path / "web.log").read_text()[-3000:]
            try:
                if httpx.get(base + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "web.log").read_text()[-3000:]
            time.sleep(0.2)
        yield base, auth
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)


@pytest.mark.postgres
def test_public_registration_answers_201_under_the_production_auth_configuration(
        keycloak: LocalKeycloak, prod_registration: tuple[str, dict[str, str]]) -> None:
    base, _ = prod_registration
    body = payload(int(uuid.uuid4().int % 9000) + 1000)
    anonymous = httpx.post(base + "/v1/umkm", json=body, timeout=30)
    assert anonymous.status_code == 401, anonymous.text
    owner = bearer(token(keycloak, "owner2@bbi.test"))
    created = httpx.post(base + "/v1/umkm", json=body, headers=owner, timeout=30)
    assert created.status_code == 201, created.text
    answer = created.json()
    assert "access_token" not in answer and answer["status"] == "registered"
    # The owner (a person, signed in again later) reads it back with a fresh token.
    again = httpx.get(f"{base}/v1/umkm/{answer['id']}", timeout=30,
                      headers=bearer(token(keycloak, "owner2@bbi.test")))
    assert again.status_code == 200, again.text
    # The documents point Swagger UI at the identity provider.
    scheme = httpx.get(base + "/openapi.json", timeout=30).json()["components"][
        "securitySchemes"]["bearerAuth"]
    assert scheme["openIdConnectUrl"] == keycloak.issuer + "/.well-known/openid-configuration"
