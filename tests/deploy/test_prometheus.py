"""Prometheus configuration: promtool accepts it, every alert fires in its unit test (and stays
silent when healthy), every process is scraped, and rules select only metrics the code exports."""

from __future__ import annotations

import pytest
import yaml

from devtools import registry
from tests.deploy.deploy_helpers import DEPLOY, known_series, promql_metric_names, run, tool

PROM = DEPLOY / "prometheus"
REQUIRED_ALERTS = {
    "BbiConsumerLagHigh",  # consumer lag above a threshold for 5 minutes
    "BbiEventDeadLettered",  # any dead-lettered event
    "BbiHttp5xxRatioHigh",  # 5xx ratio above 1%
    "BbiEventFreshnessStale",  # freshness older than N minutes while producers are active
    "BbiOutboxBacklogGrowing",  # outbox backlog growing
    "BbiOnboardingBehindTarget",  # onboarding pace behind the yearly target
}


def _rules() -> list[dict]:
    doc = yaml.safe_load((PROM / "alerts.yml").read_text())
    return [r for g in doc["groups"] for r in g["rules"]]


@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus.local.yml"])
def test_promtool_check_config(config: str) -> None:
    res = run([tool("promtool"), "check", "config", str(PROM / config)])
    assert res.returncode == 0, res.stdout + res.stderr


def test_promtool_check_rules() -> None:
    res = run([tool("promtool"), "check", "rules", str(PROM / "alerts.yml")])
    assert res.returncode == 0, res.stdout + res.stderr


def test_promtool_rule_unit_tests_pass() -> None:
    res = run([tool("promtool"), "test", "rules", str(PROM / "alerts_test.yml")])
    assert res.returncode == 0, res.stdout + res.stderr
    assert "SUCCESS" in res.stdout + res.stderr


def test_required_alerts_exist_with_runbooks() -> None:
    rules = {r["alert"]: r for r in _rules() if "alert" in r}
    assert REQUIRED_ALERTS <= set(rules), REQUIRED_ALERTS - set(rules)
    for name, rule in rules.items():
        ann = rule.get("annotations", {})
        for key in ("summary", "description", "runbook"):
            assert ann.get(key, "").strip(), f"{name}: annotation {key} missing"
        assert rule.get("labels", {}).get("severity") in ("warning", "critical"), name


def test_every_alert_has_a_firing_and_a_silent_case() -> None:
    """Every alert is proven to fire, and every required one also proven silent when healthy."""
    doc = yaml.safe_load((PROM / "alerts_test.yml").read_text())
    fired, silent = set(), set()
    for t in doc["tests"]:
        for case in t.get("alert_rule_test", []):
            (fired if case.get("exp_alerts") else silent).add(case["alertname"])
    alerts = {r["alert"] for r in _rules() if "alert" in r}
    assert alerts <= fired, f"alerts never fired in alerts_test.yml: {alerts - fired}"
    assert REQUIRED_ALERTS <= silent, f"no healthy case for: {REQUIRED_ALERTS - silent}"


def test_rules_select_only_exported_metrics() -> None:
    known = known_series()
    for rule in _rules():
        unknown = promql_metric_names(str(rule["expr"])) - known
        assert not unknown, f"{rule.get('alert') or rule.get('record')}: unknown metrics {unknown}"


@pytest.mark.parametrize(
    "config,host", [("prometheus.yml", None), ("prometheus.local.yml", "127.0.0.1")]
)
def test_every_web_and_worker_port_is_scraped(config: str, host: str | None) -> None:
    doc = yaml.safe_load((PROM / config).read_text())
    jobs = {
        j["job_name"]: [t for sc in j["static_configs"] for t in sc["targets"]]
        for j in doc["scrape_configs"]
    }
    for svc in registry.SERVICES:
        web_port, worker_port = (
            registry.WEB_PORTS[svc],
            registry.WORKER_METRICS_PORTS[svc],
        )
        assert f"{host or svc + '-web'}:{web_port}" in jobs["bbi-web"]
        assert f"{host or svc + '-worker'}:{worker_port}" in jobs["bbi-worker"]
    # The portal's web process exports the same request metrics (it has no worker).
    assert f"{host or 'portal'}:{registry.WEB_PORTS['portal']}" in jobs["bbi-web"]
    assert doc["rule_files"] == ["alerts.yml"]
