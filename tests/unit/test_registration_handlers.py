"""Handlers on SQLite: the constraint decides duplicates, rate-limit windows, the worker."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from services.common.config import Settings
from services.common.db.engine import make_engine
from services.common.errors import DomainError
from services.registration import handlers, ratelimit, store
from services.registration.config import load_settings
from services.registration.partner import handlers as partner_batch
from services.registration.schemas import PartnerItemIn, RegistrationIn
from services.registration.store import metadata, umkm
from services.registration.worker import build_worker
from tests.unit.registration_helpers import CONSENT, OWNER, payload, sqlite_url

REGISTRATION = RegistrationIn(consent_version=CONSENT)


@pytest.fixture
def db(tmp_path: Path) -> tuple[sa.Engine, Settings]:
    url = sqlite_url(tmp_path)
    engine = make_engine(url)
    metadata.create_all(engine)
    return engine, load_settings(database_url=url)


def test_nik_hash_is_keyed(db: Any) -> None:
    _, s = db
    other = Settings.from_env("registration", database_url="sqlite://", pii_hash_key="other")
    nik = payload()["nik"]
    assert store.nik_hash(s, nik) == store.nik_hash(s, nik)
    assert store.nik_hash(s, nik) != store.nik_hash(other, nik)
    assert nik not in store.nik_hash(s, nik)


def test_a_duplicate_is_caught_from_the_unique_constraint(db: Any) -> None:
    """No look-up before the insert (it would also miss a parallel insert): the constraint's
    IntegrityError becomes a 409 naming the existing registration, and nothing is staged."""
    engine, s = db
    first = handlers.register(engine, s, REGISTRATION.load(payload()), OWNER)
    with pytest.raises(DomainError) as info:
        handlers.register(engine, s, REGISTRATION.load(payload()), OWNER)
    assert info.value.status == 409 and info.value.code == "already_registered"
    assert info.value.extra == {"id": first["id"], "current_status": "registered",
                                "claimable": False}
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(umkm)).scalar_one() == 1
        assert conn.execute(sa.select(sa.func.count()).select_from(
            metadata.tables["outbox"])).scalar_one() == 1


def test_partner_batch_retries_after_a_concurrent_insert(db: Any, monkeypatch: Any) -> None:
    engine, s = db
    handlers.register(engine, s, REGISTRATION.load(payload(1)), OWNER)
    real, calls = store.existing_matches, {"n": 0}

    def blind_first(conn: Any, code: str, rows: Any) -> Any:
        calls["n"] += 1
        return {} if calls["n"] == 1 else real(conn, code, rows)

    monkeypatch.setattr(store, "existing_matches", blind_first)
    partner = type("P", (), {"code": "tokopedia", "platform": "tokopedia"})()
    items = [payload(1, merchant_ref="A"), payload(2, merchant_ref="B")]
    out = partner_batch.onboard_batch(engine, s, partner, items)
    # The retry finds the public registration: the partner's platform is added to it.
    assert [i["result"] for i in out["items"]] == ["onboarded", "created"]
    assert calls["n"] == 2


def test_partner_item_schema_needs_merchant_ref() -> None:
    errors = PartnerItemIn(consent_version=CONSENT).validate(payload())
    assert "merchant_ref" in errors


def test_rate_limit_fixed_window(db: Any) -> None:
    engine, s = db
    assert ratelimit.hit(engine, s, "1.2.3.4", 2, 60, now=120.0) is None
    assert ratelimit.hit(engine, s, "1.2.3.4", 2, 60, now=130.0) is None
    assert ratelimit.hit(engine, s, "1.2.3.4", 2, 60, now=150.5) == 30
    assert ratelimit.hit(engine, s, "5.6.7.8", 2, 60, now=150.5) is None
    assert ratelimit.hit(engine, s, "1.2.3.4", 2, 60, now=180.0) is None  # next window
    with engine.connect() as conn:
        keys = conn.execute(sa.select(metadata.tables["rate_limits"].c.client_key)).scalars()
        assert all("1.2.3.4" not in k for k in keys)


def test_worker_is_a_relay_without_consumers(db: Any) -> None:
    engine, s = db
    w = build_worker(s, engine)
    assert w.with_relay and w.consumers == []


def test_business_names_compare_without_case_spacing_or_punctuation() -> None:
    from services.registration.domain import normalise_business_name as norm
    assert norm("  Warung  BU-Sri, Jaya! ") == norm("warung bu sri jaya") == "warung bu sri jaya"
    assert norm("Warung Bu Sri") != norm("Warung Bu Sri 2")
