"""Grafana: provisioning files are well-formed and every dashboard query only uses metric names
that the code exports (observability.py) or that services/metrics/METRICS.md documents."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.deploy.deploy_helpers import DEPLOY, METRICS_MD, known_series, promql_metric_names

DASHBOARDS = sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))


def _panels(dash: dict) -> list[dict]:
    out = []
    for p in dash["panels"]:
        out.append(p)
        out.extend(p.get("panels", []))
    return out


def test_the_two_dashboards_exist() -> None:
    assert {p.name for p in DASHBOARDS} == {"national-progress.json", "system-health.json"}


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_queries_use_known_metrics(path: Path) -> None:
    dash = json.loads(path.read_text())
    known = known_series()
    exprs = [(p["title"], t["expr"]) for p in _panels(dash) for t in p.get("targets", [])]
    exprs += [
        (f"variable {v['name']}", v["definition"])
        for v in dash["templating"]["list"]
        if v["type"] == "query"
    ]
    assert exprs, "no queries"
    for title, expr in exprs:
        if expr.startswith("label_values("):
            expr = expr[len("label_values(") :].split(",")[0]
        names = promql_metric_names(expr)
        assert names, f"{path.name} / {title}: no metric in {expr!r}"
        unknown = names - known
        assert not unknown, (
            f"{path.name} / {title}: {unknown} neither in observability.py "
            f"nor in {METRICS_MD.relative_to(DEPLOY.parent)}"
        )


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_shape(path: Path) -> None:
    dash = json.loads(path.read_text())
    assert dash["uid"].startswith("bbi-") and dash["title"]
    ids = [p["id"] for p in _panels(dash)]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    for p in _panels(dash):
        if p["type"] != "row":
            assert p["datasource"]["uid"] == "${datasource}", p["title"]
            assert p.get("description"), f"{p['title']}: say what the panel shows"
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24
    names = {v["name"] for v in dash["templating"]["list"]}
    assert "datasource" in names
    wanted = {"system-health.json": "service", "national-progress.json": "province"}[path.name]
    assert wanted in names


def test_provisioning_points_at_the_dashboards() -> None:
    prov = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/bbi.yaml").read_text())
    ds = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/prometheus.yaml").read_text())
    assert prov["providers"][0]["options"]["path"] == "/etc/grafana/dashboards"
    assert (
        ds["datasources"][0]["type"] == "prometheus" and ds["datasources"][0]["uid"] == "prometheus"
    )


def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    """promtool parses every panel expression (Grafana variables replaced by sample values)."""
    from tests.deploy.deploy_helpers import run, tool

    subst = {
        "$__rate_interval": "5m",
        "$__interval": "1m",
        "${datasource}": "prometheus",
        "$province": "31",
        "$service": "registration",
    }
    rules = []
    for path in DASHBOARDS:
        for p in _panels(json.loads(path.read_text())):
            for t in p.get("targets", []):
                expr = t["expr"]
                for k, v in subst.items():
                    expr = expr.replace(k, v)
                rules.append({"record": f"dashboard:check_{len(rules)}", "expr": expr})
    f = tmp_path / "dashboard_exprs.yml"
    f.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    res = run([tool("promtool"), "check", "rules", str(f)])
    assert res.returncode == 0, res.stdout + res.stderr
