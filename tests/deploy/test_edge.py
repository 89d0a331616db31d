"""The edge (issue 15, finding 6): what deploy puts in front of the services agrees with the
services. Read from the rendered manifests and compose, then applied to the real app:
- the rate limiter trusts exactly the Ingress hop, so each client behind it has its own quota
  and a forged X-Forwarded-For prefix changes nothing;
- body limits agree from the Ingress to the service, and the partner route keeps its promise
  of 10,000 merchants in one batch while every other route stays small."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from bench.partner_bulk import merchant
from services.registration import config as reg_config
from services.registration.partner.api import PARTNER_PATH
from services.registration.partner.handlers import create_partner
from tests.deploy.deploy_helpers import REPO, load_yaml
from tests.deploy.test_k8s import TARGETS, objs
from tests.unit.registration_helpers import issue_token, make_app

PROMISED_ITEMS = 10_000
LIMIT_KEYS = ("BBI_MAX_BODY_BYTES", "REGISTRATION_PARTNER_MAX_BODY_BYTES",
              "REGISTRATION_PARTNER_MAX_ITEMS", "REGISTRATION_TRUSTED_PROXIES")
COMPOSE = load_yaml(REPO / "docker-compose.yml")["services"]  # type: ignore[index]


def nginx_bytes(size: str) -> int:
    """An nginx size ("2m", "512k", "1048576") in bytes."""
    m = re.fullmatch(r"(\d+)([kKmMgG]?)", str(size).strip())
    assert m, size
    return int(m.group(1)) * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[m.group(2).lower()]


def config_map(target: str) -> dict[str, str]:
    return objs(target, "ConfigMap")["bbi-config"]["data"]  # type: ignore[no-any-return]


def routes(target: str) -> dict[str, dict[str, Any]]:
    """API path -> the Ingress that routes it."""
    out = {}
    for ing in objs(target, "Ingress").values():
        for rule in ing["spec"]["rules"]:
            for p in rule["http"]["paths"]:
                if p["path"].startswith("/v1/"):
                    assert p["path"] not in out, f"{p['path']} routed twice"
                    out[p["path"]] = ing
    return out


def promised_partner_body() -> bytes:
    """The documented batch: 10,000 realistic merchants (bench/partner_bulk.py's)."""
    return json.dumps([merchant(i) for i in range(PROMISED_ITEMS)]).encode()


@pytest.mark.parametrize("target", TARGETS)
def test_the_limiter_trusts_exactly_the_ingress_hop(target: str) -> None:
    cm = config_map(target)
    assert cm["REGISTRATION_TRUSTED_PROXIES"] == "1"  # ingress-nginx, and nothing else
    web = objs(target, "Deployment")["registration-web"]["spec"]["template"]["spec"]
    sources = [e["configMapRef"]["name"] for e in web["containers"][0].get("envFrom", [])
               if "configMapRef" in e]
    assert "bbi-config" in sources
    assert routes(target)["/v1/umkm"]["spec"]["ingressClassName"] == "nginx"


def test_compose_has_no_proxy_so_trusts_none() -> None:
    env = COMPOSE["registration-web"]["environment"]
    assert env["REGISTRATION_TRUSTED_PROXIES"] == "0"
    images = " ".join(str(s.get("image", "")) for s in COMPOSE.values())
    assert not re.search(r"nginx|traefik|haproxy|envoy|caddy", images), \
        "a reverse proxy in compose: set REGISTRATION_TRUSTED_PROXIES to its hop count"


@pytest.mark.parametrize("target", TARGETS)
def test_the_certificate_check_counts_each_visitor(target: str) -> None:
    """Training's public certificate check trusts the same one hop, and the portal (behind the
    same Ingress) passes its visitor's address on, so neither is one shared quota."""
    cm = config_map(target)
    assert cm["TRAINING_TRUSTED_PROXIES"] == cm["PORTAL_TRUSTED_PROXIES"] == "1"
    assert routes(target)["/v1/certificates"]["spec"]["ingressClassName"] == "nginx"
    assert COMPOSE["training-web"]["environment"]["TRAINING_TRUSTED_PROXIES"] == "0"
    assert COMPOSE["portal"]["environment"]["PORTAL_TRUSTED_PROXIES"] == "0"


@pytest.mark.parametrize("target", TARGETS)
def test_body_limits_agree_from_the_ingress_to_the_service(target: str) -> None:
    cm = config_map(target)
    general = int(cm["BBI_MAX_BODY_BYTES"])
    partner = int(cm["REGISTRATION_PARTNER_MAX_BODY_BYTES"])
    for path, ing in routes(target).items():
        edge = nginx_bytes(ing["metadata"]["annotations"][
            "nginx.ingress.kubernetes.io/proxy-body-size"])
        service = partner if path == "/v1/partner" else general
        # Nothing the service accepts is refused at the edge, and the service (with problem
        # details) answers bodies up to twice its limit; the edge refuses beyond.
        assert service <= edge <= 2 * service, (path, edge, service)
    # The promise: 10,000 merchants in one batch fit the partner route at every hop...
    assert int(cm["REGISTRATION_PARTNER_MAX_ITEMS"]) == PROMISED_ITEMS
    assert len(promised_partner_body()) <= partner
    partner_ing = routes(target)["/v1/partner"]["metadata"]["annotations"]
    assert int(partner_ing["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 60
    # ...while everything else stays small.
    assert general <= 1024**2 and routes(target)["/v1/umkm"] is not routes(target)["/v1/partner"]


def test_compose_and_the_code_defaults_use_the_same_limits() -> None:
    cm = config_map("base")
    env = COMPOSE["registration-web"]["environment"]
    assert env["REGISTRATION_PARTNER_MAX_BODY_BYTES"] == cm["REGISTRATION_PARTNER_MAX_BODY_BYTES"]
    defaults = reg_config.load_settings()
    assert str(defaults.partner_max_body_bytes) == cm["REGISTRATION_PARTNER_MAX_BODY_BYTES"]
    assert str(defaults.partner_max_items) == cm["REGISTRATION_PARTNER_MAX_ITEMS"]


@pytest.fixture
def deployed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The registration app configured like production (the prod ConfigMap's limits)."""
    cm = config_map("overlays/prod")
    for key in LIMIT_KEYS:
        monkeypatch.setenv(key, cm[key])
    monkeypatch.setenv("REGISTRATION_RATE_LIMIT", "2")
    app, settings = make_app(f"sqlite:///{tmp_path / 'reg.db'}")
    return app, settings, cm


def test_the_service_enforces_the_deployed_limits(deployed: Any) -> None:
    app, settings, cm = deployed
    key = create_partner(app.extensions["bbi_engine"], settings, "mitra", "tokopedia", "Mitra")
    c = app.test_client()
    # The promised size passes the partner route's limit: one merchant too many is refused
    # by the batch rule (422), not by the body limit (413).
    body = promised_partner_body()[:-1] + b"," + json.dumps(merchant(PROMISED_ITEMS)).encode() \
        + b"]"
    r = c.post(PARTNER_PATH, data=body, content_type="application/json",
               headers={"X-API-Key": key})
    assert r.status_code == 422 and r.get_json()["code"] == "batch_too_large"
    over = b"[" + b" " * int(cm["REGISTRATION_PARTNER_MAX_BODY_BYTES"]) + b"]"
    r = c.post(PARTNER_PATH, data=over, content_type="application/json",
               headers={"X-API-Key": key})
    assert r.status_code == 413 and r.mimetype == "application/problem+json"
    # Every other route keeps the small limit (the key makes the body be read up front).
    small = b"{" + b" " * int(cm["BBI_MAX_BODY_BYTES"]) + b"}"
    r = c.post("/v1/umkm", data=small, content_type="application/json",
               headers={"Idempotency-Key": "k-1"})
    assert r.status_code == 413 and r.get_json()["code"] == "payload_too_large"


def test_behind_the_ingress_each_client_has_its_own_quota(deployed: Any) -> None:
    app, settings, _ = deployed
    c = app.test_client()
    ingress = {"REMOTE_ADDR": "10.42.0.7"}  # every request arrives from the controller pod
    owner = {"Authorization": "Bearer " + issue_token(settings, "kc-owner-9", "umkm")}

    def register(xff: str) -> int:
        # ingress-nginx sends the address it saw as X-Forwarded-For (the last entry).
        return c.post("/v1/umkm", json={}, environ_base=ingress,
                      headers=owner | {"X-Forwarded-For": xff}).status_code

    first = [register("203.0.113.7") for _ in range(2)]
    assert 429 not in first
    assert register("203.0.113.7") == 429  # this client used its quota...
    assert register("198.51.100.9") != 429  # ...the next one behind the same Ingress has its own
    assert register("198.51.100.9, 203.0.113.7") == 429  # a forged prefix is not believed
