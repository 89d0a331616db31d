"""Render var/faults/results.json (written by the fault tests) as tests/faults/RESULTS.md:
`.venv/bin/python -m tests.faults.report ["<command>" ["<note>"]]` after
`CI=true .venv/bin/pytest -q tests/faults`."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from tests.faults.results import COUNT_KEYS, RESULTS_PATH

OUT = Path(__file__).with_name("RESULTS.md")
ORDER = ("broker_sigkilled_30s_under_traffic",
         "metrics_worker_sigkilled_10_times_while_consuming_100k",
         "postgres_restarted_under_traffic", "poison_on_every_topic_every_consumer",
         "second_metrics_worker_joins_then_leaves_mid_stream")
TEST_FILE = {ORDER[0]: "test_broker_outage.py", ORDER[1]: "test_metrics_worker_kills.py",
             ORDER[2]: "test_postgres_restart.py", ORDER[3]: "test_poison_events.py",
             ORDER[4]: "test_rebalance.py"}


def _fmt(v: Any) -> str:
    return "-" if v is None else (f"{v:,}" if isinstance(v, int) else str(v))


def render(data: dict[str, Any], command: str, commit: str, note: str = "") -> str:
    lines = ["# Fault tests: results of the last run", "",
             f"Command: `{command}` (commit {commit}). Raw record: `var/faults/results.json`.",
             *([note] if note else []),
             "Every scenario runs against a real Kafka 4.1 broker and real PostgreSQL, with the",
             "services as real processes (gunicorn web + worker) from `tests/e2e/stack.py`.", "",
             "| scenario | result | " + " | ".join(COUNT_KEYS) + " | duration s |",
             "|---|---|" + "---|" * len(COUNT_KEYS) + "---|"]
    names = [n for n in ORDER if n in data] + sorted(set(data) - set(ORDER))
    for n in names:
        e = data[n]
        lines.append(f"| {n} | {e['result']} | " +
                     " | ".join(_fmt(e["counts"].get(k)) for k in COUNT_KEYS) +
                     f" | {e['duration_s']} |")
    for n in names:
        e = data[n]
        lines += ["", f"## {n}", "", f"Test: `tests/faults/{TEST_FILE.get(n, '?')}`. "
                  f"Result: **{e['result']}** ({e['finished_at']}).", "",
                  f"Injected: {e['injected']}.", "", "Counts:", ""]
        lines += [f"- {k}: {_fmt(v)}" for k, v in e["counts"].items()]
        if e["failures"]:
            lines += ["", "Failures:", ""] + [f"- {f}" for f in e["failures"]]
        lines += ["", "Details:", "", "```json", json.dumps(e["details"], indent=1,
                                                           sort_keys=True), "```"]
    return "\n".join(lines) + "\n"


def main() -> None:
    import subprocess

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    # argv: [command [note]]: the command that produced the results, and e.g. its wall time.
    command = sys.argv[1] if len(sys.argv) > 1 else "CI=true .venv/bin/pytest -q tests/faults"
    note = " ".join(sys.argv[2:])
    OUT.write_text(render(json.loads(RESULTS_PATH.read_text()), command, commit, note))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
