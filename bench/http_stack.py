"""Processes and load for the HTTP benchmarks: the services as real gunicorn/worker processes
(tests/e2e/stack.py, with the gunicorn/pool settings under test), the bare-Flask ceiling on
the same gunicorn settings, and wrk driven by bench/wrk/register.lua."""
from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from devtools.local_postgres import create_database
from services.common.config import REPO_ROOT
from services.common.db.migrations import upgrade
from tests.e2e.stack import Stack, free_port

WRK = "wrk"
SCRIPT = REPO_ROOT / "bench" / "wrk" / "register.lua"

# The settings the benchmark runs with (and that won, see bench/notes/registration_http.md).
# A huge limit: the benchmark sends more than 60 registrations a minute per address.
# Many clients behind one ingress: the limiter keys on X-Forwarded-For as in production.
BENCH_ENV = {
    "REGISTRATION_RATE_LIMIT": "1000000000",
    "REGISTRATION_TRUSTED_PROXIES": "1",
}


def pg_base(pg_url: str) -> str:
    """The server URL of a database URL (bench.run hands each benchmark one database)."""
    return make_url(pg_url).set(database="postgres").render_as_string(hide_password=False)


@dataclass
class BenchStack(Stack):
    """tests/e2e/stack.Stack with the web process settings of this benchmark."""

    workers: int = 2
    threads: int = 4
    extra_env: dict[str, str] = field(default_factory=dict)
    ceiling_db: str = ""

    def _spawn(self, name: str, cmd: list[str], extra: dict[str, str]) -> None:
        super()._spawn(name, cmd, {**BENCH_ENV, **self.extra_env, **extra})

    def start_web(self, s: str) -> None:
        mp = self.workdir / f"prom-{s}"
        self._spawn(f"{s}_web", ["bash", "deploy/bin/web", s],
                    {"PORT": str(self.web_ports[s]), "PROMETHEUS_MULTIPROC_DIR": str(mp),
                     "GUNICORN_WORKERS": str(self.workers),
                     "GUNICORN_THREADS": str(self.threads)})

    def start_ceiling(self) -> str:
        """The bare-Flask ceiling on its own migrated database; returns its base URL."""
        url = create_database(self.pg_base, f"bench_ceiling_{self.prefix.strip('.')}")
        upgrade("registration", url)
        self.ceiling_db = url
        port = free_port()
        gunicorn = str(REPO_ROOT / ".venv" / "bin" / "gunicorn")
        self._spawn("ceiling_web", [gunicorn, "-c", "deploy/gunicorn.conf.py",
                                    "bench.ceiling_app:create_app()"],
                    {"PORT": str(port), "BENCH_CEILING_DATABASE_URL": url,
                     "GUNICORN_WORKERS": str(self.workers),
                     "GUNICORN_THREADS": str(self.threads)})
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(base + "/readyz", timeout=2).status_code == 200:
                    return base
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError("ceiling app not ready: " + self.log_tail("ceiling_web"))


def meters(stack: BenchStack, web: str, db_url: str, worker: str = "") -> dict[str, CpuMeter]:
    """CPU meters of one web process's workers, its database's backends, and its worker."""
    out = {"web": CpuMeter(parents=[stack.procs[web].pid]), "db": CpuMeter(pg_url=db_url)}
    if worker:
        out["worker"] = CpuMeter(pids=[stack.procs[worker].pid])
    return out


def new_stack(kafka: str, pg_url: str, services: tuple[str, ...], name: str,
              **kw: object) -> BenchStack:
    prefix = f"b{uuid.uuid4().hex[:6]}."
    return BenchStack(kafka=kafka, pg_base=pg_base(pg_url), prefix=prefix,
                      workdir=Path(REPO_ROOT / "var" / f"bench-{name}-{prefix.strip('.')}"),
                      services=services, **kw)  # type: ignore[arg-type]


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of one process (Linux /proc), 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return out


