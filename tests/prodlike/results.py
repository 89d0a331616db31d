"""Each prodlike scenario's record (what was injected, the counts, the details) in
var/prodlike/results.json, one entry per scenario replaced on each run; RELIABILITY.md quotes it.
The record itself is the fault suite's (tests/faults/results.py), with its own file and counts."""
from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

from services.common.config import REPO_ROOT
from tests.faults import results as faults_results

RESULTS_PATH = Path(os.environ.get("BBI_PRODLIKE_RESULTS",
                                   REPO_ROOT / "var" / "prodlike" / "results.json"))
COUNT_KEYS = ("accepted", "published", "applied", "lost", "duplicated", "http_5xx",
              "seconds_to_recover")


class Outcome(faults_results.Outcome):
    """A prodlike scenario's record: checks collected, then `verify()` fails the test."""

    results_path: ClassVar[Path] = RESULTS_PATH
    count_keys: ClassVar[tuple[str, ...]] = COUNT_KEYS
