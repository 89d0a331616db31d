"""The identity provider for a test process: one Keycloak per process, started on first use
on free loopback ports from the template instance, stopped and deleted at exit.

BBI_TEST_KEYCLOAK=<data dir> attaches to a Keycloak already running there instead (e.g. one
left up by `bbi keycloak start --data-dir ...` while iterating on tests).
"""
from __future__ import annotations

import atexit
import json
import os
import shutil
from pathlib import Path
from typing import Any

from devtools import local_keycloak, testing_infra
from devtools.local_kafka import free_port
from devtools.local_keycloak import LocalKeycloak

_cache: dict[str, LocalKeycloak] = {}


def keycloak_for_tests() -> LocalKeycloak:
    if "kc" in _cache:
        return _cache["kc"]
    if env := os.environ.get("BBI_TEST_KEYCLOAK"):
        _cache["kc"] = attach(Path(env))
        return _cache["kc"]
    data_dir = local_keycloak.REPO_ROOT / "var" / f"test-keycloak-{os.getpid()}"
    shutil.rmtree(data_dir, ignore_errors=True)
    try:
        kc = local_keycloak.start(port=free_port(), data_dir=data_dir)
    except Exception as exc:
        shutil.rmtree(data_dir, ignore_errors=True)
        raise testing_infra._unavailable("Keycloak", exc) from exc
    atexit.register(testing_infra._cleanup, lambda: kc.stop(timeout=20), data_dir)
    _cache["kc"] = kc
    return kc


def attach(data_dir: Path) -> LocalKeycloak:
    """The Keycloak running on data_dir (started by someone else; never stopped by us)."""
    data_dir = data_dir.resolve()
    pid = local_keycloak.running(data_dir)
    if pid is None:
        raise RuntimeError(f"BBI_TEST_KEYCLOAK={data_dir}: no Keycloak runs there")
    state: dict[str, Any] = json.loads((data_dir / "local-keycloak.json").read_text())
    return LocalKeycloak(state["port"], state["management_port"], state["smtp_port"], data_dir,
                         pid, state["admin_password"])


def test_users() -> dict[str, dict[str, Any]]:
    """The dev realm's users by username: realm roles, attributes and password."""
    out = {}
    for f in local_keycloak.realm_files():
        for u in json.loads(f.read_text()).get("users", []):
            password = next(c["value"] for c in u.get("credentials", [])
                            if c.get("type") == "password")
            out[u["username"]] = {"roles": u.get("realmRoles", []), "password": password,
                                  "attributes": {k: v[0] for k, v in
                                                 u.get("attributes", {}).items()}}
    return out


def oidc_env(kc: LocalKeycloak, **extra: str) -> dict[str, str]:
    """Auth environment of a service that trusts this Keycloak (production mode)."""
    return {"BBI_AUTH_MODE": "oidc", "BBI_JWT_ALGORITHM": "RS256", "BBI_JWT_ISSUER": kc.issuer,
            "BBI_JWT_AUDIENCE": "bbi", "BBI_JWT_SECRET": "", **extra}