class CpuMeter:
    """CPU seconds used by some processes between start() and stop(): a gunicorn master's
    workers, a worker process, the PostgreSQL backends serving one database. On a shared,
    overloaded machine req/s swings with the neighbours; CPU per request barely does."""

    def __init__(self, parents: Sequence[int] = (), pids: Sequence[int] = (),
                 pg_url: str = "") -> None:
        self.parents, self.pids, self.pg_url = list(parents), list(pids), pg_url
        self._before: dict[int, float] = {}

    def _pids(self) -> list[int]:
        pids = list(self.pids)
        for p in self.parents:
            pids += _children(p)
        if self.pg_url:
            engine = sa.create_engine(self.pg_url, poolclass=NullPool)
            with engine.connect() as conn:
                pids += conn.execute(sa.text(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                    " AND pid <> pg_backend_pid()")).scalars().all()
            engine.dispose()
        return pids

    def start(self) -> None:
        self._before = {p: _cpu_seconds(p) for p in self._pids()}

    def stop(self) -> float:
        return sum(_cpu_seconds(p) - self._before.get(p, 0.0) for p in self._pids())


@dataclass
class WrkResult:
    requests: int
    seconds: float
    errors: int  # connect/read/write/timeout errors plus HTTP status >= 400
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    cpu_ms: dict[str, float] = field(default_factory=dict)  # CPU ms per request, by meter

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


_nonce = 0


def owner_token() -> str:
    """A signed-in owner's token (role umkm): POST /v1/umkm needs one. Minted with the local
    development signer, which the bench stack's services verify."""
    from devtools.dev_tokens import issue_token
    from services.common.config import Settings

    return issue_token(Settings.from_env("registration"), "kc-bench-owner", "umkm",
                       ttl_seconds=24 * 3600)


def wrk(base_url: str, seconds: float, connections: int, delay_ms: float = 0,
        province: str = "31", capital: int = 50_000_000, threads: int = 1,
        meters: dict[str, CpuMeter] | None = None) -> WrkResult:
    """Drive POST /v1/umkm with unique valid registrations; refuse to report failed runs."""
    global _nonce
    _nonce += 1
    nonce = (int(time.time()) * 7 + _nonce) % 1000
    cmd = [WRK, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
           "--timeout", "10s", "-s", str(SCRIPT), base_url, "--", str(nonce),
           str(int(delay_ms)), province, str(capital), "1", owner_token()]
    for m in (meters or {}).values():
        m.start()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=True)
    used = {name: m.stop() for name, m in (meters or {}).items()}
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary: {out.stdout}\n{out.stderr}")
    d = json.loads(line.removeprefix("BENCH_JSON "))
    res = WrkResult(d["requests"], d["duration_us"] / 1e6,
                    d["connect"] + d["read"] + d["write"] + d["timeout"] + d["status"],
                    d["p50"] / 1000, d["p95"] / 1000, d["p99"] / 1000, d["mean"] / 1000,
                    {k: 1000 * v / max(1, d["requests"]) for k, v in used.items()})
    if res.errors or res.requests == 0:
        raise RuntimeError(f"wrk saw {res.errors} errors in {res.requests} requests: "
                           f"{out.stdout[-1500:]}")
    return res


def paced(base_url: str, rate: float, seconds: float, connections: int,
          province: str = "31") -> WrkResult:
    """wrk at about `rate` req/s: each connection waits delay() between requests, tuned from
    a short calibration run so that delay + latency = connections / rate."""
    period_ms = 1000 * connections / rate
    cal = wrk(base_url, 2, connections, delay_ms=period_ms, province=province)
    # cal.rate ~= connections / (period + latency): move the delay by the observed shortfall.
    delay = max(0.0, period_ms - (1000 * connections / cal.rate - period_ms))
    return wrk(base_url, seconds, connections, delay_ms=delay, province=province)
