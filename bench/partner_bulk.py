"""Partner bulk onboarding: businesses/s into the database + outbox, through the real HTTP
app (the registration service's gunicorn web process, deploy/bin/web, on PostgreSQL), sending
N merchants in the largest batches the endpoint accepts. Ceiling in the same run: a raw bulk
INSERT of the very same rows (umkm, umkm_platforms, outbox) on the same server.

`python -m bench.partner_bulk --profile` instead profiles one batch in-process (the function
the endpoint calls) with cProfile, to see where the time goes."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from bench.common import Row, median_of
from services.common.config import REPO_ROOT
from services.common.db.engine import bulk_insert, make_engine, utcnow
from services.common.db.migrations import upgrade
from services.registration.config import RegistrationSettings, load_settings
from services.registration.partner import handlers
from services.registration.partner import items as batch_items
from services.registration.partner.events import outbox_rows
from services.registration.partner.handlers import create_partner
from services.registration.store import metadata, new_row, umkm, umkm_platforms

DEFAULT_N = 100_000
PARTNER = ("benchmart", "tokopedia", "Bench Mart")
URL = "/v1/partner/onboardings"
_KBLI = ("10792", "47111", "56101", "14111", "96021", "01131", "47912")
_PROVINCES = ("11", "31", "32", "33", "35", "51", "64", "65", "73", "94")
# Batches a partner sends at a time: one, and as many as the web has workers (2, gunicorn.conf).
IN_FLIGHT = (1, 2)
INSERT_BATCHES = 2  # executemany is slow: the reference INSERT row times the first two batches
# The knobs the web process reads from the same environment (consent version, batch size).
_SETTINGS = load_settings()
_TABLES = ("umkm_platforms", "umkm", "outbox", "idempotency_keys")


def merchant(i: int) -> dict[str, Any]:
    """The i-th distinct valid merchant (own NIK, NIB, name and reference)."""
    serial, k = i % 9999 + 1, i // 9999
    day, month, yy = 1 + k % 28, 1 + (k // 28) % 12, 60 + (k // 336) % 40
    day += 40 * (i % 2)  # women's NIKs add 40 to the day
    prov = _PROVINCES[i % len(_PROVINCES)]
    nik = f"{_PROVINCES[(i // 7) % len(_PROVINCES)]}71{i % 60 + 10:02d}" \
          f"{day:02d}{month:02d}{yy:02d}{serial:04d}"
    return {
        "merchant_ref": f"BM-{i}", "store_url": f"https://www.tokopedia.com/toko{i}",
        "business_name": f"Toko Berkah {i}", "owner_name": "Pemilik Toko", "nik": nik,
        "nib": f"{8120000000000 + i}", "phone": f"0812{10_000_000 + i % 89_999_999:08d}",
        "email": f"toko{i}@example.id", "province_code": prov, "regency_code": prov + "71",
        "address": f"Jl. Pasar No. {i % 500 + 1}", "postal_code": f"{10110 + i % 80000}",
        "kbli_code": _KBLI[i % len(_KBLI)], "capital_idr": 10_000_000 + (i % 1000) * 1_000_000,
        "platforms": ["tokopedia"] if i % 3 else ["tokopedia", "shopee"], "qris": i % 2 == 0,
        "consent": {"given": True, "version": _SETTINGS.consent_version},
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Web:
    """The registration web process exactly as deployed (deploy/bin/web: gunicorn gthread)."""

    def __init__(self, pg_url: str, workdir: Path) -> None:
        self.port = _free_port()
        env = dict(os.environ, REGISTRATION_DATABASE_URL=pg_url, PORT=str(self.port),
                   PROMETHEUS_MULTIPROC_DIR=str(workdir / "prom"), BBI_LOG_LEVEL="WARNING",
                   GUNICORN_TIMEOUT="120")
        self.log = open(workdir / "web.log", "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(["bash", "deploy/bin/web", "registration"], cwd=REPO_ROOT,
                                     env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"registration web exited: {(workdir / 'web.log').read_text()}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("registration web not ready in 60 s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.log.close()


def _truncate(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {', '.join(_TABLES)} RESTART IDENTITY"))


def _counts(engine: sa.Engine) -> tuple[int, int, int]:
    with engine.connect() as conn:
        return tuple(conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one()  # type: ignore[return-value]
                     for t in ("umkm", "umkm_platforms", "outbox"))


def _bodies(n: int, batch: int) -> list[tuple[int, bytes]]:
    """Request bodies, encoded before timing (the partner's cost, not ours)."""
    out = []
    for start in range(0, n, batch):
        items = [merchant(i) for i in range(start, min(n, start + batch))]
        out.append((len(items), json.dumps(items).encode()))
    return out


def _raw_rows(settings: RegistrationSettings, n: int,
              platform: str) -> list[tuple[list, list, list]]:
    """The rows the endpoint writes, built before timing: per batch (umkm, umkm_platforms,
    outbox). Built with the path's own functions: only the inserts are timed."""
    batches = []
    size = _SETTINGS.partner_max_items
    for start in range(0, n, size):
        now = utcnow()
        _, valid = batch_items.validate_items(
            settings, [merchant(i) for i in range(start, min(n, start + size))])
        rows = [new_row(settings, d, now, "partner", "registered", PARTNER[0]) for _, d in valid]
        plats = [{"umkm_id": r["id"], "platform": platform, "store_url": d["store_url"],
                  "onboarded_at": now} for r, (_, d) in zip(rows, valid, strict=True)]
        out = list(outbox_rows(rows, platform, now, ""))
        batches.append((rows, plats, out))
    return batches


def run(kafka: str, pg_url: str, n: int = DEFAULT_N, runs: int = 3) -> list[Row]:
    del kafka  # the path ends in the outbox; the relay has its own benchmark
    upgrade("registration", pg_url)
    engine = make_engine(pg_url)
    settings = load_settings(database_url=pg_url)
    api_key = create_partner(engine, settings, *PARTNER)
    batch = _SETTINGS.partner_max_items
    bodies = _bodies(n, batch)
    headers = {"X-API-Key": api_key, "Content-Type": "application/json"}

    def http_once(url: str, in_flight: int) -> float:
        """All N merchants, `in_flight` batches at a time (one connection each)."""
        _truncate(engine)
        clients = [httpx.Client(base_url=url, timeout=300) for _ in range(in_flight)]
        for c in clients:
            c.get("/readyz")  # connect before timing

        def send(k: int) -> None:
            for size, body in bodies[k::in_flight]:
                r = clients[k].post(URL, content=body, headers=headers)
                r.raise_for_status()
                created = r.json()["summary"]["created"]
                if created != size:
                    raise RuntimeError(f"{created} of {size} created: {r.text[:500]}")

        t0 = time.perf_counter()
        with ThreadPoolExecutor(in_flight) as pool:
            for f in [pool.submit(send, k) for k in range(in_flight)]:
                f.result()
        dt = time.perf_counter() - t0
        for c in clients:
            c.close()
        if _counts(engine) != (n, n, 2 * n):
            raise RuntimeError(f"rows after the run: {_counts(engine)}")
        return n / dt

    results: dict[int, tuple[float, list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-partner-") as tmp:
        web = _Web(pg_url, Path(tmp))
        try:
            for in_flight in IN_FLIGHT:
                results[in_flight] = median_of(lambda k=in_flight: http_once(web.url, k), runs)
        finally:
            web.stop()

    raw = _raw_rows(settings, n, PARTNER[1])
    outbox = metadata.tables["outbox"]

    def raw_once() -> float:
        _truncate(engine)
        t0 = time.perf_counter()
        for rows, plats, out in raw:  # one transaction per batch, as the endpoint does
            with engine.begin() as conn:
                bulk_insert(conn, umkm, rows)  # COPY: the fastest bulk load PostgreSQL has
                bulk_insert(conn, umkm_platforms, plats)
                bulk_insert(conn, outbox, out)
        dt = time.perf_counter() - t0
        if _counts(engine) != (n, n, 2 * n):
            raise RuntimeError(f"rows after the raw insert: {_counts(engine)}")
        return n / dt

    def insert_once() -> float:
        """The same rows by executemany INSERTs (what the path did before COPY), two batches."""
        _truncate(engine)
        part = raw[:INSERT_BATCHES]
        t0 = time.perf_counter()
        for rows, plats, out in part:
            with engine.begin() as conn:
                conn.execute(umkm.insert(), rows)
                conn.execute(umkm_platforms.insert(), plats)
                conn.execute(outbox.insert(), out)
        return sum(len(r) for r, _, _ in part) / (time.perf_counter() - t0)

    ceiling, cruns = median_of(raw_once, runs)
    inserts, iruns = median_of(insert_once, runs)
    engine.dispose()
    done = sum(len(r) for r, _, _ in raw[:INSERT_BATCHES])
    out = [Row(f"partner bulk onboarding (HTTP, gunicorn), {k} batch{'es' if k > 1 else ''} "
               "in flight", f"businesses/s into DB + outbox, {n:,} merchants in batches of "
               f"{batch:,}", value, "raw COPY of the same rows", ceiling,
               ">= 20,000/s and >= 0.5x", vruns, cruns)
           for k, (value, vruns) in results.items()]
    return out + [Row("raw bulk INSERT (executemany) of the same rows",
                      f"businesses/s into DB + outbox, {done:,} of them", inserts,
                      "raw COPY of the same rows", ceiling, "reference", iruns, cruns)]


def profile(n: int = 10_000) -> None:
    """cProfile of one batch through the function the endpoint calls (in-process)."""
    import cProfile
    import pstats

    from devtools import testing_infra
    from devtools.local_postgres import create_database

    url = create_database(testing_infra.postgres_for_tests(), f"bench_prof_{int(time.time())}")
    upgrade("registration", url)
    engine = make_engine(url)
    settings = load_settings(database_url=url)
    create_partner(engine, settings, *PARTNER)
    with engine.connect() as conn:
        who = conn.execute(sa.select(metadata.tables["partners"])).one()
    def once(start: int, prof: Any = None) -> float:
        body = json.dumps([merchant(i) for i in range(start, start + n)]).encode()
        t0, c0 = time.perf_counter(), time.process_time()
        if prof:
            prof.enable()
        items = batch_items.parse_batch(body, "application/json", n)
        out = handlers.onboard_batch(engine, settings, who, items)
        json.dumps(out, default=str)  # the response, as the endpoint encodes it
        if prof:
            prof.disable()
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        assert out["summary"]["created"] == n, out["summary"]
        print(f"{'profiled' if prof else 'unprofiled'}: {n} merchants in {dt:.2f} s = "
              f"{n / dt:,.0f}/s, CPU {cpu / n * 1e6:.0f} us per merchant")
        return dt

    once(0)
    prof = cProfile.Profile()
    once(n, prof)
    pstats.Stats(prof).sort_stats(sys.argv[2] if len(sys.argv) > 2 else "tottime").print_stats(35)


if __name__ == "__main__":
    if "--profile" in sys.argv:
        profile()
