"""The production configuration of deploy/k8s on loopback: a 3-node KRaft cluster (replication
3, min.insync.replicas 2), PostgreSQL with one database per service, Keycloak as the identity
provider, every service's web (gunicorn) and worker with the ConfigMap's and Secret's variable
NAMES and the Deployments' env, and nginx generated from the Ingress in front.

Only the values that name a place change (brokers, databases, the issuer: all on loopback);
the Secret's values are made up here. `python -m tests.prodlike.stack` (what
`make run-prodlike` runs) starts it all and prints where things are."""
from __future__ import annotations

import os
import secrets
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from devtools import ingress_nginx, local_kafka_cluster
from devtools.local_postgres import create_database
from services.common.db.migrations import upgrade
from services.common.messaging import contracts, topics
from tests.e2e.stack import Stack, free_port

K8S = ingress_nginx.K8S_BASE
# The Secret's keys that are not a database URL get made-up secrets; these are the ones a
# service reads (the rest belong to processes this stack does not run, e.g. the portal).
PLACES = ("KAFKA_BOOTSTRAP_SERVERS", "BBI_JWT_ISSUER")


def _docs(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((K8S / name).read_text()) if isinstance(d, dict)]


def configmap() -> dict[str, str]:
    [cm] = [d for d in _docs("configmap.yaml") if d["kind"] == "ConfigMap"]
    return {k: str(v) for k, v in cm["data"].items()}


def secret_keys() -> list[str]:
    [sec] = [d for d in _docs("secret.example.yaml") if d["kind"] == "Secret"]
    return sorted(sec.get("stringData", {}))


def deployment_env(service: str, component: str) -> dict[str, str]:
    """The literal `env` of a service's web or worker container in its manifest."""
    for d in _docs(f"{service}.yaml"):
        if d["kind"] == "Deployment" and d["metadata"]["name"] == f"{service}-{component}":
            env = d["spec"]["template"]["spec"]["containers"][0].get("env", [])
            return {e["name"]: str(e["value"]) for e in env if "value" in e}
    raise KeyError(f"{service}-{component}")


@dataclass
class ProdlikeStack(Stack):
    cluster: Any = None
    keycloak: Any = None
    nginx: Any = None
    ingress_port: int = 0
    skipped_routes: list[str] = field(default_factory=list)

    @property
    def ingress(self) -> str:
        return f"http://127.0.0.1:{self.ingress_port}"

    def start(self) -> None:
        from devtools.keycloak_for_tests import oidc_env

        self.workdir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, PYTHONUNBUFFERED="1", **configmap())
        env.update(KAFKA_BOOTSTRAP_SERVERS=self.cluster.bootstrap, BBI_TOPIC_PREFIX=self.prefix)
        env.update(oidc_env(self.keycloak))
        for key in secret_keys():
            if not key.endswith("_DATABASE_URL"):
                env[key] = secrets.token_urlsafe(32)
        for s in self.services:
            url = create_database(self.pg_base, f"prod_{self.prefix.strip('.') or 'x'}_{s}")
            upgrade(s, url)
            env[f"{s.upper()}_DATABASE_URL"] = url
        env.update(self.extra_env)
        self.env = env
        replication = int(env["BBI_TOPIC_REPLICATION"])
        topics.ensure_topics(
            self.cluster.bootstrap,
            {self.prefix + t: c | {"min.insync.replicas": "2"} for t, c in
             contracts.TOPIC_CONFIGS.items()},
            partitions=int(env["BBI_TOPIC_PARTITIONS"]), replication=replication)
        for s in self.services:
            self.web_ports[s] = free_port()
            self.worker_ports[s] = free_port()
            self.start_web(s)
            self.start_worker(s)
        for s in self.services:
            self.wait_ready(s)
        self.start_ingress()

    def start_web(self, s: str) -> None:
        self._spawn(f"{s}_web", ["bash", "deploy/bin/web", s],
                    deployment_env(s, "web") | {
                        "PORT": str(self.web_ports[s]),
                        "PROMETHEUS_MULTIPROC_DIR": str(self.workdir / f"prom-{s}")})

    def start_worker(self, s: str, name: str = "", metrics_port: int = 0) -> None:
        self._spawn(name or f"{s}_worker", [sys.executable, "-m", f"services.{s}.worker"],
                    deployment_env(s, "worker") | {
                        "WORKER_METRICS_PORT": str(metrics_port or self.worker_ports[s])})

    def start_ingress(self) -> None:
        ingresses = ingress_nginx.load_ingresses()
        upstreams = {f"{s}-web": self.web_ports[s] for s in self.services}
        kept = []
        for ing in ingresses:  # routes to processes this stack does not run (the portal)
            for rule in ing["spec"]["rules"]:
                paths = rule["http"]["paths"]
                self.skipped_routes += [f"{rule.get('host')}{p['path']}" for p in paths
                                        if p["backend"]["service"]["name"] not in upstreams]
                rule["http"]["paths"] = [p for p in paths
                                         if p["backend"]["service"]["name"] in upstreams]
            if any(r["http"]["paths"] for r in ing["spec"]["rules"]):
                ing["spec"]["rules"] = [r for r in ing["spec"]["rules"] if r["http"]["paths"]]
                kept.append(ing)
        self.ingress_port = self.ingress_port or free_port()
        self.nginx = ingress_nginx.start(upstreams, self.ingress_port, self.workdir / "nginx",
                                         kept)

    def stop(self) -> None:
        if self.nginx is not None:
            self.nginx.stop()
        super().stop()


API_HOST = "api.bbi.example.go.id"


def main() -> None:
    """Start everything in the foreground; Ctrl-C stops it all."""
    import signal
    import time

    from devtools import testing_infra
    from devtools.keycloak_for_tests import keycloak_for_tests

    var = Path(__file__).resolve().parents[2] / "var" / "prodlike-run"
    shutil.rmtree(var, ignore_errors=True)
    cluster = local_kafka_cluster.start(var / "kafka")
    stack = None
    try:
        stack = ProdlikeStack(kafka=cluster.bootstrap, pg_base=testing_infra.postgres_for_tests(),
                              workdir=var / "processes", prefix="", cluster=cluster,
                              keycloak=keycloak_for_tests(),
                              ingress_port=int(os.environ.get("INGRESS_PORT", "8080")))
        stack.start()
        print(f"\n  ingress   {stack.ingress}  (Host: {API_HOST})\n"
              f"  kafka     {cluster.bootstrap}  (3 nodes, replication 3, min ISR 2)\n"
              f"  keycloak  {stack.keycloak.issuer}\n"
              f"  try: curl -H 'Host: {API_HOST}' {stack.ingress}/v1/reference/provinces\n"
              f"  not routed here (no such process): {', '.join(stack.skipped_routes) or '-'}"
              "\n  Ctrl-C stops everything.\n", flush=True)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        if stack is not None:
            stack.stop()
        cluster.stop()


if __name__ == "__main__":
    main()
