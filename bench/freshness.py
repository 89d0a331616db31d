"""Freshness: time from a public registration's 201 to its count in the metrics service's
/metrics, with the whole pipeline as processes (registration web + worker/relay, Kafka,
metrics worker/consumer + web) while wrk drives a steady background rate of registrations.

Sampling (bench/notes/freshness.md): a probe thread registers one UMKM every PROBE_EVERY s in a
province x scale that the background load never uses (Aceh, menengah); a poller scrapes
/metrics every POLL_EVERY s and notes when bbi_umkm_registered for that series first reaches
1, 2, 3, ... The k-th visible count is matched with the k-th accepted probe. Events of
different probes may become visible out of order (partitions); matching sorted visibility
times with sorted acceptance times never makes the worst case look better than it is (the
sorted pairing minimises the largest difference over all pairings) and keeps the mean exact.
A probe counts as visible at the END of the scrape that first shows it (conservative)."""
from __future__ import annotations

import re
import statistics
import threading
import time

import httpx

from bench.common import Row
from bench.http_stack import WrkResult, new_stack, owner_token, paced

DEFAULT_N = 15  # seconds of probing per run (--scale shrinks/grows it)
BACKGROUND_RATE = 500.0  # registrations/s from wrk
BACKGROUND_CONNECTIONS = 16
PROBE_EVERY = 0.1
POLL_EVERY = 0.05
PROBE_PROVINCE, PROBE_SCALE, PROBE_CAPITAL = "11", "menengah", 6_000_000_000
VISIBLE_TIMEOUT = 60.0


def _probe_body(nonce: int, k: int) -> dict[str, object]:
    """A valid registration in the probe series; wrk thread ids never reach 99, so the NIB
    (nonce, 99, k) is distinct from every background one."""
    return {
        "business_name": f"Probe {nonce}-{k}", "owner_name": "Sri Rahayu",
        "nik": f"3171011708{45 + k // 9999 % 50:02d}{k % 9999 + 1:04d}",
        "nib": f"{nonce:03d}99{k:08d}", "phone": "0812-3456-7890", "email": "p@example.id",
        "province_code": PROBE_PROVINCE, "regency_code": PROBE_PROVINCE + "71",
        "address": "Jl. Melati No. 1", "postal_code": "23111", "kbli_code": "10792",
        "capital_idr": PROBE_CAPITAL, "platforms": ["shopee"], "qris": True,
        "consent": {"given": True, "version": "2025-01"},
    }


_SERIES = re.compile(r"^bbi_umkm_registered\{province=\"" + PROBE_PROVINCE
                     + r"\",scale=\"" + PROBE_SCALE + r"\"\} ([0-9.e+]+)$", re.M)


def _count(text: str) -> int:
    m = _SERIES.search(text)
    if m is None:
        raise RuntimeError("the probe series is missing from /metrics")
    return int(float(m.group(1)))


