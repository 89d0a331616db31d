"""Each prodlike scenario's record (what was injected, the counts, the details) in
var/prodlike/results.json, one entry per scenario replaced on each run; RELIABILITY.md quotes it."""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.common.config import REPO_ROOT

RESULTS_PATH = Path(os.environ.get("BBI_PRODLIKE_RESULTS",
                                   REPO_ROOT / "var" / "prodlike" / "results.json"))
COUNT_KEYS = ("accepted", "published", "applied", "lost", "duplicated", "http_5xx",
              "seconds_to_recover")


@dataclass
class Outcome:
    """Checks are collected, not raised one by one, so the record always shows every count and
    every failed check; `verify()` then fails the test."""

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
        entry = {
            "scenario": self.scenario, "injected": self.injected,
            "counts": {k: self.counts.get(k) for k in COUNT_KEYS} | {
                k: v for k, v in self.counts.items() if k not in COUNT_KEYS},
            "details": self.details,
            "result": "pass" if not self.failures and not error else "fail",
            "failures": self.failures + ([error] if error else []),
            "duration_s": round(time.monotonic() - self.started, 1),
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        RESULTS_PATH.parent.mkdir(parents=True, exist_ok=True)
        try:
            data = json.loads(RESULTS_PATH.read_text())
        except (OSError, ValueError):
            data = {}
        data[self.scenario] = entry
        tmp = RESULTS_PATH.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        tmp.replace(RESULTS_PATH)
