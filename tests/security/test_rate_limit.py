"""The public registration rate limit holds (429 + Retry-After, per client address) and lets
the client back in once its window has passed. The limiter reads a clock the test moves (the
counts stay in PostgreSQL), so the verdict does not depend on how fast requests are served."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from services.registration import ratelimit
from tests.security.apps import bearer, build
from tests.unit.registration_helpers import payload

LIMIT, WINDOW = 5, 3600
START = 1_700_002_800.0  # a window's first second (a multiple of WINDOW)


class Clock:
    """Stands in for the `time` module inside the limiter: time passes only when told."""

    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now


@pytest.mark.postgres
def test_registration_rate_limit_holds_and_recovers(pg_url: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGISTRATION_RATE_LIMIT", str(LIMIT))
    monkeypatch.setenv("REGISTRATION_RATE_WINDOW_SECONDS", str(WINDOW))
    clock = Clock(START + 10)
    monkeypatch.setattr(ratelimit, "time", clock)
    app, s = build("registration", pg_url)
    client = app.test_client()
    own = bearer(s, "umkm", "kc-owner-1")  # registering needs a signed-in owner
    attacker = {"REMOTE_ADDR": "203.0.113.7"}
    codes = [client.post("/v1/umkm", json=payload(n), environ_base=attacker,
                         headers=own).status_code for n in range(1, LIMIT + 4)]
    assert codes[:LIMIT] == [201] * LIMIT, codes
    assert codes[LIMIT:] == [429] * 3, codes
    refused = client.post("/v1/umkm", json=payload(50), environ_base=attacker, headers=own)
    assert refused.status_code == 429 and refused.mimetype == "application/problem+json"
    assert refused.get_json()["code"] == "rate_limited"
    assert refused.headers["Retry-After"] == str(WINDOW - 10)  # the rest of the window
    # Refused requests are not registered, and another client is not affected.
    other = client.post("/v1/umkm", json=payload(60), environ_base={"REMOTE_ADDR": "198.51.100.9"},
                        headers=own)
    assert other.status_code == 201
    # A forged X-Forwarded-For does not buy a fresh window (no trusted proxy configured).
    forged = client.post("/v1/umkm", json=payload(61), environ_base=attacker,
                         headers={"X-Forwarded-For": "192.0.2.1"} | own)
    assert forged.status_code == 429
    clock.now = START + WINDOW - 0.5  # the window's last moment: still refused
    late = client.post("/v1/umkm", json=payload(62), environ_base=attacker, headers=own)
    assert late.status_code == 429 and late.headers["Retry-After"] == "1"
    clock.now = START + WINDOW  # the next window
    again = client.post("/v1/umkm", json=payload(70), environ_base=attacker, headers=own)
    assert again.status_code == 201, again.get_data(as_text=True)[:300]
    with app.extensions["bbi_engine"].connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM umkm")).scalar_one() == LIMIT + 2
