"""Fixtures of the production-configuration suite: servers of its own (they are killed and
stopped here, never the session's shared ones), stacks of real service processes, and the
record each scenario writes to var/prodlike/results.json."""
from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from devtools import local_kafka, local_kafka_cluster, testing_infra
from services.common.config import REPO_ROOT
from tests.e2e.stack import Stack
from tests.prodlike.results import Outcome
from tests.security import pii_guard

PRODLIKE_VAR = REPO_ROOT / "var" / "prodlike"


def need(what: str, make: Callable[[], Any]) -> Any:
    """Start a server; off CI a machine without it skips, on CI it fails."""
    try:
        return make()
    except Exception as exc:  # noqa: BLE001 - judged below: skip only off CI
        if testing_infra.on_ci():
            raise testing_infra.InfraRequired(f"cannot start {what}: {exc}") from exc
        pytest.skip(f"not on CI and {what} cannot start here: {exc}")


@pytest.fixture
def own_broker() -> Iterator[local_kafka.LocalBroker]:
    """A single broker only this test uses (it will be stopped under the workers)."""
    data_dir = PRODLIKE_VAR / f"kafka-{uuid.uuid4().hex[:8]}"
    try:
        yield need("a Kafka broker", lambda: local_kafka.start(port=local_kafka.free_port(),
                                                                data_dir=data_dir))
    finally:
        local_kafka.stop_from_pidfile(data_dir, timeout=15)
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="package")
def cluster() -> Iterator[local_kafka_cluster.LocalCluster]:
    """The production Kafka topology on loopback: 3 KRaft nodes, shared by the suite. A test
    that kills a node leaves through `whole_cluster`, which brings every node back."""
    data_dir = PRODLIKE_VAR / f"cluster-{uuid.uuid4().hex[:8]}"
    c = need("a 3-node Kafka cluster", lambda: local_kafka_cluster.start(data_dir))
    try:
        yield c
    finally:
        c.stop(timeout=20)
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def whole_cluster(cluster: local_kafka_cluster.LocalCluster
                  ) -> Iterator[local_kafka_cluster.LocalCluster]:
    """The shared cluster with every node up, before the test and again after it."""
    for node_id in set(cluster.ports) - set(cluster.alive()):
        cluster.start_node(node_id)
    yield cluster
    for node_id in set(cluster.ports) - set(cluster.alive()):
        cluster.start_node(node_id)


@pytest.fixture(scope="package")
def prod_keycloak() -> Iterator[Any]:
    """A Keycloak of this suite's own: the identity-provider scenario adds a signing key and
    freezes it (SIGSTOP), which the session's shared one, or one attached to through
    BBI_TEST_KEYCLOAK, must never see."""
    from devtools import local_keycloak

    data_dir = PRODLIKE_VAR / f"keycloak-{uuid.uuid4().hex[:8]}"
    kc = need("Keycloak", lambda: local_keycloak.start(port=local_kafka.free_port(),
                                                        data_dir=data_dir))
    try:
        yield kc
    finally:
        kc.stop(timeout=20)
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="package")
def prod_stack(cluster: local_kafka_cluster.LocalCluster, prod_keycloak: Any,
               pg_base_url: str) -> Iterator[Any]:
    """Every service's web and worker in the production configuration, behind nginx, on the
    3-node cluster and Keycloak; the topics without a prefix, as in production."""
    from tests.prodlike.stack import ProdlikeStack

    s = ProdlikeStack(kafka=cluster.bootstrap, pg_base=pg_base_url, prefix="",
                      workdir=PRODLIKE_VAR / f"stack-{uuid.uuid4().hex[:6]}", cluster=cluster,
                      keycloak=prod_keycloak)
    try:
        s.start()
        yield s
        # What the stack's processes published on the cluster, for the session's PII guard.
        pii_guard.broker_records(cluster.bootstrap)
    finally:
        s.stop()


@pytest.fixture
def make_stack(request: pytest.FixtureRequest) -> Iterator[Callable[..., Stack]]:
    """make(kafka, pg_base, services=..., **extra_env) -> a started Stack, stopped at teardown."""
    stacks: list[Stack] = []

    def make(kafka: str, pg_base: str, services: tuple[str, ...], **extra_env: str) -> Stack:
        prefix = f"p{uuid.uuid4().hex[:6]}."
        s = Stack(kafka=kafka, pg_base=pg_base, prefix=prefix, services=services,
                  workdir=PRODLIKE_VAR / f"{request.node.name[:40]}-{prefix.strip('.')}",
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
