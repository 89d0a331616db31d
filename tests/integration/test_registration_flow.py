"""Registration against real PostgreSQL/SQLite (migrations) and a real Kafka broker."""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from services.common.config import Settings
from services.common.db.engine import make_engine
from services.common.db.migrations import upgrade
from services.common.messaging import contracts, topics
from services.common.messaging.events import Event, parse_event
from services.common.messaging.kafka_clients import make_producer
from services.common.messaging.outbox import KafkaPublisher, OutboxRelay
from services.common.observability import setup_logging
from services.registration.app import create_app
from services.registration.partner.handlers import create_partner
from services.registration.store import metadata, umkm, umkm_platforms
from tests.integration.common_helpers import read_all
from tests.unit.registration_helpers import assert_no_pii, bearer, owner, payload


@dataclass
class Reg:
    app: Flask
    settings: Settings
    engine: sa.Engine
    relay: OutboxRelay
    bootstrap: str
    topic: str

    def drain(self) -> int:
        sent = 0
        for _ in range(50):
            res = self.relay.run_once()
            sent += res.sent
            if res.sent == 0 and not res.failed:
                break
        return sent

    def events(self, expect: int) -> list[Event]:
        records = read_all(self.bootstrap, self.topic, expect=expect)
        for r in records:  # the Kafka key is the business id: one entity's events stay ordered
            assert r.key.decode() == parse_event(r.value).subject
        self.raw = [r.value.decode() for r in records]
        return [parse_event(r.value) for r in records]


@pytest.fixture
def reg(db_url: str, kafka_bootstrap: str, topic_prefix: str,
        settings_factory: Callable[..., Settings]) -> Iterator[Reg]:
    setup_logging("registration")  # before the test phase, so caplog keeps its handler
    upgrade("registration", db_url)
    settings = settings_factory("registration", db_url, kafka=kafka_bootstrap,
                                topic_prefix=topic_prefix)
    engine = make_engine(db_url)
    topic = topic_prefix + contracts.TOPIC_UMKM
    topics.ensure_topics(kafka_bootstrap, {topic: contracts.TOPIC_CONFIGS[
        contracts.TOPIC_UMKM]}, partitions=3, replication=1)
    relay = OutboxRelay(engine, metadata, KafkaPublisher(lambda: make_producer(settings)),
                        "registration")
    yield Reg(create_app(settings, engine), settings, engine, relay, kafka_bootstrap, topic)
    relay.publisher.close()
    engine.dispose()


def _logs(caplog: pytest.LogCaptureFixture) -> list[str]:
    assert any(r.getMessage() == "umkm registered" for r in caplog.records)  # scan not vacuous
    return [r.getMessage() + " " + str(r.__dict__) for r in caplog.records]


