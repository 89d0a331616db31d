"""The whole system as real processes for the journey test (one stack per module)."""
from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.registry import SERVICES
from services.common.config import REPO_ROOT
from tests.e2e.stack import Stack


def running_stack(kafka: str, pg_base: str, extra_env: dict[str, str] | None = None
                  ) -> Iterator[Stack]:
    """Start every service (BBI_E2E_SERVICES narrows them), yield, stop."""
    prefix = f"e{uuid.uuid4().hex[:6]}."
    s = Stack(kafka=kafka, pg_base=pg_base,
              workdir=Path(REPO_ROOT / "var" / f"e2e-{prefix.strip('.')}"), prefix=prefix,
              services=tuple(x for x in SERVICES if x in os.environ.get("BBI_E2E_SERVICES",
                                                                          ",".join(SERVICES))),
              extra_env=extra_env or {})
    try:
        s.start()
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, pg_base_url: str) -> Iterator[Stack]:
    """Services that verify development tokens (BBI_AUTH_MODE=dev, tests/conftest.py)."""
    yield from running_stack(kafka_bootstrap, pg_base_url)
