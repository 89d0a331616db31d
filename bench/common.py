"""Benchmark plumbing: real servers, medians, and the BENCHMARKS.md table."""
from __future__ import annotations

import os
import platform
import statistics
import subprocess
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Row:
    path: str
    figure: str
    value: float
    ceiling_name: str
    ceiling: float | None
    target: str
    runs: list[float]
    ceiling_runs: list[float]

    @property
    def ratio(self) -> float | None:
        return self.value / self.ceiling if self.ceiling else None


def median_of(fn: Callable[[], float], runs: int) -> tuple[float, list[float]]:
    values = [fn() for _ in range(runs)]
    return statistics.median(values), values


def machine() -> str:
    cpu = "unknown cpu"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores, {cpu}, {mem:.0f} GiB, {platform.platform()}"


def git_rev() -> str:
    try:
        return subprocess.check_output(["git", "rev-parse", "--short", "HEAD"], text=True).strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def table(rows: list[Row]) -> str:
    out = ["| path | figure | median | ceiling (same run) | ratio | target | runs |",
           "|---|---|---|---|---|---|---|"]
    for r in rows:
        ceil = f"{_num(r.ceiling)} ({r.ceiling_name})" if r.ceiling else "—"
        ratio = f"{r.ratio:.2f}x" if r.ratio else "—"
        runs = ", ".join(_num(v) for v in r.runs)
        out.append(f"| {r.path} | {r.figure} | {_num(r.value)} | {ceil} | {ratio} | {r.target} "
                   f"| {runs} |")
    return "\n".join(out)


def _num(v: float) -> str:
    """Large figures as integers with separators; small ones (ms, ratios) keep decimals."""
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.2f}"
