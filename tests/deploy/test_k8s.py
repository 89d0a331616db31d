"""Kubernetes manifests: every overlay renders, core resources validate against the Kubernetes
schemas, and the rendered objects keep the promises of DESIGN.md (non-root, probes, one relay
per service, least-privilege network, Strimzi durability) and match compose/Prometheus/Grafana."""

from __future__ import annotations

import json
import subprocess
import sys
from functools import cache
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from devtools import registry
from services.common.messaging.contracts import TOPIC_CONFIGS
from tests.deploy.deploy_helpers import (
    DEPLOY,
    PROCESS_ENV,
    SERVICES,
    env_names_read_by_code,
    kustomize,
)

K8S = DEPLOY / "k8s"
OVERLAYS = sorted(p.name for p in (K8S / "overlays").iterdir() if p.is_dir())
TARGETS = ["base"] + [f"overlays/{o}" for o in OVERLAYS]
K8S_VERSION = "1.32.0"  # the kubectl shipped with the dev image; schemas vendored by the package
CRD_GROUPS = ("kafka.strimzi.io/", "monitoring.coreos.com/")


@cache
def rendered(target: str) -> tuple[dict, ...]:
    return tuple(kustomize(K8S / target))


def objs(target: str, kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in rendered(target) if o["kind"] == kind}


def test_overlays_exist() -> None:
    assert {"dev", "prod"} <= set(OVERLAYS)


