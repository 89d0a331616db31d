"""Shared parsing for the deployment checks: env var names the code reads, metric names it
exports, PromQL identifiers, and the external tools (promtool, kubectl)."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest
import yaml

from devtools import registry
from devtools.testing_infra import on_ci

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
SERVICES = registry.SERVICES
METRICS_MD = REPO / "services" / "metrics" / "METRICS.md"


def tool(name: str) -> str:
    """Path of an external tool; missing: skip off CI, fail with CI=true."""
    path = shutil.which(name)
    if path:
        return path
    msg = f"{name} is not installed (apt-get install -y prometheus provides promtool)"
    if on_ci():
        pytest.fail(msg + " -- CI=true: deployment checks are required, not skipped")
    pytest.skip(msg)


def run(cmd: list[str], cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120)


def kustomize(path: Path) -> list[dict]:
    res = run([tool("kubectl"), "kustomize", str(path)])
    assert res.returncode == 0, res.stderr
    return [d for d in yaml.safe_load_all(res.stdout) if d]


def load_yaml(path: Path) -> object:
    return yaml.safe_load(path.read_text())


# --- environment variable names the code reads -----------------------------------------------
_ENV_CALL = re.compile(
    r"""(?:environ\.get|getenv|env_int|env_float|env_bool|env_str|_env|knob|environ\.setdefault)"""
    r"""\(\s*["']([A-Z][A-Z0-9_]*)["']"""
    r"""|environ\[\s*["']([A-Z][A-Z0-9_]*)["']\s*\]"""
)


@cache
def env_names_read_by_code() -> frozenset[str]:
    """Every literal env var name read under services/ and in deploy/gunicorn.conf.py, plus the
    per-service `<SERVICE>_DATABASE_URL` that config.py builds from a prefix."""
    names: set[str] = set()
    files = list((REPO / "services").rglob("*.py")) + [DEPLOY / "gunicorn.conf.py"]
    for f in files:
        for a, b in _ENV_CALL.findall(f.read_text(encoding="utf-8")):
            names.add(a or b)
    config_src = (REPO / "services" / "common" / "config.py").read_text()
    assert 'prefix + "DATABASE_URL"' in config_src, (
        "config.py no longer reads <SERVICE>_DATABASE_URL"
    )
    names |= {f"{s.upper()}_DATABASE_URL" for s in SERVICES}
    return frozenset(names)


# Read by the start script / worker convention (SERVICE_GUIDE.md) rather than by Python code
# that may not exist yet while services land one at a time.
PROCESS_ENV = frozenset({"PORT", "PROMETHEUS_MULTIPROC_DIR", "WORKER_METRICS_PORT"})


# --- metric names ----------------------------------------------------------------------------
@cache
def instrumented_metric_names() -> frozenset[str]:
    """Names declared in services/common/observability.py (Counter/Gauge/Histogram first arg)."""
    tree = ast.parse((REPO / "services" / "common" / "observability.py").read_text())
    names = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("Counter", "Gauge", "Histogram", "Summary")
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            names.add(node.args[0].value)
    return frozenset(names)


@cache
def business_metric_names() -> frozenset[str]:
    """The metric names documented in services/metrics/METRICS.md."""
    if not METRICS_MD.exists():
        return frozenset()
    return frozenset(re.findall(r"\b(bbi_[a-z0-9_]+)\b", METRICS_MD.read_text()))


def series_names(base: str) -> set[str]:
    """Series a metric family exposes (counter _total/_created, histogram parts)."""
    out = {base}
    stem = base[: -len("_total")] if base.endswith("_total") else base
    out |= {stem + "_total", stem + "_created", base + "_bucket", base + "_sum", base + "_count"}
    return out


def known_series() -> set[str]:
    names: set[str] = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
    for n in instrumented_metric_names() | business_metric_names():
        names |= series_names(n)
    return names | recorded_names()


@cache
def recorded_names() -> frozenset[str]:
    """Recording rules of deploy/prometheus/alerts.yml (e.g. bbi:national_target:current_year)."""
    doc = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    return frozenset(r["record"] for g in doc["groups"] for r in g["rules"] if "record" in r)


# --- PromQL ----------------------------------------------------------------------------------
_KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "offset",
    "and",
    "or",
    "unless",
    "atan2",
    "inf",
    "nan",
    "start",
    "end",
}


def promql_metric_names(expr: str) -> set[str]:
    """Metric names an expression selects (identifiers that are not functions, keywords,
    label names, strings, durations or Grafana variables)."""
    s = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)  # strings
    s = re.sub(r"\{[^{}]*\}", "", s)  # matchers
    s = re.sub(r"\[[^\]]*\]", "", s)  # ranges
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)
    s = re.sub(r"\$\{?[A-Za-z_][A-Za-z0-9_:]*\}?", "1", s)  # $var, ${var}
    names = set()
    for m in re.finditer(r"(?<![A-Za-z0-9_.:])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?", s):
        word, call = m.group(1), m.group(2)
        if call or word.lower() in _KEYWORDS:
            continue
        if re.fullmatch(
            r"\d+[smhdwy]", word
        ):  # cannot match (starts with a letter), kept for clarity
            continue
        names.add(word)
    return names
