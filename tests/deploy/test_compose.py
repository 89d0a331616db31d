"""docker-compose.yml: valid against the Compose specification, starts in dependency order, and
runs exactly what the local run (Procfile) runs with env var names the code actually reads."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import jsonschema
import pytest

from devtools import registry
from tests.deploy.deploy_helpers import (
    DEPLOY,
    PROCESS_ENV,
    REPO,
    SERVICES,
    env_names_read_by_code,
    load_yaml,
)

COMPOSE = load_yaml(REPO / "docker-compose.yml")
SVC = COMPOSE["services"]  # type: ignore[index]


def _cmd(value: object) -> list[str]:
    return list(value) if isinstance(value, list) else shlex.split(str(value))


def test_validates_against_the_compose_spec() -> None:
    # tests/deploy/compose-spec.json: the Compose specification schema as vendored by
    # check-jsonschema (compose-spec/compose-spec, Apache-2.0; see compose-spec.LICENSE).
    schema = json.loads((REPO / "tests/deploy/compose-spec.json").read_text())
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(COMPOSE), key=str)
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_schema_rejects_a_broken_file() -> None:
    """Guard against a vacuous schema: a wrong depends_on condition must not validate."""
    schema = json.loads((REPO / "tests/deploy/compose-spec.json").read_text())
    broken = json.loads(json.dumps(COMPOSE))
    broken["services"]["init"]["depends_on"]["kafka"]["condition"] = "service_ready"
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(broken))


def test_infrastructure_images() -> None:
    assert SVC["kafka"]["image"] == "apache/kafka:4.1.1"
    assert SVC["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft
    assert SVC["postgres"]["image"].startswith("postgres:15")
    mounts = " ".join(SVC["postgres"]["volumes"])
    assert "./deploy/postgres/init-databases.sh:/docker-entrypoint-initdb.d/" in mounts
    script = (DEPLOY / "postgres/init-databases.sh").read_text()
    assert re.search(r"for service in (.+); do", script).group(1).split() == list(SERVICES)


@pytest.mark.parametrize("service", SERVICES)
def test_web_and_worker_per_service(service: str) -> None:
    web, worker = SVC[f"{service}-web"], SVC[f"{service}-worker"]
    web_port, metrics_port = (
        registry.WEB_PORTS[service],
        registry.WORKER_METRICS_PORTS[service],
    )
    assert _cmd(web["command"]) == ["deploy/bin/web", service]
    assert web["environment"]["PORT"] == str(web_port)
    assert web["environment"]["PROMETHEUS_MULTIPROC_DIR"]
    assert f"{web_port}:{web_port}" in web["ports"]
    assert "/readyz" in " ".join(web["healthcheck"]["test"])
    assert _cmd(worker["command"]) == ["python", "-m", f"services.{service}.worker"]
    assert worker["environment"]["WORKER_METRICS_PORT"] == str(metrics_port)
    assert f"{metrics_port}:{metrics_port}" in worker["ports"]
    for proc in (web, worker):
        assert proc["image"] == "bbi:latest" and proc["build"]["dockerfile"] == "Dockerfile"
        assert proc["user"] == "10001:10001" and proc["read_only"] is True
        assert proc["environment"][f"{service.upper()}_DATABASE_URL"].endswith(f"/{service}")
        assert proc["depends_on"]["init"]["condition"] == "service_completed_successfully"
        assert proc["depends_on"]["kafka"]["condition"] == "service_healthy"
        assert proc["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_init_job_creates_topics_and_migrates_after_infrastructure() -> None:
    init = SVC["init"]
    cmd = " ".join(_cmd(init["command"]))
    assert "python -m services.common.messaging.topics" in cmd
    assert "python -m services.common.db.migrations registration training campaign metrics" in cmd
    assert init["restart"] == "no"
    assert {k: v["condition"] for k, v in init["depends_on"].items()} == {
        "postgres": "service_healthy",
        "kafka": "service_healthy",
    }


def test_every_long_running_service_has_a_healthcheck_and_named_volumes() -> None:
    for name, svc in SVC.items():
        if name != "init":
            assert "healthcheck" in svc, name
    declared = set(COMPOSE["volumes"])
    for svc in SVC.values():
        for v in svc.get("volumes", []):
            src = v.split(":")[0]
            if not src.startswith("."):
                assert src in declared, src
    assert {"postgres-data", "kafka-data", "prometheus-data", "grafana-data"} <= declared


def test_monitoring_is_provisioned_from_deploy() -> None:
    prom, graf = SVC["prometheus"], SVC["grafana"]
    assert "./deploy/prometheus:/etc/prometheus:ro" in prom["volumes"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in prom["command"]
    assert "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro" in graf["volumes"]
    assert "./deploy/grafana/dashboards:/etc/grafana/dashboards:ro" in graf["volumes"]
    assert graf["depends_on"]["prometheus"]["condition"] == "service_healthy"
    # The scrape targets are these compose services.
    scrape = load_yaml(DEPLOY / "prometheus/prometheus.yml")
    hosts = {
        t.split(":")[0]
        for j in scrape["scrape_configs"]
        for sc in j["static_configs"]
        for t in sc["targets"]
    } - {"localhost"}
    assert hosts <= set(SVC)


def test_env_var_names_are_read_by_the_code() -> None:
    """A misspelt variable would silently fall back to a default: every BBI/app variable set
    in compose must be one that services/ (or the start script / worker convention) reads."""
    known = env_names_read_by_code() | PROCESS_ENV
    for name in [f"{s}-{k}" for s in SERVICES for k in ("web", "worker")] + ["init"]:
        unknown = set(SVC[name]["environment"]) - known
        assert not unknown, f"{name}: {unknown}"


def _procfile() -> dict[str, str]:
    path = REPO / "Procfile"
    if not path.exists():
        pytest.skip("Procfile not written yet")
    out = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, cmd = line.split(":", 1)
            out[name.strip()] = cmd.strip()
    return out


@pytest.mark.parametrize("service", SERVICES)
def test_compose_runs_what_the_procfile_runs(service: str) -> None:
    """Same command, same port variable, same value, with only the venv path differing."""
    procs = _procfile()
    for kind in ("web", "worker"):
        words = shlex.split(procs[f"{service}_{kind}"])
        env = dict(w.split("=", 1) for w in words if re.fullmatch(r"[A-Z_]+=.*", w))
        argv = [w for w in words if not re.fullmatch(r"[A-Z_]+=.*", w)]
        argv[0] = argv[0].removeprefix(".venv/bin/")
        svc = SVC[f"{service}-{kind}"]
        assert argv == _cmd(svc["command"]), kind
        for key, value in env.items():
            assert svc["environment"][key] == value, (kind, key)


@pytest.mark.postgres
def test_postgres_init_script_creates_one_database_and_role_per_service() -> None:
    """Run deploy/postgres/init-databases.sh the way the postgres image does, on a throwaway
    cluster, then log in as each service's role to its own database."""
    import os
    import socket
    import subprocess

    import sqlalchemy as sa

    from devtools import local_postgres
    from devtools.testing_infra import on_ci

    try:
        bin_dir = local_postgres.find_bin_dir()
    except Exception as exc:  # noqa: BLE001 - any reason PostgreSQL is missing
        if on_ci():
            pytest.fail(f"PostgreSQL is required on CI: {exc}")
        pytest.skip(f"PostgreSQL not installed: {exc}")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    import shutil
    import tempfile

    # The server runs as the postgres user: its data dir must not sit under pytest's tmp_path.
    data_dir = Path(tempfile.mkdtemp(prefix="bbi-pginit-", dir="/var/tmp"))
    data_dir.chmod(0o755)
    local_postgres.start(port, data_dir)
    try:
        env = {
            **os.environ,
            "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "PGHOST": "127.0.0.1",
            "PGPORT": str(port),
            "POSTGRES_USER": local_postgres.SUPERUSER,
            "POSTGRES_DB": "postgres",
            "BBI_DB_PASSWORD_TRAINING": "s3cret",
        }
        res = subprocess.run(
            ["bash", str(DEPLOY / "postgres/init-databases.sh")],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert res.returncode == 0, res.stderr
        for service in SERVICES:
            password = "s3cret" if service == "training" else f"{service}-local"
            url = f"postgresql+psycopg://{service}:{password}@127.0.0.1:{port}/{service}"
            engine = sa.create_engine(url)
            with engine.connect() as conn:
                assert conn.execute(sa.text("select current_database()")).scalar() == service
            engine.dispose()
    finally:
        local_postgres.stop(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)