@pytest.mark.parametrize("target", TARGETS)
def test_renders_and_core_resources_validate(target: str) -> None:
    docs = rendered(target)
    assert docs
    for o in docs:
        if o["apiVersion"].startswith(CRD_GROUPS):
            continue  # CRDs: checked structurally below
        try:
            kubernetes_validate.validate(o, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as e:
            pytest.fail(f"{o['kind']}/{o['metadata']['name']}: {e.message} at {list(e.path)}")


def test_validator_is_not_vacuous() -> None:
    bad = json.loads(json.dumps(objs("base", "Deployment")["registration-web"]))
    bad["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSION, strict=True)


@pytest.mark.parametrize("target", TARGETS)
def test_every_service_has_its_objects(target: str) -> None:
    deps = objs(target, "Deployment")
    svcs, hpas = objs(target, "Service"), objs(target, "HorizontalPodAutoscaler")
    pdbs, nps = objs(target, "PodDisruptionBudget"), objs(target, "NetworkPolicy")
    for s in SERVICES:
        assert {f"{s}-web", f"{s}-worker"} <= set(deps)
        assert svcs[f"{s}-web"]["spec"]["ports"][0]["port"] == registry.WEB_PORTS[s]
        assert (
            svcs[f"{s}-worker-metrics"]["spec"]["ports"][0]["port"]
            == registry.WORKER_METRICS_PORTS[s]
        )
        assert hpas[f"{s}-web"]["spec"]["scaleTargetRef"]["name"] == f"{s}-web"
        assert f"{s}-web" in pdbs and {f"{s}-web", f"{s}-worker"} <= set(nps)
    assert "bbi-migrate" in objs(target, "Job")


@pytest.mark.parametrize("target", TARGETS)
def test_pods_are_hardened_and_probed(target: str) -> None:
    pods = [(n, d["spec"]["template"]["spec"]) for n, d in objs(target, "Deployment").items()]
    pods += [(n, j["spec"]["template"]["spec"]) for n, j in objs(target, "Job").items()]
    for name, pod in pods:
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] == 10001, name
        mounts = {}
        for c in pod["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"]["drop"] == ["ALL"]
            assert c["resources"]["requests"]["memory"] and c["resources"]["limits"]["memory"]
            mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
            assert "/tmp" in mounts, name
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        assert all("emptyDir" in volumes[v] for v in mounts.values()), name
        if name.endswith("-web"):
            c = pod["containers"][0]
            assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
            assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
            env = {e["name"]: e["value"] for e in c["env"]}
            assert env["PROMETHEUS_MULTIPROC_DIR"] in mounts  # its own emptyDir
            service = name.removesuffix("-web")
            assert c["args"] == ["deploy/bin/web", service]
            assert env["PORT"] == str(registry.WEB_PORTS[service])


@pytest.mark.parametrize("target", TARGETS)
def test_one_relay_per_service(target: str) -> None:
    """Workers: exactly one replica and Recreate, so two outbox relays never overlap."""
    for s in SERVICES:
        w = objs(target, "Deployment")[f"{s}-worker"]
        assert w["spec"]["replicas"] == 1 and w["spec"]["strategy"]["type"] == "Recreate"
        c = w["spec"]["template"]["spec"]["containers"][0]
        assert c["args"] == ["python", "-m", f"services.{s}.worker"]
        env = {e["name"]: e["value"] for e in c["env"]}
        assert env["WORKER_METRICS_PORT"] == str(registry.WORKER_METRICS_PORTS[s])
    assert not any(
        h["spec"]["scaleTargetRef"]["name"].endswith("-worker")
        for h in objs(target, "HorizontalPodAutoscaler").values()
    )


@pytest.mark.parametrize("target", TARGETS)
def test_only_workers_may_reach_kafka(target: str) -> None:
    for name, d in objs(target, "Deployment").items():
        labels = d["spec"]["template"]["metadata"]["labels"]
        assert (labels.get("bbi.go.id/kafka-client") == "true") == name.endswith("-worker"), name
    nps = objs(target, "NetworkPolicy")
    assert nps["default-deny"]["spec"]["policyTypes"] == ["Ingress", "Egress"]
    kafka_egress = nps["kafka-egress"]["spec"]
    assert kafka_egress["podSelector"]["matchLabels"] == {"bbi.go.id/kafka-client": "true"}
    for s in SERVICES:  # web: reachable from the ingress controller and Prometheus only
        sources = [
            f["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
            for rule in nps[f"{s}-web"]["spec"]["ingress"]
            for f in rule["from"]
        ]
        assert sorted(sources) == ["ingress-nginx", "monitoring"]


@pytest.mark.parametrize("target", TARGETS)
def test_config_and_secret_keys_are_read_by_the_code(target: str) -> None:
    known = env_names_read_by_code() | PROCESS_ENV
    cm = objs(target, "ConfigMap")["bbi-config"]["data"]
    assert set(cm) <= known, set(cm) - known
    for secret in objs(target, "Secret").values():
        assert set(secret.get("stringData", {})) <= known
        for v in secret.get("stringData", {}).values():
            assert "CHANGE-ME" in v  # an example, never a real secret
    for d in objs(target, "Deployment").values():
        for c in d["spec"]["template"]["spec"]["containers"]:
            assert {e["name"] for e in c.get("env", [])} <= known


def test_prod_ships_no_example_secret_and_dev_does() -> None:
    assert "bbi-secrets" not in objs("overlays/prod", "Secret")
    assert "bbi-secrets" in objs("overlays/dev", "Secret")


def api_paths(target: str = "base") -> list[dict]:
    """The API host's paths over every Ingress (the partner route has its own, for its body
    limit: tests/deploy/test_edge.py)."""
    out = []
    for ing in objs(target, "Ingress").values():
        assert ing["metadata"]["annotations"]["cert-manager.io/cluster-issuer"]
        for rule in ing["spec"]["rules"]:
            assert rule["host"] in ing["spec"]["tls"][0]["hosts"]
            if rule["host"] == objs(target, "Ingress")["bbi"]["spec"]["rules"][0]["host"]:
                out += rule["http"]["paths"]
    return out


def test_ingress_routes_public_paths_to_their_service() -> None:
    routes = {p["path"]: p["backend"]["service"]["name"] for p in api_paths()}
    expected = {
        "/v1/umkm": "registration-web",
        "/v1/partner": "registration-web",
        "/v1/reference": "registration-web",
        "/v1/courses": "training-web",
        "/v1/sessions": "training-web",
        "/v1/campaigns": "campaign-web",
        "/v1/summary": "metrics-web",
        "/v1/provinces": "metrics-web",
    }
    assert expected.items() <= routes.items()
    assert not any(p in routes for p in ("/metrics", "/healthz", "/readyz", "/"))


def _app_routes(service: str) -> set[str]:
    code = (
        f"from services.{service}.app import create_app\n"
        "import json; app = create_app()\n"
        "print(json.dumps(sorted({r.rule for r in app.url_map.iter_rules()})))"
    )
    env = {
        "PYTHONPATH": str(DEPLOY.parent),
        "PATH": "/usr/bin:/bin",
        f"{service.upper()}_DATABASE_URL": "sqlite://",
        "BBI_JWT_ISSUER": "https://sso.example.go.id/realms/bbi",  # no issuer: refuses to start
    }
    res = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        cwd=DEPLOY.parent,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    return set(json.loads(res.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("service", SERVICES)
def test_every_public_route_of_an_existing_app_is_routed_by_the_ingress(service: str) -> None:
    paths = api_paths()
    mine = [p["path"] for p in paths if p["backend"]["service"]["name"] == f"{service}-web"]
    others = [p["path"] for p in paths if p["backend"]["service"]["name"] != f"{service}-web"]
    for route in _app_routes(service):
        if not route.startswith("/v1/"):
            continue
        covered = [p for p in mine if route == p or route.startswith(p + "/")]
        stolen = [p for p in others if route == p or route.startswith(p + "/")]
        assert covered, f"{service} route {route} is not exposed by the Ingress"
        assert not stolen, f"{route} would be sent to another service via {stolen}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_strimzi_cluster_and_topics(overlay: str) -> None:
    target = f"overlays/{overlay}"
    kafka = objs(target, "Kafka")["bbi"]["spec"]["kafka"]
    pool = objs(target, "KafkaNodePool")["dual-role"]["spec"]
    topics = {t["spec"]["topicName"]: t["spec"] for t in objs(target, "KafkaTopic").values()}
    assert set(topics) == set(TOPIC_CONFIGS)
    for name, spec in topics.items():
        assert str(spec["config"]["retention.ms"]) == TOPIC_CONFIGS[name]["retention.ms"]
        assert spec["replicas"] == pool["replicas"]
    assert kafka["config"]["auto.create.topics.enable"] is False
    listener = kafka["listeners"][0]
    assert listener["port"] == 9092
    peers = listener["networkPolicyPeers"][0]["podSelector"]["matchLabels"]
    assert peers == {"bbi.go.id/kafka-client": "true"}
    bootstrap = objs(target, "ConfigMap")["bbi-config"]["data"]["KAFKA_BOOTSTRAP_SERVERS"]
    assert bootstrap == f"{objs(target, 'Kafka')['bbi']['metadata']['name']}-kafka-bootstrap:9092"
    if overlay == "prod":  # DESIGN §3: replication 3, min.insync.replicas 2
        assert pool["replicas"] == 3 and set(pool["roles"]) == {"controller", "broker"}
        assert kafka["config"]["min.insync.replicas"] == 2
        assert kafka["config"]["default.replication.factor"] == 3
        assert all(t["config"]["min.insync.replicas"] == 2 for t in topics.values())
        assert objs(target, "ConfigMap")["bbi-config"]["data"]["BBI_TOPIC_REPLICATION"] == "3"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_monitoring_is_the_same_as_compose(overlay: str) -> None:
    """PrometheusRule = alerts.yml; dashboards ConfigMap = deploy/grafana/dashboards (bytes)."""
    target = f"overlays/{overlay}"
    rule = objs(target, "PrometheusRule")["bbi-alerts"]
    assert (
        rule["spec"]["groups"]
        == yaml.safe_load((DEPLOY / "prometheus/alerts.yml").read_text())["groups"]
    )
    cm = objs(target, "ConfigMap")["bbi-grafana-dashboards"]
    files = {p.name: p.read_text() for p in (DEPLOY / "grafana/dashboards").glob("*.json")}
    assert cm["data"] == files
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    jobs = {
        m["spec"]["selector"]["matchLabels"]["bbi.go.id/job"]
        for m in objs(target, "ServiceMonitor").values()
    }
    scrape = yaml.safe_load((DEPLOY / "prometheus/prometheus.yml").read_text())
    assert jobs == {j["job_name"] for j in scrape["scrape_configs"]} - {"prometheus"}
    for m in objs(target, "ServiceMonitor").values():
        assert all(e["honorLabels"] for e in m["spec"]["endpoints"])  # keep the metrics' `service`
    # Every web Service is scraped, the portal's too, on the port its ServiceMonitor names.
    web = objs(target, "ServiceMonitor")["bbi-web"]["spec"]
    for name in [f"{s}-web" for s in registry.SERVICES] + ["portal-web"]:
        svc = objs(target, "Service")[name]
        assert svc["metadata"]["labels"].get("bbi.go.id/job") == "bbi-web", name
        assert web["endpoints"][0]["port"] in {p["name"] for p in svc["spec"]["ports"]}, name


def test_generated_prometheusrule_is_up_to_date() -> None:
    res = subprocess.run([sys.executable, str(DEPLOY / "bin/gen-k8s-monitoring"), "--check"])
    assert res.returncode == 0, "run deploy/bin/gen-k8s-monitoring after editing alerts.yml"


def test_images_are_pinned_in_prod() -> None:
    for d in objs("overlays/prod", "Deployment").values():
        image = d["spec"]["template"]["spec"]["containers"][0]["image"]
        assert ":" in image and not image.endswith(":latest"), image


def test_namespace_is_restricted(tmp_path: Path) -> None:
    ns = next(iter(objs("base", "Namespace").values()))
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
