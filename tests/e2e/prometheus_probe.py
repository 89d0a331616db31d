"""A real Prometheus (Debian's package) scraping the running stack, and the dashboard and
alert expressions of deploy/ evaluated through its HTTP API."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import yaml

from services.common.config import REPO_ROOT
from tests.e2e.stack import Stack, free_port

DASHBOARDS = REPO_ROOT / "deploy" / "grafana" / "dashboards"
ALERTS = REPO_ROOT / "deploy" / "prometheus" / "alerts.yml"
LOCAL_CONFIG = REPO_ROOT / "deploy" / "prometheus" / "prometheus.local.yml"
GRAFANA_VARS = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "5m",
                "${__range}": "5m", "$__range_s": "300"}
PROMQL_WORDS = {"sum", "by", "rate", "irate", "increase", "max", "min", "avg", "count",
                "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
                "unless", "time", "vector", "scalar", "histogram_quantile", "clamp_min",
                "clamp_max", "topk", "bottomk", "label_replace", "absent", "delta", "deriv",
                "max_over_time", "min_over_time", "avg_over_time", "sum_over_time", "offset",
                "le", "abs", "round", "sort", "sort_desc", "count_over_time", "last_over_time",
                "changes", "resets", "timestamp", "year", "day_of_year", "days_in_month",
                "predict_linear", "inf", "nan", "quantile_over_time", "label_join", "ceil",
                "floor", "exp", "ln", "sqrt", "stddev", "quantile", "count_values", "group",
                "present_over_time", "absent_over_time", "month", "hour", "minute"}


def dashboard_queries() -> list[tuple[str, str, str]]:
    """(dashboard, panel title, expr) for every panel target, rows included."""
    out = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        doc = json.loads(path.read_text())
        panels = list(doc.get("panels", []))
        while panels:
            p = panels.pop(0)
            panels.extend(p.get("panels", []))
            for t in p.get("targets", []):
                if t.get("expr"):
                    out.append((path.stem, p.get("title", "?"), t["expr"]))
    return out


def alert_exprs() -> list[tuple[str, str]]:
    doc = yaml.safe_load(ALERTS.read_text())
    return [(r.get("alert") or r.get("record"), r["expr"]) for g in doc["groups"]
            for r in g["rules"]]


def concrete(expr: str) -> str:
    """Substitute Grafana's template variables with values that select everything."""
    for k in sorted(GRAFANA_VARS, key=len, reverse=True):
        expr = expr.replace(k, GRAFANA_VARS[k])
    return re.sub(r"\$\{?\w+\}?", ".*", expr)


def metric_names(expr: str) -> set[str]:
    """Identifiers in an expression that name metrics (not functions, labels or keywords)."""
    expr = re.sub(r'"[^"]*"', '""', expr)            # label values
    expr = re.sub(r"\{[^}]*\}", "{}", expr)           # label matchers
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)            # ranges
    names = set(re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b", expr))
    return {n for n in names if n not in PROMQL_WORDS and not re.fullmatch(r"\d+[smhdwy]?", n)
            and n.startswith("bbi_")}


class Prometheus:
    def __init__(self, stack: Stack, workdir: Path) -> None:
        self.stack, self.workdir, self.port = stack, workdir, free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        shutil.copy(ALERTS, self.workdir / "alerts.yml")
        config = self.local_config()
        (self.workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        log = open(self.workdir / "prometheus.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            ["prometheus", f"--config.file={self.workdir / 'prometheus.yml'}",
             f"--storage.tsdb.path={self.workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}"], stdout=log, stderr=log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/-/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError("prometheus did not start: "
                           + (self.workdir / "prometheus.log").read_text()[-2000:])

    def local_config(self) -> dict[str, Any]:
        """deploy/prometheus/prometheus.local.yml itself, pointed at this stack's ports."""
        from devtools.registry import WEB_PORTS, WORKER_METRICS_PORTS

        config = yaml.safe_load(LOCAL_CONFIG.read_text())
        config["global"].update(scrape_interval="1s", evaluation_interval="1s")
        moved = {f"127.0.0.1:{WEB_PORTS[n]}": f"127.0.0.1:{self.stack.web_ports[n]}"
                 for n in self.stack.services}
        moved |= {f"127.0.0.1:{WORKER_METRICS_PORTS[n]}":
                  f"127.0.0.1:{self.stack.worker_ports[n]}" for n in self.stack.services}
        moved["127.0.0.1:9090"] = f"127.0.0.1:{self.port}"
        for job in config["scrape_configs"]:
            for sc in job.get("static_configs", []):
                sc["targets"] = [moved[t] for t in sc["targets"] if t in moved]
        return config

    def query(self, expr: str) -> dict[str, Any]:
        r = httpx.get(self.url + "/api/v1/query", params={"query": expr}, timeout=10)
        return r.json()  # type: ignore[no-any-return]

    def names(self) -> set[str]:
        r = httpx.get(self.url + "/api/v1/label/__name__/values", timeout=10).json()
        return set(r["data"])

    def targets_up(self) -> int:
        res = self.query("sum(up)")["data"]["result"]
        return int(float(res[0]["value"][1])) if res else 0

    def wait_scraped_after(self, t: float, targets: int, scrapes: int = 2,
                           timeout: float = 180) -> float:
        """Block until each of `targets` targets has been scraped successfully `scrapes` times
        after wall time `t` (two samples inside any rate() window), then until every rule
        group has been evaluated after the last of those scrapes; returns that moment.
        Scrapes are counted as distinct lastScrape values seen by polling, which can only
        under-count: the wait may be longer than needed, never shorter."""
        seen: dict[str, set[float]] = {}
        deadline = time.monotonic() + timeout
        while True:
            active = httpx.get(self.url + "/api/v1/targets", params={"state": "active"},
                               timeout=10).json()["data"]["activeTargets"]
            for tg in active:
                at = _epoch(tg["lastScrape"])
                if tg["health"] == "up" and at > t:
                    seen.setdefault(tg["scrapeUrl"], set()).add(at)
            done = [max(v) for v in seen.values() if len(v) >= scrapes]
            if len(active) == targets and len(done) == targets:
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"not every target scraped {scrapes}x after the data: "
                                     f"{ {u: len(v) for u, v in seen.items()} } {active}")
            time.sleep(0.2)
        scraped = max(done)
        while True:
            groups = httpx.get(self.url + "/api/v1/rules", timeout=10).json()["data"]["groups"]
            if groups and all(_epoch(g["lastEvaluation"]) > scraped for g in groups):
                return scraped
            if time.monotonic() > deadline:
                raise AssertionError(f"rules not evaluated after the last scrape: {groups}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


def _epoch(rfc3339: str) -> float:
    """Prometheus' timestamps (nanosecond fractions, any offset) as seconds since the epoch."""
    micro = re.sub(r"(\.\d{6})\d+", r"\1", rfc3339)  # fromisoformat stops at microseconds
    return datetime.fromisoformat(micro.replace("Z", "+00:00")).timestamp()
