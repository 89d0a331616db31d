"""Every Grafana panel and Prometheus rule of deploy/, evaluated by a real Prometheus scraping
every web and worker process of a running stack. The test makes its own data (its own stack,
tests/e2e/activity.py) and waits for Prometheus' own progress (completed scrapes and rule
evaluations after the data), never a fixed time: alone or after other tests, slow or fast."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.e2e import activity
from tests.e2e.prometheus_probe import Prometheus, alert_exprs, concrete, dashboard_queries
from tests.e2e.prometheus_probe import metric_names as names_in
from tests.e2e.stack import Stack

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


def test_every_dashboard_panel_and_alert_works_against_the_running_stack(
        stack: Stack, tmp_path: Path) -> None:
    prom = Prometheus(stack, tmp_path / "prom")
    prom.start()
    try:
        activity.produce(stack)  # returns once the metrics service has counted all of it
        prom.wait_scraped_after(time.time(), targets=2 * len(stack.services) + 1)
        exported = prom.names()
        queries = dashboard_queries()
        assert queries, "dashboards have panels"
        empty, unknown = [], []
        for board, title, expr in queries:
            unknown += [f"{board}/{title}: {n}" for n in names_in(expr) if n not in exported]
            res = prom.query(concrete(expr))
            assert res["status"] == "success", (board, title, expr, res)
            if not res["data"]["result"]:
                empty.append(f"{board}/{title}: {expr}")
        assert not unknown, "dashboards use metrics no service exports:\n" + "\n".join(unknown)
        assert not empty, "panels with no data:\n" + "\n".join(empty)
        for name, expr in alert_exprs():
            res = prom.query(expr)
            assert res["status"] == "success", (name, res)
            for n in names_in(expr):
                assert n in exported, f"alert {name} uses {n}, which no service exports"
    finally:
        prom.stop()
