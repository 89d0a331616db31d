"""The registration migrations on SQLite and PostgreSQL, with rows written before them:
existing businesses keep an unknown owner (issue 13); NPWPs that are NIKs are converted to a
keyed hash and last four digits (issue 15 finding 1); partner-reported rows that could never
be verified become `registered` (finding 2)."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from services.common.config import Settings
from services.common.db.engine import make_engine
from services.common.db.migrations import upgrade
from services.registration import store
from services.registration.schemas import RegistrationIn
from tests.unit.registration_helpers import payload

BEFORE_OWNERS = "5e85e7ac0b85"   # the last revision before owners and the NPWP conversion
NPWP_NIK = "3171015708800007"


def _old_row(settings: Settings, n: int, **values: Any) -> dict[str, Any]:
    """A row as the service wrote it before these revisions (NPWP in clear, no owner)."""
    data = RegistrationIn(consent_version="2025-01").load(payload(n))
    row = store.new_row(settings, data, datetime.now(UTC))
    for k in ("owner_subject", "claimed_at", "npwp_nik_hash", "npwp_last4"):
        row.pop(k)
    return row | {"verified_at": None} | values  # every row the same keys (executemany)


def test_finding1_and_2_migration_converts_rows_written_before_it(db_url: str) -> None:
    settings = Settings.from_env("registration", database_url=db_url)
    upgrade("registration", db_url, BEFORE_OWNERS)
    engine = make_engine(db_url)
    old = sa.Table("umkm", sa.MetaData(), autoload_with=engine)
    now = datetime.now(UTC)
    rows = {
        "nik_npwp": _old_row(settings, 1, npwp=NPWP_NIK),
        "legacy": _old_row(settings, 2, npwp="0092542943407000"),
        "partner": _old_row(settings, 3, channel="partner", status="onboarded",
                            partner_code="tokopedia", partner_ref="TP-3"),
        "partner_verified": _old_row(settings, 4, channel="partner", status="onboarded",
                                     partner_code="tokopedia", partner_ref="TP-4",
                                     verified_at=now),
    }
    with engine.begin() as conn:
        conn.execute(old.insert(), list(rows.values()))
    upgrade("registration", db_url)
    new = sa.Table("umkm", sa.MetaData(), autoload_with=engine)
    with engine.connect() as conn:
        got = {r.id: r for r in conn.execute(sa.select(new))}
    engine.dispose()
    converted = got[rows["nik_npwp"]["id"]]
    assert converted.npwp is None and converted.npwp_last4 == "0007"
    # The same keyed hash the service computes, so equal numbers match.
    assert converted.npwp_nik_hash == store.nik_hash(settings, NPWP_NIK)
    assert all(NPWP_NIK not in str(tuple(r)) for r in got.values())
    legacy = got[rows["legacy"]["id"]]
    assert (legacy.npwp, legacy.npwp_nik_hash, legacy.npwp_last4) == (
        "0092542943407000", None, None)
    assert got[rows["partner"]["id"]].status == "registered"           # now verifiable
    assert got[rows["partner_verified"]["id"]].status == "onboarded"   # really verified
    assert all(r.owner_subject is None and r.claimed_at is None for r in got.values())
