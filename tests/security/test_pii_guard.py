"""The PII guard (tests/security/pii_guard.py) catches what it must and not what it must not:
it is only worth something if it can fail."""
from __future__ import annotations

import logging
import uuid
from pathlib import Path

from services.common.messaging.events import make_event
from tests.event_factories import registered
from tests.security import pii_guard
from tests.security.apps import bearer, build
from tests.unit.registration_helpers import nik, payload

NIK = nik(7)


def test_a_planted_nik_and_email_in_a_log_line_are_caught() -> None:
    log = logging.getLogger("services.planted")
    with pii_guard.planted() as found:
        log.warning("lookup for %s", NIK)
        log.warning("contact", extra={"to": "budi.santoso@mail.example.co.id"})
        log.warning("owner %s called from +62 812-3456-7890", "Sri Rahayu")
    kinds = {f.kind for f in found}
    assert {"nik", "email", "phone", "known value"} <= kinds, found
    assert all(NIK not in f.excerpt for f in found)  # the report does not re-leak it


def test_a_planted_nik_in_an_event_is_caught() -> None:
    ev = registered(province="31")
    with pii_guard.planted() as found:
        ev.data["note"] = f"nik {NIK}"  # what a careless producer might do
        ev.to_bytes()
    assert [f.kind for f in found] == ["nik"] and found[0].source == "event"
    assert make_event  # the real factory is the one patched


def test_finding1_a_nik_in_any_field_is_caught_whatever_the_field_is_called() -> None:
    """An NPWP that is a NIK is a NIK: the guard goes by the value, not the field name."""
    log = logging.getLogger("services.planted")
    ev = registered(province="31")
    with pii_guard.planted() as found:
        log.warning("tax id", extra={"npwp": NIK})                 # a log field
        log.warning("row %s", {"business": {"tax": {"npwp": int(NIK)}}})  # nested, a number
        ev.data["npwp"] = NIK                                       # an event field
        ev.to_bytes()
        pii_guard.RECORDER.feed(f'{{"data": {{"npwp": "{NIK}"}}}}', "event")  # on the broker
    assert [(f.kind, f.source) for f in found] == [
        ("nik", "log"), ("nik", "log"), ("nik", "event"), ("nik", "event")], found
    # The masked and hashed forms the services keep are not findings.
    masked = '{"npwp": "************0007", "npwp_nik_hash": "' + "ab12" * 16 + '"}'
    assert pii_guard.scan(masked, "log") == []


def test_a_nip_and_a_stack_log_line_are_caught(tmp_path: Path) -> None:
    with pii_guard.planted() as found:
        pii_guard.RECORDER.feed('{"message": "official 198001012005011001 joined"}', "f.log")
    assert [f.kind for f in found] == ["nip"]


def test_business_ids_uuids_hashes_and_times_are_not_personal() -> None:
    text = (f'{{"umkm_id": "{uuid.uuid4()}", "nib": "9120000000001", "npwp_hash": '
            f'"{"a1b2c3d4" * 8}", "time": "2025-05-14T10:00:00.123456+07:00", '
            '"latency": 0.0012345678901234567, "offset": 1234567890123456789, '
            '"ts_ms": 1747195200123, "url": "postgresql+psycopg://u:p@127.0.0.1:5432/db"}')
    assert pii_guard.scan(text, "log") == []


def test_a_registration_logs_and_publishes_no_personal_data(tmp_path: Path) -> None:
    app, s = build("registration", f"sqlite:///{tmp_path / 'db.sqlite'}")
    before = dict(pii_guard.RECORDER.scanned)
    with pii_guard.planted() as found:
        resp = app.test_client().post("/v1/umkm", json=payload(3),
                                      headers=bearer(s, "umkm", "kc-owner-1"))
        assert resp.status_code == 201
    assert found == []
    assert pii_guard.RECORDER.scanned["event"] > before["event"]  # the event was scanned
    assert pii_guard.RECORDER.scanned["log"] > before["log"]


def test_digit_runs_inside_uuids_are_not_phones() -> None:
    assert pii_guard.scan("c027c081234567890f29-9b0c867350c2 ba4c-081234567890b", "event") == []
    assert [f.kind for f in pii_guard.scan("call 081234567890 now", "log")] == ["phone"]


def test_a_planted_nik_on_the_broker_is_caught(kafka_bootstrap: str, topic_prefix: str) -> None:
    # What stack processes publish is only visible on the broker: the end-of-run scan reads it.
    from kafka import KafkaProducer

    from services.common.messaging import topics

    topic = topic_prefix + pii_guard.PLANTED_TOPIC
    topics.ensure_topics(kafka_bootstrap, {topic: {}}, partitions=1, replication=1)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    producer.send(topic, b'{"data": {"nik": "%s"}}' % NIK.encode()).get(30)
    producer.close()
    with pii_guard.planted() as found:
        pii_guard.broker_records(kafka_bootstrap, [topic])
    assert [f.kind for f in found] == ["nik"], found


def test_prebuilt_outbox_rows_are_scanned(tmp_path: Path) -> None:
    import sqlalchemy as sa

    from services.common.db.engine import make_engine, new_metadata, utcnow
    from services.common.messaging import outbox

    engine = make_engine(f"sqlite:///{tmp_path / 'o.db'}")
    md = new_metadata()
    md.create_all(engine)
    row = {"topic": "bbi.umkm", "key": "k", "event_id": str(uuid.uuid4()),
           "event_type": "bbi.umkm.registered.v1", "created_at": utcnow(),
           "payload": b'{"data": {"email": "sri@example.id"}}'}
    with pii_guard.planted() as found, engine.begin() as conn:
        outbox.add_rows(conn, md, iter([row]))  # a generator, as the partner batch passes
    assert "email" in {f.kind for f in found}, found
    with engine.connect() as conn:  # the hook passed the row through to the table
        count = sa.select(sa.func.count()).select_from(md.tables["outbox"])
        assert conn.execute(count).scalar() == 1
