"""`python -m bench.run [names...]`: start a real broker and PostgreSQL, run the benchmarks,
write BENCHMARKS.md (figures, ceilings measured in the same run, ratios, medians)."""
from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

from bench.common import Row, git_rev, machine, table
from devtools import testing_infra
from devtools.local_postgres import create_database

# Each module has DEFAULT_N and run(kafka, pg_url, n, runs) -> Row | list[Row]; its notes
# (settings that won, profiles, before/after) live in bench/notes/<name>.md.
BENCHES = [
    "registration_http",
    "partner_bulk",
    "outbox_relay",
    "metrics_apply",
    "scrape",
    "freshness",
    "worker_memory",
]
OUT = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("names", nargs="*", default=BENCHES)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0, help="shrink/grow event counts")
    args = parser.parse_args()
    kafka = testing_infra.kafka_for_tests()
    pg = testing_infra.postgres_for_tests()
    rows: list[Row] = []
    for name in args.names:
        mod = importlib.import_module(f"bench.{name}")
        url = create_database(pg, f"bench_{name}_{int(time.time())}")
        print(f"running {name} ...", file=sys.stderr)
        result = mod.run(kafka, url, runs=args.runs, n=max(1, int(mod.DEFAULT_N * args.scale)))
        rows.extend(result if isinstance(result, list) else [result])
    text = (f"# Benchmarks\n\nProduced by `.venv/bin/python -m bench.run {' '.join(sys.argv[1:])}`"
            f" at commit {git_rev()} on {time.strftime('%Y-%m-%d')}.\n\nMachine: {machine()}."
            " Shared and noisy: compare only figures of the same run (ratio column).\n\n"
            + table(rows) + "\n")
    OUT.write_text(text + _notes(args.names))
    print(text)
    return 0


def _notes(names: list[str]) -> str:
    """bench/notes/<name>.md of every benchmark that ran, in order."""
    notes = Path(__file__).with_name("notes")
    parts = [(notes / f"{n}.md").read_text() for n in names if (notes / f"{n}.md").exists()]
    return "\n" + "\n".join(parts) if parts else ""


if __name__ == "__main__":
    raise SystemExit(main())
