"""The web start script, the gunicorn settings and the image definition."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from devtools import registry
from tests.deploy.deploy_helpers import DEPLOY, REPO


def _load_gunicorn_conf(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict:
    for k in ("PORT", "GUNICORN_WORKERS", "GUNICORN_THREADS"):
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    ns: dict = {}
    exec(compile((DEPLOY / "gunicorn.conf.py").read_text(), "gunicorn.conf.py", "exec"), ns)
    return ns


def test_gunicorn_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    conf = _load_gunicorn_conf({}, monkeypatch)
    assert conf["worker_class"] == "gthread"  # never gevent (DESIGN §8)
    assert (conf["workers"], conf["threads"]) == (2, 4)
    assert conf["max_requests"] == 0
    assert 0 < conf["graceful_timeout"] < 30


def test_gunicorn_reads_env(monkeypatch: pytest.MonkeyPatch) -> None:
    conf = _load_gunicorn_conf(
        {"PORT": "8003", "GUNICORN_WORKERS": "5", "GUNICORN_THREADS": "8"}, monkeypatch
    )
    assert conf["bind"] == "0.0.0.0:8003"
    assert (conf["workers"], conf["threads"]) == (5, 8)


def test_child_exit_marks_the_worker_dead(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from prometheus_client import multiprocess

    conf = _load_gunicorn_conf({"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}, monkeypatch)
    seen = []
    monkeypatch.setattr(multiprocess, "mark_process_dead", lambda pid, path=None: seen.append(pid))
    conf["child_exit"](None, SimpleNamespace(pid=4242))
    assert seen == [4242]


def _fake_root(tmp_path: Path) -> Path:
    """A copy of deploy/ whose .venv/bin/gunicorn only reports how it was called."""
    root = tmp_path / "repo"
    (root / "deploy/bin").mkdir(parents=True)
    shutil.copy(DEPLOY / "bin/web", root / "deploy/bin/web")
    shutil.copy(DEPLOY / "gunicorn.conf.py", root / "deploy/gunicorn.conf.py")
    fake = root / ".venv/bin/gunicorn"
    fake.parent.mkdir(parents=True)
    fake.write_text(
        '#!/usr/bin/env bash\necho "cwd=$PWD"\necho "PORT=$PORT"\n'
        'echo "DIR=$PROMETHEUS_MULTIPROC_DIR"\necho "FILES=$(ls -A "$PROMETHEUS_MULTIPROC_DIR")"\n'
        'printf "ARG=%s\\n" "$@"\n'
    )
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    return root


def test_web_script_wipes_multiproc_dir_and_execs_gunicorn(tmp_path: Path) -> None:
    root = _fake_root(tmp_path)
    mp = tmp_path / "mp"
    mp.mkdir()
    (mp / "counter_123.db").write_text("stale")
    env = {**os.environ, "PORT": "8002", "PROMETHEUS_MULTIPROC_DIR": str(mp)}
    out = subprocess.run(
        [str(root / "deploy/bin/web"), "training"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "PORT=8002" in out and f"DIR={mp}" in out
    assert "FILES=\n" in out  # wiped, and the directory itself kept (k8s emptyDir mount)
    assert mp.is_dir()
    args = re.findall(r"ARG=(.*)", out)
    assert args == [
        "-c",
        str(root / "deploy/gunicorn.conf.py"),
        "services.training.app:create_app()",
    ]


@pytest.mark.parametrize("service", registry.SERVICES)
def test_web_script_default_port_per_service(tmp_path: Path, service: str) -> None:
    root = _fake_root(tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("PORT", "PROMETHEUS_MULTIPROC_DIR")}
    env["TMPDIR"] = str(tmp_path)
    out = subprocess.run(
        [str(root / "deploy/bin/web"), service], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert f"PORT={registry.WEB_PORTS[service]}" in out


def test_web_script_refuses_unknown_service(tmp_path: Path) -> None:
    res = subprocess.run(
        [str(_fake_root(tmp_path) / "deploy/bin/web"), "nope"], capture_output=True, text=True
    )
    assert res.returncode != 0 and "unknown service" in res.stderr


def test_dockerfile_shape() -> None:
    text = (REPO / "Dockerfile").read_text()
    froms = re.findall(r"^FROM (\S+)(?: AS (\S+))?", text, re.M)
    assert froms == [("python:3.11-slim", "builder"), ("python:3.11-slim", "runtime")]
    assert "pip wheel" in text  # the builder stage builds wheels
    assert re.search(r"^USER 10001(:10001)?$", text, re.M)
    assert re.search(r"^CMD \[.*deploy/bin/web", text, re.M)
    ignored = (REPO / ".dockerignore").read_text().split()
    assert ".git" in ignored and ".venv" in ignored and "var" in ignored


def test_web_serves_health_and_metrics_under_gunicorn(tmp_path: Path) -> None:
    """The real thing, for a service whose app exists: start via deploy/bin/web, probe it."""
    import socket
    import time
    import urllib.request

    service = registry.SERVICES[0]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp = tmp_path / "mp"
    env = {
        **os.environ,
        "PORT": str(port),
        "PROMETHEUS_MULTIPROC_DIR": str(mp),
        f"{service.upper()}_DATABASE_URL": f"sqlite:///{tmp_path}/{service}.db",
        "GUNICORN_WORKERS": "2",
        "GUNICORN_THREADS": "2",
        # Where gunicorn would put its control socket: several masters on one host (make run)
        # would fight for it, and the production root filesystem is read-only.
        "HOME": str(tmp_path / "home"),
    }
    env.pop("XDG_RUNTIME_DIR", None)
    from services.common.db.migrations import upgrade

    upgrade(service, env[f"{service.upper()}_DATABASE_URL"])
    proc = subprocess.Popen(
        [str(DEPLOY / "bin/web"), service],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                    assert r.status == 200
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    died = proc.poll() is not None
                    why = proc.stderr.read().decode()[-2000:] if died else "timeout"
                    pytest.fail(f"web did not become ready: {why}")
                time.sleep(0.3)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            body = r.read().decode()
        assert "bbi_http_requests_total" in body
        assert list(mp.iterdir()), "multiprocess files are written to PROMETHEUS_MULTIPROC_DIR"
        assert not (tmp_path / "home").exists(), "no control socket (control_socket_disable)"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_portal_metrics_add_up_over_its_gunicorn_workers(tmp_path: Path) -> None:
    """The portal under deploy/bin/web like the services: /metrics sums every worker's
    requests (multiprocess files), so a scrape that one worker answers still counts them all."""
    import socket
    import time
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp = tmp_path / "mp"
    env = {**os.environ, "PORT": str(port), "PROMETHEUS_MULTIPROC_DIR": str(mp),
           "GUNICORN_WORKERS": "2", "GUNICORN_THREADS": "1",
           "PORTAL_SESSION_DATABASE_URL": f"sqlite:///{tmp_path}/sessions.db"}
    proc = subprocess.Popen([str(DEPLOY / "bin/web"), "portal"], env=env, cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"

    def get(path: str) -> str:
        with urllib.request.urlopen(base + path, timeout=5) as r:  # a new connection each
            return r.read().decode()

    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                get("/readyz")
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    why = proc.stderr.read().decode()[-2000:] if proc.poll() is not None \
                        else "timeout"
                    pytest.fail(f"portal did not become ready: {why}")
                time.sleep(0.3)
        # Until both workers have answered (each writes its own counter file), however the
        # kernel spreads the connections.
        sent, deadline = 0, time.monotonic() + 120
        while len(list(mp.glob("counter_*.db"))) < 2 or sent < 20:
            assert time.monotonic() < deadline, "the second worker never answered"
            get("/healthz")
            sent += 1
        body = get("/metrics")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    counted = sum(s.value for f in text_string_to_metric_families(body) for s in f.samples
                  if s.name == "bbi_http_requests_total"
                  and s.labels.get("service") == "portal" and s.labels.get("route") == "/healthz")
    assert counted == sent
