"""Real Kafka and PostgreSQL for the test suite, independent of pytest.

A session-scoped fixture calls `kafka_for_tests()` / `postgres_for_tests()` once; each starts
its server on a free port the first time it is called in a process (or reuses the one named
by BBI_TEST_KAFKA / BBI_TEST_POSTGRES), and stops it and deletes its data at process exit.

When a server cannot be had:
  - with CI=true: `InfraRequired` (a plain RuntimeError) -- CI must never pass by skipping the
    integration tests because, say, Java or PostgreSQL went missing from the machine;
  - otherwise: `InfraUnavailable`, which a fixture may turn into pytest.skip on a laptop.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from devtools import local_kafka, local_postgres

REPO_ROOT = Path(__file__).resolve().parents[1]

_cache: dict[str, str] = {}


class InfraUnavailable(Exception):
    """A test server could not be started and we are not on CI (skipping is allowed)."""


class InfraRequired(RuntimeError):
    """A test server could not be started on CI: a hard failure, never a skip."""


def on_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def _unavailable(what: str, exc: BaseException) -> Exception:
    msg = f"cannot start {what} for the tests: {exc}"
    if on_ci():
        return InfraRequired(msg + "\n(CI=true: integration servers are required, not skipped)")
    return InfraUnavailable(msg)


def _once(key: str, make: Callable[[], str]) -> str:
    if key not in _cache:
        _cache[key] = make()
    return _cache[key]


def _cleanup(stop: Callable[[], object], data_dir: Path) -> None:
    try:
        stop()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def kafka_for_tests() -> str:
    """Bootstrap servers ("127.0.0.1:PORT") of a broker for this test process."""
    if env := os.environ.get("BBI_TEST_KAFKA"):
        return env

    def make() -> str:
        data_dir = REPO_ROOT / "var" / f"test-kafka-{os.getpid()}"
        shutil.rmtree(data_dir, ignore_errors=True)
        try:
            broker = local_kafka.start(port=local_kafka.free_port(), data_dir=data_dir)
        except Exception as exc:
            shutil.rmtree(data_dir, ignore_errors=True)
            raise _unavailable("Kafka", exc) from exc
        atexit.register(_cleanup, lambda: broker.stop(timeout=15), data_dir)
        return broker.bootstrap

    return _once("kafka", make)


def started_kafka() -> str | None:
    """The test broker's bootstrap servers if this process started (or was given) one."""
    return _cache.get("kafka") or os.environ.get("BBI_TEST_KAFKA") or None


def postgres_for_tests() -> str:
    """Base SQLAlchemy URL ("postgresql+psycopg://postgres@127.0.0.1:PORT") of a server.

    Make databases on it with `local_postgres.create_database(base_url, name)`.
    """
    if env := os.environ.get("BBI_TEST_POSTGRES"):
        return env

    def make() -> str:
        name = f"test-postgres-{os.getpid()}"
        data_dir = REPO_ROOT / "var" / name
        try:
            shutil.rmtree(data_dir, ignore_errors=True)
            try:
                pg = local_postgres.start(port=local_kafka.free_port(), data_dir=data_dir)
            except local_postgres.PostgresPathError:
                # As root with the repo under e.g. /root the `postgres` user cannot reach
                # ./var: a directory under /tmp always works.
                shutil.rmtree(data_dir, ignore_errors=True)
                data_dir = Path(tempfile.mkdtemp(prefix=f"bbi-{name}-"))
                pg = local_postgres.start(port=local_kafka.free_port(), data_dir=data_dir)
        except Exception as exc:
            shutil.rmtree(data_dir, ignore_errors=True)
            raise _unavailable("PostgreSQL", exc) from exc
        atexit.register(_cleanup, pg.stop, data_dir)
        return pg.base_url

    return _once("postgres", make)
