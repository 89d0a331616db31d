"""Personal data must never reach a log line, an event or a metric label (DESIGN §3, §8).

A pytest plugin, loaded for the whole suite from tests/conftest.py. It records what the run
produces and fails the session when personal data shows up:
- every log record emitted in-process (rendered as JSON with its `extra` fields),
- every CloudEvent serialised in-process (what the outbox stores and the relay publishes),
- the label values of the in-process Prometheus registries at the end,
- the process logs of the e2e, fault and prodlike stacks written under var/ during this run,
- every record on the session's test broker at the end (what the stack processes published),
- pre-built outbox rows staged with outbox.add_rows (the partner batch's template payloads).
Personal data is found by value (the names, NIK, phone and e-mail the test factories use)
and by pattern: a NIK that passes the NIK rules, an 18-digit NIP with a real birth date,
Indonesian mobile numbers and e-mail addresses. NIB (a business number), UUIDs, hashes and
timestamps are not personal data and do not match these patterns."""
from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from services.common.messaging.events import Event
from services.common.observability import JsonFormatter

VAR = Path(__file__).resolve().parent.parent.parent / "var"
STACK_DIRS = ("e2e", "fault", "prodlike")  # process logs of the stacks the tests start
# Names and e-mail the test factories use (tests/unit/registration_helpers.py, bench/);
# their NIKs and phone numbers are caught by the patterns below.
KNOWN_VALUES = ("Sri Rahayu", "Pemilik Toko", "sri@example.id")

# Not inside a longer token: UUIDs, hex digests and decimal fractions hold digit runs too.
_NIK = re.compile(r"(?<![\w.-])(\d{16})(?![\w-])")
_NIP = re.compile(r"(?<![\w.-])((?:19|20)\d{6}(?:19|20)\d{4}[12]\d{3})(?![\w-])")
_PHONE = re.compile(r"(?<![\w.-])(?:\+62|62|0)[ -]?8[1-35-9][\d -]{7,12}\d(?![\w-])")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")


@dataclass(frozen=True)
class Finding:
    source: str   # log / event / metric label / file path
    kind: str     # nik, nip, phone, email, known value
    excerpt: str  # the line around it, with the value masked


def _is_nik(digits: str) -> bool:
    from services.registration.domain import DomainError, validate_nik

    try:
        validate_nik(digits)
        return True
    except DomainError:
        return False


def _is_nip(digits: str) -> bool:
    try:
        date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
        return 1 <= int(digits[12:14]) <= 12
    except ValueError:
        return False


def scan(text: str, source: str) -> list[Finding]:
    """Personal data in `text`, each finding with its value masked."""
    hits: list[tuple[str, str]] = []
    hits += [("nik", m) for m in _NIK.findall(text) if _is_nik(m)]
    hits += [("nip", m) for m in _NIP.findall(text) if _is_nip(m)]
    hits += [("phone", m) for m in _PHONE.findall(text)]
    hits += [("email", m) for m in _EMAIL.findall(text)]
    hits += [("known value", v) for v in KNOWN_VALUES if v in text]
    out = []
    for kind, value in hits:
        at = text.find(value)
        around = text[max(0, at - 80):at + len(value) + 80].replace(value, f"<{kind}>")
        out.append(Finding(source, kind, around))
    return out


class Recorder:
    """Findings of this run (only findings are kept, never the whole output)."""

    def __init__(self) -> None:
        self.findings: list[Finding] = []
        self.scanned = {"log": 0, "event": 0, "metric label": 0, "file": 0}

    def feed(self, text: str, source: str) -> None:
        self.scanned[source if source in self.scanned else "file"] += 1
        self.findings += scan(text, source)


RECORDER = Recorder()
_FORMAT = JsonFormatter("pii-scan")


@contextmanager
def planted() -> Iterator[list[Finding]]:
    """For the self-test: findings made inside the block are handed over, not reported."""
    before = len(RECORDER.findings)
    caught: list[Finding] = []
    try:
        yield caught
    finally:
        caught += RECORDER.findings[before:]
        del RECORDER.findings[before:]


