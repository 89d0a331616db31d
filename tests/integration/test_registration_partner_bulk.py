"""The partner bulk path's database writes (COPY on PostgreSQL, executemany on SQLite), on the
real servers: constraint errors, type checks, and concurrent overlapping batches."""
from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from services.common.db.engine import bulk_insert, is_unique_violation, make_engine
from services.common.db.migrations import upgrade
from services.registration.app import create_app
from services.registration.config import load_settings
from services.registration.partner.handlers import create_partner
from services.registration.store import metadata, umkm, umkm_platforms
from tests.unit.registration_helpers import payload

URL = "/v1/partner/onboardings"


def _platform_rows(ids: list[str]) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    return [{"umkm_id": i, "platform": "shopee", "store_url": None, "onboarded_at": now}
            for i in ids]


def _app(url: str) -> Any:
    upgrade("registration", url)
    engine = make_engine(url)
    settings = load_settings(database_url=url)
    return create_app(settings, engine), engine, settings


def test_bulk_insert_unique_violation_is_an_integrity_error(db_url: str) -> None:
    app, engine, settings = _app(db_url)
    key = create_partner(engine, settings, "shopee", "shopee", "Shopee")
    ids = [i["id"] for i in app.test_client().post(
        URL, json=[payload(n, merchant_ref=f"S{n}") for n in range(1, 4)],
        headers={"X-API-Key": key}).get_json()["items"]]
    with pytest.raises(sa.exc.IntegrityError) as err, engine.begin() as conn:
        bulk_insert(conn, metadata.tables["outbox"], [
            {"topic": "t", "key": "k", "event_id": f"e{n}", "event_type": "x",
             "payload": b"{}", "created_at": datetime.now(UTC)} for n in range(5)])
        bulk_insert(conn, umkm_platforms, _platform_rows(ids))  # already there: PK
    assert is_unique_violation(err.value)
    with engine.connect() as conn:  # the whole transaction rolled back
        assert conn.execute(sa.text("SELECT count(*) FROM outbox WHERE topic = 't'")
                            ).scalar_one() == 0


def test_bulk_insert_refuses_naive_datetimes_like_an_insert(db_url: str) -> None:
    _, engine, _ = _app(db_url)
    naive = [{"topic": "t", "key": "k", "event_id": "e1", "event_type": "x",
              "payload": b"{}", "created_at": datetime(2025, 1, 1)}]
    with pytest.raises((ValueError, sa.exc.StatementError)), engine.begin() as conn:
        bulk_insert(conn, metadata.tables["outbox"], naive)


def test_bulk_insert_round_trips_values(db_url: str) -> None:
    _, engine, _ = _app(db_url)
    when = datetime(2025, 5, 14, 10, 0, 0, 123456, tzinfo=UTC)
    rows = [{"topic": "t\tab", "key": "k\\1", "event_id": f"e{n}", "event_type": "x",
             "payload": bytes([0, 92, 10, n]), "created_at": when} for n in range(100)]
    with engine.begin() as conn:
        bulk_insert(conn, metadata.tables["outbox"], rows)
    t = metadata.tables["outbox"]
    with engine.connect() as conn:
        got = conn.execute(sa.select(t.c.topic, t.c.key, t.c.payload, t.c.created_at,
                                     t.c.state, t.c.attempts).order_by(t.c.id)).all()
    assert [tuple(g) for g in got] == [("t\tab", "k\\1", bytes([0, 92, 10, n]), when,
                                        "pending", 0) for n in range(100)]


def test_concurrent_overlapping_batches_create_each_merchant_once(pg_url: str) -> None:
    """Both batches look up before either commits; the unique constraints decide, the loser
    retries and reports the winner's rows as already registered."""
    app, engine, settings = _app(pg_url)
    key = create_partner(engine, settings, "shopee", "shopee", "Shopee")
    batches = [[payload(n, merchant_ref=f"S{n}") for n in range(lo, lo + 300)]
               for lo in (1, 151)]
    out: list[Any] = [None, None]
    start = threading.Barrier(2)

    def send(k: int) -> None:
        client = app.test_client()
        start.wait()
        out[k] = client.post(URL, json=batches[k], headers={"X-API-Key": key}).get_json()

    threads = [threading.Thread(target=send, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    created = [out[k]["summary"]["created"] for k in (0, 1)]
    assert sum(created) == 450, created
    ids: dict[str, str] = {}
    for k in (0, 1):
        for item in out[k]["items"]:
            assert ids.setdefault(item["merchant_ref"], item["id"]) == item["id"]
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(umkm)).scalar_one() == 450
        assert conn.execute(sa.text("SELECT count(*) FROM outbox")).scalar_one() == 900
        assert set(conn.execute(sa.select(umkm.c.id)).scalars()) == set(ids.values())


def test_resend_finds_every_merchant_by_each_key(db_url: str) -> None:
    app, engine, settings = _app(db_url)
    key = {"X-API-Key": create_partner(engine, settings, "shopee", "shopee", "Shopee")}
    client = app.test_client()
    first = client.post(URL, json=[payload(n, merchant_ref=f"S{n}") for n in range(1, 201)],
                        headers=key).get_json()
    assert first["summary"]["created"] == 200
    again = [payload(n, merchant_ref=f"S{n}") for n in range(1, 51)]          # same ref
    again += [payload(n, merchant_ref=f"X{n}") for n in range(51, 101)]      # same NIB
    again += [payload(n, merchant_ref=f"Y{n}", nib=None) for n in range(101, 151)]  # NIK+name
    again += [payload(n, merchant_ref=f"Z{n}") for n in range(201, 211)]     # new
    body = client.post(URL, json=again, headers=key).get_json()
    # Each key finds the business; it is already on this partner's platform: nothing new.
    assert body["summary"] == {"created": 10, "onboarded": 0, "already_registered": 150,
                               "invalid": 0}
    ids = {i["merchant_ref"]: i["id"] for i in first["items"]}
    for item in body["items"][:150]:
        n = item["merchant_ref"][1:]
        assert item["id"] == ids[f"S{n}"] and item["status"] == "registered"


def test_bulk_insert_enforces_column_lengths_like_an_insert(pg_url: str) -> None:
    """PostgreSQL checks VARCHAR(n) in a COPY too (SQLite never checks lengths)."""
    _, engine, _ = _app(pg_url)
    row = {"topic": "t" * 101, "key": "k", "event_id": "e1", "event_type": "x",
           "payload": b"{}", "created_at": datetime.now(UTC)}
    with pytest.raises(sa.exc.DataError), engine.begin() as conn:
        bulk_insert(conn, metadata.tables["outbox"], [row])
