"""What each fault scenario injected and what it counted, written to var/faults/results.json
(one entry per scenario, replaced on each run) and rendered into RESULTS.md by `report`."""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from services.common.config import REPO_ROOT

RESULTS_PATH = Path(os.environ.get("BBI_FAULTS_RESULTS", REPO_ROOT / "var" / "faults" /
                                   "results.json"))
COUNT_KEYS = ("accepted", "published", "applied", "lost", "duplicated")


@dataclass
class Outcome:
    """One scenario's record: checks are collected (not raised one by one) so the artifact
    always shows every count and every failed check, then `verify()` fails the test."""

    # Where records go and which counts lead them; the prodlike suite overrides both.
    results_path: ClassVar[Path] = RESULTS_PATH
    count_keys: ClassVar[tuple[str, ...]] = COUNT_KEYS

    scenario: str
    injected: str = ""
    counts: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def check(self, ok: bool, what: str) -> bool:
        if not ok:
            self.failures.append(what)
        return ok

    def verify(self) -> None:
        assert not self.failures, f"{self.scenario}: " + "; ".join(self.failures)

    def save(self, error: str = "") -> None:
        result = "pass" if not self.failures and not error else "fail"
        path = self.results_path
        entry = {
            "scenario": self.scenario,
            "injected": self.injected,
            "counts": {k: self.counts.get(k) for k in self.count_keys} | {
                k: v for k, v in self.counts.items() if k not in self.count_keys},
            "details": self.details,
            "result": result,
            "failures": self.failures + ([error] if error else []),
            "duration_s": round(time.monotonic() - self.started, 1),
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            data = {}
        data[self.scenario] = entry
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        tmp.replace(path)