def _install() -> None:
    handle, to_dict = logging.Logger.handle, Event.to_dict

    def recording_handle(self: logging.Logger, record: logging.LogRecord) -> None:
        # Logger.handle sees every record that passed the level check, whatever the handlers.
        try:
            RECORDER.feed(_FORMAT.format(record), "log")
        except Exception:  # a record that cannot be rendered is the handlers' business
            pass
        handle(self, record)

    def recording_to_dict(self: Event) -> dict[str, Any]:
        doc = to_dict(self)
        RECORDER.feed(json.dumps(doc, default=str, ensure_ascii=False), "event")
        return doc

    logging.Logger.handle = recording_handle  # type: ignore[method-assign]
    Event.to_dict = recording_to_dict  # type: ignore[method-assign]

    from services.common.messaging import outbox

    add_rows = outbox.add_rows

    def recording_add_rows(conn: Any, md: Any, rows: Any) -> None:
        def scanned() -> Iterator[dict[str, Any]]:
            for row in rows:
                RECORDER.feed(bytes(row["payload"]).decode("utf-8", "replace"), "event")
                yield row

        add_rows(conn, md, scanned())

    outbox.add_rows = recording_add_rows  # type: ignore[assignment]


def _metric_labels() -> None:
    from prometheus_client import REGISTRY

    from services.common.observability import worker_metrics

    for registry in (REGISTRY, worker_metrics().registry):
        for family in registry.collect():
            for sample in family.samples:
                for value in sample.labels.values():
                    RECORDER.feed(str(value), "metric label")


def _stack_logs(since: float) -> None:
    if not VAR.is_dir():
        return
    for d in VAR.iterdir():
        if d.is_dir() and d.name.startswith(STACK_DIRS) and d.stat().st_mtime >= since:
            for log in d.rglob("*.log"):
                if log.stat().st_mtime >= since:
                    for line in log.read_text(errors="replace").splitlines():
                        RECORDER.feed(line, str(log.relative_to(VAR)))


def broker_records(bootstrap: str, topics: list[str] | None = None) -> None:
    """Feed every record of the broker's topics (or of `topics`) to the recorder."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                             enable_auto_commit=False, max_poll_records=5000)
    try:
        names = topics or sorted(t for t in consumer.topics()
                                 if not t.startswith("__") and not t.endswith(PLANTED_TOPIC))
        tps = [TopicPartition(t, p) for t in names
               for p in sorted(consumer.partitions_for_topic(t) or ())]
        if not tps:
            return
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        pending = {tp for tp in tps if ends[tp] > 0}
        deadline = time.monotonic() + 300
        while pending and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=1000).values():
                for r in batch:
                    RECORDER.feed((r.value or b"").decode("utf-8", "replace"), "event")
            pending = {tp for tp in pending if consumer.position(tp) < ends[tp]}
        if pending:  # a scan that silently stops short would prove nothing
            RECORDER.findings.append(Finding("broker", "unscanned",
                                             f"{len(pending)} partitions not read in time"))
    finally:
        consumer.close()


def _session_broker() -> None:
    from devtools import testing_infra

    bootstrap = testing_infra.started_kafka()
    if bootstrap:
        broker_records(bootstrap)


_STARTED = time.time()
PLANTED_TOPIC = "pii-planted"  # the self-test's topic: personal data on purpose


def pytest_configure(config: pytest.Config) -> None:
    _install()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _metric_labels()
    _stack_logs(_STARTED)
    _session_broker()
    if RECORDER.findings:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    s = RECORDER.scanned
    terminalreporter.write_line(
        f"PII guard: scanned {s['log']} log records, {s['event']} events, "
        f"{s['metric label']} metric labels, {s['file']} stack log lines; "
        f"{len(RECORDER.findings)} findings")
    for f in RECORDER.findings[:30]:
        terminalreporter.write_line(f"PII FOUND ({f.kind}) in {f.source}: {f.excerpt}", red=True)
