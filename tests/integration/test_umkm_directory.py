"""The shared UMKM read model, on both services' migrated databases (SQLite and PostgreSQL):
every bbi.umkm event it keeps, applied idempotently and in any order, and its look-ups."""
from __future__ import annotations

import itertools
import uuid

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from services.common import umkm_directory as d
from services.common.db.engine import make_engine
from services.common.db.migrations import upgrade
from services.common.messaging.events import Event
from tests.event_factories import claimed, onboarded, registered, withdrawn

HANDLERS = {"bbi.umkm.registered.v1": d.on_registered, "bbi.umkm.onboarded.v1": d.on_onboarded,
            "bbi.umkm.claimed.v1": d.on_claimed, "bbi.umkm.withdrawn.v1": d.on_withdrawn}


def _engine(service: str, url: str) -> sa.Engine:
    upgrade(service, url)
    return make_engine(url)


def _apply(engine: sa.Engine, *events: Event) -> None:
    for ev in events:
        with engine.begin() as conn:
            HANDLERS[ev.type](conn, ev)


@pytest.mark.parametrize("service", ["campaign", "training"])
def test_migrations_create_exactly_the_directory_tables_of_the_metadata(
        db_url: str, service: str) -> None:
    engine = _engine(service, db_url)
    md = sa.MetaData()
    d.add_umkm_directory(md)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                md)
    ours = [x for x in diff if d.TABLE in repr(x) or d.PLATFORMS_TABLE in repr(x)]
    assert ours == []


def test_registration_with_catalogue_fields_is_found_by_nib_name_and_owner(db_url: str) -> None:
    engine = _engine("campaign", db_url)
    ev = registered(province="94", owner="kc-owner-1", trade_name="Keripik  Sagu Mama Yuli",
                    nib="9120000000042", declared=("shopee",))
    uid = ev.data["umkm_id"]
    _apply(engine, ev, onboarded(uid, "tokopedia"), onboarded(uid, "lazada", first=False),
           registered(province="94", trade_name="Toko 100%_Sagu", nib="9120000000043"))
    with engine.connect() as conn:
        biz = d.find_by_nib(conn, "9120000000042")
        assert biz is not None and biz.umkm_id == uid
        assert (biz.province_code, biz.owner_subject, biz.trade_name) == \
            ("94", "kc-owner-1", "Keripik  Sagu Mama Yuli")
        assert biz.platforms == ("lazada", "tokopedia") and biz.platforms_declared == ("shopee",)
        assert [b.umkm_id for b in d.search(conn, "SAGU mama", "94")] == [uid]
        assert d.search(conn, "sagu", "31") == []
        assert len(d.search(conn, "sagu")) == 2
        # LIKE wildcards in the query are literal characters.
        assert [b.nib for b in d.search(conn, "100%_")] == ["9120000000043"]
        assert [b.umkm_id for b in d.search(conn, "%")] == [b.umkm_id for b in
                                                            d.search(conn, "100%")]
        assert d.search(conn, "sagu%mama") == [] and d.search(conn, "k_ripik") == []
        assert [b.umkm_id for b in d.owned_by(conn, "kc-owner-1")] == [uid]
        assert d.find_by_nib(conn, "9120000000099") is None


def test_search_is_bounded(db_url: str) -> None:
    engine = _engine("training", db_url)
    _apply(engine, *[registered(trade_name=f"Warung Kopi {i:03d}") for i in range(60)])
    with engine.connect() as conn:
        assert len(d.search(conn, "kopi", limit=1000)) == d.MAX_SEARCH
        names = [b.trade_name for b in d.search(conn, "kopi", limit=5)]
    assert names == [f"Warung Kopi {i:03d}" for i in range(5)]


def _final(engine: sa.Engine, uid: str) -> tuple[object, ...]:
    with engine.connect() as conn:
        biz = d.find(conn, uid)
        owned = [b.umkm_id for b in d.owned_by(conn, "kc-claimer")]
    if biz is None:
        return (None, owned)
    return (biz.status, biz.province_code, biz.owner_subject, biz.trade_name, biz.nib,
            biz.platforms, owned)


def test_any_arrival_order_and_any_redelivery_gives_one_answer(db_url: str) -> None:
    """A partner-reported business: registered, onboarded, claimed, in all 6 orders, twice."""
    engine = _engine("campaign", db_url)
    for order in itertools.permutations(range(3)):
        uid = str(uuid.uuid4())
        evs = [registered(uid, "91", trade_name="Noken Papua", nib="9120000000100",
                          channel="partner"), onboarded(uid, "shopee"),
               claimed(uid, "kc-claimer")]
        _apply(engine, *[evs[i] for i in order], *[evs[i] for i in order])
        assert _final(engine, uid) == ("registered", "91", "kc-claimer", "Noken Papua",
                                       "9120000000100", ("shopee",), [uid]), order
        _apply(engine, withdrawn(uid))


def test_withdrawal_is_final_in_any_order_and_erases_name_nib_owner(db_url: str) -> None:
    engine = _engine("training", db_url)
    for order in itertools.permutations(range(4)):
        uid = str(uuid.uuid4())
        evs = [registered(uid, "51", owner="kc-claimer", trade_name="Kopi Kintamani",
                          nib="9120000000200"), onboarded(uid, "gofood"),
               claimed(uid, "kc-claimer"), withdrawn(uid)]
        _apply(engine, *[evs[i] for i in order])
        status, _province, *erased = _final(engine, uid)
        assert (status, erased) == ("withdrawn", [None, None, None, (), []]), order
        with engine.connect() as conn:
            assert d.search(conn, "kintamani") == []
            assert d.owned_by(conn, "kc-claimer") == []
            gone = d.find_by_nib(conn, "9120000000200")
        assert gone is None


def test_a_claim_before_its_registration_is_not_a_known_business(db_url: str) -> None:
    engine = _engine("campaign", db_url)
    uid = str(uuid.uuid4())
    _apply(engine, claimed(uid, "kc-claimer"))
    with engine.connect() as conn:
        assert d.find(conn, uid) is None and d.owned_by(conn, "kc-claimer") == []


def test_older_registration_events_without_the_new_fields_still_apply(db_url: str) -> None:
    engine = _engine("training", db_url)
    ev = registered(province="32")
    assert not {"owner_subject", "trade_name", "nib"} & set(ev.data)
    _apply(engine, ev)
    with engine.connect() as conn:
        biz = d.find(conn, ev.data["umkm_id"])
    assert biz is not None and biz.active and (biz.owner_subject, biz.nib) == (None, None)
