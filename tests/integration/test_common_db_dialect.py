"""services.common.db.dialect: the same upsert / insert-ignore / any-of on SQLite and on a
real PostgreSQL."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from services.common.db import dialect
from services.common.db.engine import make_engine

md = sa.MetaData()
counters = sa.Table(
    "counters", md,
    sa.Column("k", sa.String(36), primary_key=True),
    sa.Column("n", sa.Integer, nullable=False),
    sa.Column("note", sa.String(20), nullable=False, server_default=""),
)
big = sa.Table("big", md, sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False))


@pytest.fixture
def engine(db_url: str) -> sa.Engine:
    e = make_engine(db_url)
    md.create_all(e)
    return e


def _rows(e: sa.Engine) -> dict[str, tuple[int, str]]:
    with e.connect() as c:
        return {r.k: (r.n, r.note) for r in c.execute(sa.select(counters))}


def test_upsert_takes_named_columns_from_the_new_row(engine: sa.Engine) -> None:
    stmt = dialect.upsert(engine, counters, index_elements=["k"], set_=["note"])
    with engine.begin() as c:
        c.execute(stmt, [{"k": "a", "n": 1, "note": "first"}, {"k": "b", "n": 1, "note": "x"}])
        c.execute(stmt, {"k": "a", "n": 99, "note": "second"})
    assert _rows(engine) == {"a": (1, "second"), "b": (1, "x")}


def test_upsert_with_an_expression_on_excluded_and_returning(engine: sa.Engine) -> None:
    ex = dialect.excluded(counters)
    with engine.begin() as c:
        for _ in range(3):
            got = c.execute(dialect.upsert(
                c, counters, {"k": "a", "n": 2}, index_elements=[counters.c.k],
                set_={"n": counters.c.n + ex.n}).returning(counters.c.n)).scalar_one()
    assert got == 6


def test_upsert_where_leaves_a_row_that_does_not_match(engine: sa.Engine) -> None:
    with engine.begin() as c:
        c.execute(counters.insert(), {"k": "a", "n": 5})
        got = c.execute(dialect.upsert(
            c, counters, {"k": "a", "n": 1}, index_elements=["k"], set_=["n"],
            where=counters.c.n < 5).returning(counters.c.k)).first()
    assert got is None
    assert _rows(engine)["a"][0] == 5


def test_insert_ignore_counts_only_new_rows(engine: sa.Engine) -> None:
    with engine.begin() as c:
        assert c.execute(dialect.insert_ignore(c, counters, {"k": "a", "n": 1})).rowcount == 1
        assert c.execute(dialect.insert_ignore(c, counters, {"k": "a", "n": 2},
                                               index_elements=["k"])).rowcount == 0
    assert _rows(engine) == {"a": (1, "")}


def test_any_of_with_values_and_with_a_name_bound_later(engine: sa.Engine) -> None:
    with engine.begin() as c:
        c.execute(counters.insert(), [{"k": f"k{i}", "n": i} for i in range(2000)])
        c.execute(big.insert(), [{"id": 2**40 + i} for i in range(10)])
        wanted = [f"k{i}" for i in range(0, 2000, 2)] + ["missing"]
        got = c.execute(sa.select(sa.func.count()).where(
            dialect.any_of(c, counters.c.k, wanted))).scalar_one()
        assert got == 1000
        assert c.execute(sa.select(sa.func.count()).where(
            dialect.any_of(c, counters.c.k, []))).scalar_one() == 0
        delete = big.delete().where(dialect.any_of(c, big.c.id, name="ids"))
        assert c.execute(delete, {"ids": [2**40 + 1, 2**40 + 2, 7]}).rowcount == 2
        assert c.execute(sa.select(sa.func.count()).select_from(big)).scalar_one() == 8


def test_any_of_needs_values_or_a_name() -> None:
    with pytest.raises(ValueError):
        dialect.any_of("sqlite", counters.c.k)
