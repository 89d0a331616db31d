"""Issue 15 finding 1: an individual's NPWP is their NIK. Given as the NPWP, it is treated as
a NIK: kept only as a keyed hash (for matching) and its last four digits (masked display),
never stored or shown in clear, erased on withdrawal. A legacy NPWP (0 + 15 digits) is not
personal in this way and stays as it is."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from services.registration import store
from services.registration.partner.handlers import create_partner
from services.registration.store import umkm
from tests.unit.registration_helpers import (
    bearer,
    make_app,
    nik,
    outbox_events,
    owner,
    payload,
    sqlite_url,
)

NPWP_NIK = "3171015708800007"   # a valid NIK (a woman born 17-08-1980), given as the NPWP


@pytest.fixture
def env(tmp_path: Path) -> Any:
    app, settings = make_app(sqlite_url(tmp_path))
    return app.test_client(), settings, app


def _row(app: Any, uid: str) -> Any:
    with app.extensions["bbi_engine"].connect() as conn:
        return conn.execute(sa.select(umkm).where(umkm.c.id == uid)).one()


def test_finding1_an_npwp_that_is_a_nik_is_never_stored_or_shown_in_clear(env: Any) -> None:
    client, settings, app = env
    r = client.post("/v1/umkm", json=payload(npwp=NPWP_NIK), headers=owner(settings))
    assert r.status_code == 201, r.get_json()
    uid = r.get_json()["id"]
    row = _row(app, uid)
    assert NPWP_NIK not in str(tuple(row))  # not in any column, in any form
    assert row.npwp is None and row.npwp_last4 == "0007"
    assert row.npwp_nik_hash == store.nik_hash(settings, NPWP_NIK)  # matches as a NIK does
    view = client.get(f"/v1/umkm/{uid}", headers=bearer(settings, "operator"))
    assert view.get_json()["npwp"] == "*" * 12 + "0007"
    assert NPWP_NIK not in view.get_data(as_text=True)
    listed = client.get("/v1/umkm", headers=bearer(settings, "operator"))
    assert NPWP_NIK not in listed.get_data(as_text=True)
    assert NPWP_NIK not in str(outbox_events(app))


def test_finding1_the_owners_own_nik_as_npwp_hashes_like_the_nik(env: Any) -> None:
    client, settings, app = env
    uid = client.post("/v1/umkm", json=payload(2, npwp=nik(2)),
                      headers=owner(settings)).get_json()["id"]
    row = _row(app, uid)
    assert row.npwp_nik_hash == row.nik_hash and row.npwp is None


def test_finding1_a_legacy_npwp_is_kept_and_shown(env: Any) -> None:
    client, settings, app = env
    uid = client.post("/v1/umkm", json=payload(npwp="09.254.294.3-407.000"),
                      headers=owner(settings)).get_json()["id"]
    row = _row(app, uid)
    assert (row.npwp, row.npwp_nik_hash, row.npwp_last4) == ("0092542943407000", None, None)
    view = client.get(f"/v1/umkm/{uid}", headers=bearer(settings, "operator")).get_json()
    assert view["npwp"] == "0092542943407000"


def test_finding1_a_partner_merchants_nik_npwp_is_treated_the_same(env: Any) -> None:
    client, settings, app = env
    key = create_partner(app.extensions["bbi_engine"], settings, "shopee", "shopee", "Shopee")
    r = client.post("/v1/partner/onboardings", headers={"X-API-Key": key},
                    json=[payload(3, merchant_ref="SH-3", npwp=NPWP_NIK)])
    uid = r.get_json()["items"][0]["id"]
    row = _row(app, uid)
    assert row.npwp is None and row.npwp_last4 == "0007" and NPWP_NIK not in str(tuple(row))


def test_finding1_the_nik_npwp_is_erased_on_withdrawal(env: Any) -> None:
    client, settings, app = env
    uid = client.post("/v1/umkm", json=payload(npwp=NPWP_NIK),
                      headers=owner(settings)).get_json()["id"]
    assert client.delete(f"/v1/umkm/{uid}", headers=owner(settings)).status_code == 200
    row = _row(app, uid)
    assert (row.npwp, row.npwp_nik_hash, row.npwp_last4) == (None, None, None)
