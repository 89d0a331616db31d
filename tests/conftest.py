"""Shared fixtures: a real Kafka broker and a real PostgreSQL server for the whole session
(started by devtools.testing_infra), and fresh databases per test on either backend."""
from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools import testing_infra
from devtools.local_postgres import create_database
from services.common.config import Settings

# Fails the run when personal data reaches a log line, an event or a metric label.
pytest_plugins = ["tests.security.pii_guard"]
BACKENDS = ["sqlite", "postgresql"]

# Unit tests sign their own tokens (devtools.dev_tokens): development auth, with a secret
# that exists only here. Set for the whole session, whatever the shell says, so a developer's
# BBI_* variables never change a verdict; tests on the identity provider pass their own
# settings (the `keycloak` fixture, tests/integration/test_auth_*.py).
os.environ.update(BBI_AUTH_MODE="dev", BBI_JWT_ALGORITHM="HS256",
                  BBI_JWT_SECRET="tests-only-hs256-secret-" + "x" * 16,
                  BBI_JWT_ISSUER="bbi-tests", BBI_JWT_AUDIENCE="bbi")
for _name in ("BBI_JWT_JWKS_URL", "BBI_JWT_LEEWAY_SECONDS"):
    os.environ.pop(_name, None)


def _need(make: Callable[[], str]) -> str:
    try:
        return make()
    except testing_infra.InfraUnavailable as exc:  # only off CI; on CI this is InfraRequired
        pytest.skip(f"not on CI and the server cannot start here: {exc}")


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """Bootstrap servers of the real local broker (KRaft, Kafka 4.x)."""
    return _need(testing_infra.kafka_for_tests)


@pytest.fixture(scope="session")
def pg_base_url() -> str:
    return _need(testing_infra.postgres_for_tests)


@pytest.fixture
def db_url_factory(tmp_path: Path, request: pytest.FixtureRequest) -> Callable[[str], str]:
    """make(backend) -> URL of a new empty database ('sqlite' or 'postgresql')."""

    def make(backend: str) -> str:
        if backend == "sqlite":
            return f"sqlite:///{tmp_path / f'{uuid.uuid4().hex[:8]}.db'}"
        base = request.getfixturevalue("pg_base_url")
        return create_database(base, f"t_{uuid.uuid4().hex[:12]}")

    return make


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, db_url_factory: Callable[[str], str]) -> str:
    """A fresh database on each backend: the same test runs on SQLite and on PostgreSQL."""
    if request.param == "postgresql":
        request.applymarker(pytest.mark.postgres)
    return db_url_factory(request.param)


@pytest.fixture
def pg_url(db_url_factory: Callable[[str], str]) -> str:
    """A fresh PostgreSQL database (for tests about real concurrency)."""
    return db_url_factory("postgresql")


@pytest.fixture
def topic_prefix() -> str:
    """Unique topic names per test so tests sharing one broker never see each other's events."""
    return f"t{uuid.uuid4().hex[:8]}."


def make_settings(service: str, db_url: str, kafka: str = "127.0.0.1:1", **kw: object) -> Settings:
    return Settings.from_env(service, database_url=db_url, kafka_bootstrap_servers=kafka, **kw)


@pytest.fixture
def settings_factory() -> Iterator[Callable[..., Settings]]:
    yield make_settings


@pytest.fixture(scope="session")
def keycloak() -> Any:
    """The real identity provider (Keycloak, realm bbi with its dev test users), started once
    per session from the template instance; skipped off CI when Java 21+ or Maven is
    missing, a failure with CI=true."""
    from devtools import keycloak_for_tests

    try:
        return keycloak_for_tests.keycloak_for_tests()
    except testing_infra.InfraUnavailable as exc:
        pytest.skip(f"not on CI and Keycloak cannot start here: {exc}")