@pytest.mark.kafka
def test_a_registration_publishes_exactly_one_valid_event(
        reg: Reg, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    created = reg.app.test_client().post("/v1/umkm", json=payload(),
                                         headers=owner(reg.settings)).get_json()
    assert reg.drain() == 1
    events = reg.events(expect=1)
    assert len(events) == 1
    e = events[0]
    assert e.type == contracts.UMKM_REGISTERED and e.subject == created["id"]
    assert e.data["province_code"] == "31" and e.data["scale"] == "mikro"
    assert e.data["kbli_section"] == "C" and e.data["channel"] == "public"
    assert e.data["platforms_declared"] == ["shopee"] and e.data["qris"] is True
    assert e.data["owner_subject"] == "kc-owner-1"  # pseudonymous: the account, not the person
    assert (e.data["trade_name"], e.data["nib"]) == ("Warung Bu Sri 1", payload()["nib"])
    assert_no_pii(reg.raw + _logs(caplog))


@pytest.mark.kafka
def test_partner_batch_dedupes_in_batch_and_against_the_database(
        reg: Reg, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    client = reg.app.test_client()
    public = client.post("/v1/umkm", json=payload(3), headers=owner(reg.settings)).get_json()
    key = create_partner(reg.engine, reg.settings, "tokopedia", "tokopedia", "Tokopedia")
    batch = [payload(1, merchant_ref="M1"), payload(2, merchant_ref="M2"),
             payload(1, merchant_ref="M1-again"),           # same NIB inside the batch
             payload(2, merchant_ref="M1", nib=None, business_name="Other"),  # same ref
             payload(3, merchant_ref="M3"),                 # registered publicly: joins
             payload(4, merchant_ref="M4", phone="123")]    # invalid
    r = client.post("/v1/partner/onboardings", json=batch, headers={"X-API-Key": key})
    assert r.status_code == 200
    body = r.get_json()
    assert [i["result"] for i in body["items"]] == [
        "created", "created", "already_registered", "already_registered",
        "onboarded", "invalid"]
    assert body["items"][4]["id"] == public["id"]
    resend = client.post("/v1/partner/onboardings", json=batch, headers={"X-API-Key": key})
    assert resend.get_json()["summary"] == {"created": 0, "onboarded": 0,
                                            "already_registered": 5, "invalid": 1}
    with reg.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(umkm)).scalar_one() == 3
        assert conn.execute(sa.select(sa.func.count()).select_from(umkm_platforms)
                            ).scalar_one() == 3
    assert reg.drain() == 6
    events = reg.events(expect=6)
    assert len(events) == 6
    assert [(e.type, e.data["first_platform"]) for e in events
            if e.subject == public["id"] and e.type == contracts.UMKM_ONBOARDED] == [
        (contracts.UMKM_ONBOARDED, True)]
    by_id: dict[str, list[str]] = {}
    for e in events:
        by_id.setdefault(e.subject, []).append(e.type.split(".")[2])
    created = {i["id"] for i in body["items"] if i["result"] == "created"}
    assert {k: v for k, v in by_id.items() if k in created} == {
        i: ["registered", "onboarded"] for i in created}
    partner_events = [e for e in events if e.subject in created]
    assert all(e.data.get("channel", "partner") == "partner" for e in partner_events)
    assert all(e.data["first_platform"] for e in partner_events if "first_platform" in e.data)
    assert_no_pii(reg.raw + _logs(caplog))


@pytest.mark.kafka
def test_withdrawal_erases_personal_data_and_publishes_withdrawn(
        reg: Reg, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    client = reg.app.test_client()
    created = client.post("/v1/umkm", json=payload(mentor_org="Rumah BUMN",
                                                   npwp="3171011708450001"),
                          headers=owner(reg.settings)).get_json()
    r = client.delete(f"/v1/umkm/{created['id']}", headers=owner(reg.settings))
    assert r.status_code == 200
    with reg.engine.connect() as conn:
        row = conn.execute(sa.select(umkm).where(umkm.c.id == created["id"])).one()
    kept = {"id", "status", "curation", "channel", "partner_code", "province_code",
            "regency_code", "kbli_code", "kbli_section", "scale", "platforms_declared", "qris",
            "consent_version", "consent_at", "registered_at", "verified_at", "withdrawn_at",
            "updated_at", "claimed_at"}
    for col, value in row._mapping.items():
        if col not in kept:
            assert value is None, col
    assert row.status == "withdrawn"
    assert_no_pii([str(tuple(row))])
    assert reg.drain() == 2
    events = reg.events(expect=2)
    assert [e.type for e in events] == [contracts.UMKM_REGISTERED, contracts.UMKM_WITHDRAWN]
    assert events[1].subject == created["id"]
    view = client.get(f"/v1/umkm/{created['id']}", headers=bearer(reg.settings, "operator"))
    assert view.get_json()["nik_masked"] is None and view.get_json()["status"] == "withdrawn"
    assert_no_pii(reg.raw + _logs(caplog))


@pytest.mark.postgres
def test_two_parallel_identical_registrations_make_one_row_and_one_409(
        pg_url: str, settings_factory: Callable[..., Settings]) -> None:
    # No look-up before the insert: the unique constraint alone decides the race.
    upgrade("registration", pg_url)
    engine = make_engine(pg_url)
    settings = settings_factory("registration", pg_url)
    app = create_app(settings, engine)
    mine = owner(settings)
    lock = threading.Lock()
    for n in range(1, 6):  # several rounds: each one is a fresh race
        barrier, statuses = threading.Barrier(2), []

        def post(n: int = n, barrier: Any = barrier, statuses: list[int] = statuses) -> None:
            client = app.test_client()
            barrier.wait()
            code = client.post("/v1/umkm", json=payload(n), headers=mine).status_code
            with lock:
                statuses.append(code)

        threads = [threading.Thread(target=post) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(statuses) == [201, 409], statuses
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(umkm)).scalar_one() == 5
        assert conn.execute(sa.select(sa.func.count()).select_from(
            metadata.tables["outbox"])).scalar_one() == 5
    engine.dispose()
