"""The whole system as real processes: every service's gunicorn web and worker, against the
real broker and PostgreSQL, on free loopback ports. Used by the e2e and Prometheus tests."""
from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import httpx

from devtools.local_postgres import create_database
from devtools.registry import SERVICES
from services.common.config import REPO_ROOT
from services.common.db.migrations import upgrade
from services.common.messaging import contracts, topics

T = TypeVar("T")


def eventually(check: Callable[[], T], timeout: float = 60.0, every: float = 0.5) -> T:
    """Poll until `check()` returns without AssertionError; re-raise the last one (events
    cross Kafka asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(every)


def free_port() -> int:
    """A free loopback port below the kernel's ephemeral range. A port the kernel hands out
    (bind to 0) comes from the range every outgoing connection on the machine draws from, so
    it can be taken again before the process it is meant for binds it; the slower that
    process starts, the likelier (a worker died with "Address already in use" under load)."""
    low = _ephemeral_low()
    if low > 11_000:
        for _ in range(200):
            port = random.randrange(10_000, low)
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


@dataclass
class Stack:
    kafka: str
    pg_base: str
    workdir: Path
    prefix: str
    web_ports: dict[str, int] = field(default_factory=dict)
    worker_ports: dict[str, int] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    services: tuple[str, ...] = SERVICES
    # Extra environment for every process (e.g. a higher registration rate limit under load).
    extra_env: dict[str, str] = field(default_factory=dict)

    def url(self, service: str, path: str = "") -> str:
        return f"http://127.0.0.1:{self.web_ports[service]}{path}"

    def start(self) -> None:
        """Create databases and topics, migrate, start every process, wait until ready."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=self.kafka, BBI_TOPIC_PREFIX=self.prefix,
                   BBI_LOG_LEVEL="INFO", PYTHONUNBUFFERED="1", **self.extra_env)
        for s in self.services:
            url = create_database(self.pg_base, f"e2e_{self.prefix.strip('.')}_{s}")
            upgrade(s, url)
            env[f"{s.upper()}_DATABASE_URL"] = url
        self.env = env
        topics.ensure_topics(self.kafka, {self.prefix + t: c for t, c in
                                               contracts.TOPIC_CONFIGS.items()},
                                  partitions=3, replication=1)
        for s in self.services:
            self.web_ports[s] = free_port()
            self.worker_ports[s] = free_port()
            self.start_web(s)
            self.start_worker(s)
        for s in self.services:
            self.wait_ready(s)
            self.wait_worker(s)

    def _spawn(self, name: str, cmd: list[str], extra: dict[str, str]) -> None:
        log = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115 - owned by the process
        self.procs[name] = subprocess.Popen(cmd, cwd=REPO_ROOT, env=dict(self.env, **extra),
                                            stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)

    def start_web(self, s: str) -> None:
        mp = self.workdir / f"prom-{s}"
        self._spawn(f"{s}_web", ["bash", "deploy/bin/web", s],
                    {"PORT": str(self.web_ports[s]), "PROMETHEUS_MULTIPROC_DIR": str(mp),
                     "GUNICORN_WORKERS": "2", "GUNICORN_THREADS": "4"})

    def start_worker(self, s: str, name: str = "", metrics_port: int = 0) -> None:
        """Start a worker; a second replica of one service needs its own name and port."""
        self._spawn(name or f"{s}_worker", [sys.executable, "-m", f"services.{s}.worker"],
                    {"WORKER_METRICS_PORT": str(metrics_port or self.worker_ports[s])})

    def wait_ready(self, s: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url(s, "/readyz"), timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            proc = self.procs[f"{s}_web"]
            if proc.poll() is not None:
                raise RuntimeError(f"{s} web exited: {self.log_tail(f'{s}_web')}")
            time.sleep(0.2)
        raise RuntimeError(f"{s} web not ready: {self.log_tail(f'{s}_web')}")

    def wait_worker(self, s: str, timeout: float = 60) -> None:
        """The worker serves its metrics port (it started; a worker that died says why)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{self.worker_ports[s]}/metrics", timeout=2)
                return
            except httpx.HTTPError:
                pass
            if self.procs[f"{s}_worker"].poll() is not None:
                raise RuntimeError(f"{s} worker exited: {self.log_tail(f'{s}_worker')}")
            time.sleep(0.2)
        raise RuntimeError(f"{s} worker not serving metrics: {self.log_tail(f'{s}_worker')}")

    def kill(self, name: str) -> None:
        proc = self.procs[name]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)

    def terminate(self, name: str, timeout: float = 30) -> int:
        """SIGTERM (a graceful stop, e.g. a scale-down) and wait; returns the exit code."""
        proc = self.procs[name]
        os.killpg(proc.pid, signal.SIGTERM)
        return proc.wait(timeout)

    def log_tail(self, name: str, n: int = 4000) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace")[-n:] if path.exists() else ""

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.workdir.glob("*.log"))

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for proc in self.procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        shutil.rmtree(self.workdir / "prom", ignore_errors=True)
