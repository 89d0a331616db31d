"""The public registration rate limit holds (429 + Retry-After, per client address) and lets
the client back in once its window has passed. A 2-second window keeps the test short."""
from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from tests.security.apps import build
from tests.unit.registration_helpers import payload

LIMIT, WINDOW = 5, 2


@pytest.mark.postgres
def test_registration_rate_limit_holds_and_recovers(pg_url: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGISTRATION_RATE_LIMIT", str(LIMIT))
    monkeypatch.setenv("REGISTRATION_RATE_WINDOW_SECONDS", str(WINDOW))
    app, _ = build("registration", pg_url)
    client = app.test_client()
    # Start at the beginning of a window so all LIMIT + extra requests fall inside it.
    time.sleep(WINDOW - time.time() % WINDOW + 0.05)
    attacker = {"REMOTE_ADDR": "203.0.113.7"}
    codes = [client.post("/v1/umkm", json=payload(n), environ_base=attacker).status_code
             for n in range(1, LIMIT + 4)]
    assert codes[:LIMIT] == [201] * LIMIT, codes
    assert codes[LIMIT:] == [429] * 3, codes
    refused = client.post("/v1/umkm", json=payload(50), environ_base=attacker)
    assert refused.status_code == 429 and refused.mimetype == "application/problem+json"
    assert refused.get_json()["code"] == "rate_limited"
    retry = int(refused.headers["Retry-After"])
    assert 1 <= retry <= WINDOW
    # Refused requests are not registered, and another client is not affected.
    other = client.post("/v1/umkm", json=payload(60), environ_base={"REMOTE_ADDR": "198.51.100.9"})
    assert other.status_code == 201
    # A forged X-Forwarded-For does not buy a fresh window (no trusted proxy configured).
    forged = client.post("/v1/umkm", json=payload(61), environ_base=attacker,
                         headers={"X-Forwarded-For": "192.0.2.1"})
    assert forged.status_code == 429
    time.sleep(retry + 0.1)
    again = client.post("/v1/umkm", json=payload(70), environ_base=attacker)
    assert again.status_code == 201, again.get_data(as_text=True)[:300]
    with app.extensions["bbi_engine"].connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM umkm")).scalar_one() == LIMIT + 2
