"""The audit log table (issue 15, finding 5): created by every service's migrations, append-only
in the database itself (SQLite and PostgreSQL), ids and codes only."""
from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from services.common import audit
from services.common.db.engine import make_engine
from services.common.db.migrations import upgrade
from services.common.http.auth import Principal
from services.common.observability import correlation_id

AUDITED = ("registration", "training", "campaign")


@pytest.mark.parametrize("service", AUDITED)
def test_each_service_migrates_an_append_only_audit_log(service: str, db_url: str) -> None:
    upgrade(service, db_url)
    engine = make_engine(db_url)
    token = correlation_id.set("cid-42")
    try:
        with engine.begin() as conn:
            audit.record(conn, Principal("ops-1", "operator", {}), "umkm.verify",
                         "umkm:0b3c5d2e-1111-4222-8333-444455556666", province="31")
    finally:
        correlation_id.reset(token)
    with engine.connect() as conn:
        row = conn.execute(sa.select(audit.audit_log)).one()
    assert (row.actor, row.role, row.action, row.correlation_id) == (
        "ops-1", "operator", "umkm.verify", "cid-42")
    assert json.loads(row.detail) == {"province": "31"} and row.at.tzinfo is not None
    statements = [audit.audit_log.update().values(actor="someone-else"),
                  audit.audit_log.delete()]
    if engine.dialect.name == "postgresql":
        statements.append(sa.text("TRUNCATE audit_log"))
    for stmt in statements:
        with pytest.raises(sa.exc.DatabaseError, match="append-only"):
            with engine.begin() as conn:
                conn.execute(stmt)
    with engine.connect() as conn:
        assert conn.execute(sa.select(audit.audit_log.c.actor)).scalars().all() == ["ops-1"]


def test_the_audit_record_refuses_anything_but_ids_and_codes(tmp_path: object) -> None:
    engine = make_engine("sqlite://")
    md = sa.MetaData()
    audit.add_table(md).create(engine)
    who = audit.Actor("ops-1", "operator")
    refused = [("umkm.verify", "umkm:Budi Santoso", {}),            # a name
               ("umkm.verify", "umkm:budi@example.com", {}),        # an e-mail
               ("umkm.verify", "umkm:3171011708450001", {}),        # a NIK
               ("umkm.export", "umkm", {"owner": "Budi Santoso"}),  # a name in the detail
               ("umkm.export", "umkm", {"npwp": "3171011708450001"}),
               ("umkm.export", "umkm", {"filter": {"nested": 1}}),
               ("verify", "umkm:1", {})]                             # not area.verb
    for action, target, detail in refused:
        with pytest.raises(ValueError), engine.begin() as conn:
            audit.record(conn, who, action, target, **detail)
    with engine.begin() as conn:
        audit.record(conn, who, "umkm.export", "umkm", province="31", rows=120, scope=None)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(audit.audit_log)).scalar() == 1


def test_roles_are_recorded_from_a_set_of_roles_or_a_single_role() -> None:
    class Many:
        subject, roles = "a-1", frozenset({"operator", "admin"})

    assert audit.roles_of(Many()) == "admin,operator"
    assert audit.roles_of(audit.Actor("cli", "admin")) == "admin"
