"""The relay loop survives a database outage that hits its leadership lock: it backs off and
publishes once the database answers again (found by tests/faults: the relay thread died after
a PostgreSQL restart while the worker process kept running, so accepted events stayed put)."""
from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from services.common.db.engine import make_engine, new_metadata, utcnow
from services.common.messaging.outbox import OutboxRelay, Publisher


class RecordingPublisher(Publisher):
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, bytes]] = []

    def publish(self, batch: list[tuple[str, str, bytes]]) -> list[Exception | None]:
        self.sent += batch
        return [None] * len(batch)


class LockLostOnce(OutboxRelay):
    """Its lock connection fails like a connection whose server was restarted, twice."""

    failures = 2
    released = 0

    def acquire_leadership(self) -> bool:
        if self.failures:
            self.failures -= 1
            raise sa.exc.OperationalError("SELECT pg_try_advisory_lock(1)", {},
                                          Exception("server closed the connection"))
        return True

    def release(self) -> None:
        self.released += 1
        super().release()


def test_relay_keeps_running_when_its_lock_connection_dies(tmp_path: Path) -> None:
    md = new_metadata()
    engine = make_engine(f"sqlite:///{tmp_path / 'relay.db'}")
    md.create_all(engine)
    with engine.begin() as conn:
        conn.execute(md.tables["outbox"].insert().values(
            topic="bbi.umkm", key="k", event_id="e-1", event_type="bbi.umkm.verified.v1",
            payload=b"{}", created_at=utcnow()))
    publisher = RecordingPublisher()
    relay = LockLostOnce(engine, md, publisher, "demo")
    loops = iter(range(100))
    relay.run_forever(lambda: bool(publisher.sent) or next(loops) >= 99, max_backoff=0.01)
    assert publisher.sent == [("bbi.umkm", "k", b"{}")]
    assert relay.failures == 0 and relay.released >= 2  # each failure dropped the lock conn
    with engine.connect() as conn:
        left = conn.execute(sa.select(sa.func.count()).select_from(md.tables["outbox"])).scalar()
    assert left == 0
