"""The production migration command (the k8s Job's and compose's init args) on a real database."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from services.common.config import REPO_ROOT


def test_the_job_command_migrates_each_named_service_to_head(tmp_path: Path) -> None:
    env = {**os.environ,
           "REGISTRATION_DATABASE_URL": f"sqlite:///{tmp_path}/registration.db",
           "METRICS_DATABASE_URL": f"sqlite:///{tmp_path}/metrics.db"}
    out = subprocess.run([sys.executable, "-m", "services.common.db.migrations",
                          "registration", "metrics"], cwd=REPO_ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["registration: at head", "metrics: at head"]
    for name, table in [("registration", "partners"), ("metrics", "processed_events")]:
        engine = sa.create_engine(f"sqlite:///{tmp_path}/{name}.db")
        assert table in sa.inspect(engine).get_table_names()
        engine.dispose()


def test_an_unknown_service_is_refused_before_touching_any_database(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "services.common.db.migrations", "payments"],
                         cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "payments: no migrations" in out.stderr