def _one_run(reg_url: str, metrics_url: str, seconds: float, nonce: int,
             start_count: int) -> tuple[list[float], list[float], WrkResult]:
    """Probe while wrk runs; returns per-probe freshness (s), scrape durations and wrk's."""
    accepted: list[float] = []
    seen: list[float] = []  # seen[i]: when the count first reached start_count + i + 1
    scrape_s: list[float] = []
    stop_probes = threading.Event()
    probes_done = threading.Event()  # set once the probe thread's last POST has returned
    done_polling = threading.Event()
    errors: list[str] = []

    def probe() -> None:
        with httpx.Client(base_url=reg_url, timeout=10) as c:
            k = 0
            next_at = time.monotonic()
            while not stop_probes.is_set():
                r = c.post("/v1/umkm", json=_probe_body(nonce, k),
                           headers={"X-Forwarded-For": "192.0.2.1",
                                    "Authorization": "Bearer " + owner_token()})
                if r.status_code != 201:
                    errors.append(f"probe {k}: {r.status_code} {r.text[:200]}")
                    return
                accepted.append(time.monotonic())
                k += 1
                next_at += PROBE_EVERY
                time.sleep(max(0.0, next_at - time.monotonic()))

    def poll() -> None:
        with httpx.Client(timeout=10) as c:
            while not done_polling.is_set():
                t0 = time.monotonic()
                text = c.get(metrics_url).text
                t1 = time.monotonic()
                scrape_s.append(t1 - t0)
                while start_count + len(seen) < _count(text):
                    seen.append(t1)
                if probes_done.is_set() and len(seen) >= len(accepted):
                    return
                if probes_done.is_set() and t1 - stop_at > VISIBLE_TIMEOUT:
                    errors.append(f"only {len(seen)} of {len(accepted)} probes became visible")
                    return
                time.sleep(max(0.0, POLL_EVERY - (time.monotonic() - t0)))

    result: list[WrkResult] = []
    load = threading.Thread(target=lambda: result.append(
        paced(reg_url, BACKGROUND_RATE, seconds + 2, BACKGROUND_CONNECTIONS)))
    load.start()
    time.sleep(3)  # paced() calibrates for 2 s first: probe at the steady rate only
    threads = [threading.Thread(target=probe), threading.Thread(target=poll)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop_at = time.monotonic()
    stop_probes.set()
    threads[0].join()
    probes_done.set()
    threads[1].join(VISIBLE_TIMEOUT + 10)
    done_polling.set()
    load.join()
    if len(seen) != len(accepted):
        errors.append(f"{len(seen)} visible for {len(accepted)} accepted probes")
    if errors:
        raise RuntimeError("; ".join(errors))
    return [v - a for v, a in zip(seen, accepted, strict=True)], scrape_s, result[0]


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q / 100 * (len(s) - 1))))]


def run(kafka: str, pg_url: str, n: int = DEFAULT_N, runs: int = 3) -> list[Row]:
    stack = new_stack(kafka, pg_url, ("registration", "metrics"), "freshness")
    p50s, p99s, rates, scrapes, maxes, counts = [], [], [], [], [], []
    try:
        stack.start()
        reg_url, metrics_url = stack.url("registration"), stack.url("metrics", "/metrics")
        count = _count(httpx.get(metrics_url, timeout=10).text)
        for i in range(runs):
            fresh, scrape_s, load = _one_run(reg_url, metrics_url, n, (int(time.time()) + i)
                                             % 1000, count)
            count += len(fresh)
            counts.append(len(fresh))
            p50s.append(1000 * _pct(fresh, 50))
            p99s.append(1000 * _pct(fresh, 99))
            maxes.append(1000 * max(fresh))
            rates.append(load.rate)
            scrapes.append(1000 * statistics.median(scrape_s))
    finally:
        stack.stop()
    probes = f"{statistics.median(counts):.0f} probes/run"
    bg = f"background ~{statistics.median(rates):,.0f} req/s (asked {BACKGROUND_RATE:,.0f})"
    return [
        Row("freshness: 201 -> /metrics", f"p50 ms, {probes}, {bg}", statistics.median(p50s),
            "", None, "—", p50s, []),
        Row("freshness: 201 -> /metrics", f"p99 ms, {probes}, {bg}", statistics.median(p99s),
            "", None, "p99 < 2,000 ms", p99s, []),
        Row("freshness: 201 -> /metrics", "max ms", statistics.median(maxes), "", None, "—",
            maxes, []),
        Row("freshness: background load", "req/s achieved by wrk (paced)",
            statistics.median(rates), "", None, "500/s", rates, []),
        Row("freshness: metrics scrape", "median ms per /metrics scrape (resolution)",
            statistics.median(scrapes), "", None, "—", scrapes, []),
    ]


if __name__ == "__main__":
    import sys

    from bench.common import table
    from devtools import testing_infra
    from devtools.local_postgres import create_database

    pg = create_database(testing_infra.postgres_for_tests(), f"bench_fr_{int(time.time())}")
    n = int(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_N
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    print(table(run(testing_infra.kafka_for_tests(), pg, n, runs)))
