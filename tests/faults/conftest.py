"""Fixtures of the fault tests: brokers and PostgreSQL clusters of their own (the shared
session servers must never be killed under other tests), stacks of real service processes,
and the outcome record every scenario writes to var/faults/results.json."""
from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools import local_kafka, local_postgres, testing_infra
from services.common.config import REPO_ROOT
from tests.e2e.stack import Stack
from tests.faults.results import Outcome

FAULTS_VAR = REPO_ROOT / "var" / "faults"


def _need(what: str, make: Callable[[], Any]) -> Any:
    """Start a server; off CI a machine without Java/PostgreSQL skips, on CI it fails."""
    try:
        return make()
    except Exception as exc:  # noqa: BLE001 - judged below: skip only off CI
        if testing_infra.on_ci():
            raise testing_infra.InfraRequired(
                f"cannot start {what} for the fault tests: {exc}") from exc
        pytest.skip(f"not on CI and {what} cannot start here: {exc}")


@pytest.fixture
def own_broker() -> Iterator[local_kafka.LocalBroker]:
    """A broker only this test uses (it will be SIGKILLed), on its own port and data dir."""
    data_dir = FAULTS_VAR / f"kafka-{uuid.uuid4().hex[:8]}"
    holder: dict[str, local_kafka.LocalBroker] = {}

    def make() -> local_kafka.LocalBroker:
        holder["b"] = local_kafka.start(port=local_kafka.free_port(), data_dir=data_dir)
        return holder["b"]

    try:
        yield _need("a second Kafka broker", make)
    finally:
        # The test may have replaced the broker (restart): stop whatever runs on the dir.
        local_kafka.stop_from_pidfile(data_dir, timeout=15)
        if "b" in holder:
            holder["b"].kill()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def own_postgres() -> Iterator[local_postgres.LocalPostgres]:
    """A PostgreSQL cluster only this test uses (it will be restarted under load)."""
    data_dir = FAULTS_VAR / f"pg-{uuid.uuid4().hex[:8]}"
    holder: dict[str, Path] = {"dir": data_dir}

    def make() -> local_postgres.LocalPostgres:
        port = local_kafka.free_port()
        # fsync and synchronous_commit on, as in production: a crash-like stop must not
        # lose a commit the client was told about (the throwaway test clusters turn them off).
        try:
            return local_postgres.start(port=port, data_dir=data_dir, fsync=True)
        except local_postgres.PostgresPathError:
            # As root with the repo under /root the `postgres` user cannot reach ./var.
            shutil.rmtree(data_dir, ignore_errors=True)
            holder["dir"] = Path(tempfile.mkdtemp(prefix="bbi-faults-pg-"))
            return local_postgres.start(port=port, data_dir=holder["dir"], fsync=True)

    try:
        yield _need("a second PostgreSQL cluster", make)
    finally:
        try:
            local_postgres.stop(holder["dir"], mode="immediate")
        finally:
            shutil.rmtree(holder["dir"], ignore_errors=True)


@pytest.fixture
def make_stack(request: pytest.FixtureRequest) -> Iterator[Callable[..., Stack]]:
    """make(kafka, pg_base, services=..., **extra_env) -> a started Stack, stopped at teardown."""
    stacks: list[Stack] = []

    def make(kafka: str, pg_base: str, services: tuple[str, ...], **extra_env: str) -> Stack:
        prefix = f"f{uuid.uuid4().hex[:6]}."
        s = Stack(kafka=kafka, pg_base=pg_base, prefix=prefix, services=services,
                  workdir=FAULTS_VAR / f"{request.node.name[:40]}-{prefix.strip('.')}",
                  extra_env=dict(extra_env))
        stacks.append(s)
        s.start()
        return s

    try:
        yield make
    finally:
        for s in stacks:
            s.stop()


@pytest.fixture
def outcome(request: pytest.FixtureRequest) -> Iterator[Outcome]:
    """The scenario's record; saved at teardown whatever happened (an error is recorded)."""
    o = Outcome(scenario=request.node.name.removeprefix("test_"))
    yield o
    rep = getattr(request.node, "rep_call", None)
    error = ""
    if rep is not None and rep.failed and not o.failures:
        error = str(rep.longrepr).strip().splitlines()[-1][:500] if rep.longrepr else "failed"
    o.save(error)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    rep = yield
    if rep.when == "call":
        item.rep_call = rep  # type: ignore[attr-defined]
    return rep




@pytest.fixture(scope="session")
def big_stream() -> tuple[list[Any], Any]:
    """~100,000 valid events (tests/fixtures/metrics_sample.py scaled up) and their expected
    aggregates; built once per session because validating them costs ~10 s of CPU."""
    from tests.fixtures.metrics_sample import expected, mixed_stream

    events = mixed_stream(BIG_STREAM_UMKM, seed=2020)
    return events, expected(events)


# mixed_stream makes ~4.5 events per business: 22,500 businesses give just over 100,000.
BIG_STREAM_UMKM = 22_500
