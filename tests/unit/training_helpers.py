"""Helpers shared by the training tests: app, tokens, known businesses, payloads, events."""
from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.engine import Engine

from devtools.dev_tokens import issue_token
from services.common.config import Settings
from services.common.http.web import get_engine
from services.common.messaging.outbox import outbox_table
from services.training import consumer
from services.training.app import create_app
from services.training.store import metadata, sessions
from tests.event_factories import registered, withdrawn  # noqa: F401 (re-exported)


def auth(settings: Settings, role: str = "operator", sub: str = "op-1") -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(settings, sub, role)}"}




def add_business(engine: Engine, province: str = "32", owner: str | None = None) -> str:
    """Apply a registration event (of `owner`'s business) to the read model as the consumer
    would."""
    ev = registered(province=province, owner=owner)
    with engine.begin() as conn:
        consumer.on_registered(conn, ev)
    return str(ev.data["umkm_id"])


def owner_of(settings: Settings, engine: Engine, province: str = "32",
             owner: str | None = None) -> tuple[str, dict[str, str]]:
    """A business known to the read model and its owner's token: (umkm id, headers)."""
    sub = owner or f"kc-{uuid.uuid4().hex[:12]}"  # a person's account, not the business
    return add_business(engine, province, sub), auth(settings, "umkm", sub)


def course_body(**kw: Any) -> dict[str, Any]:
    return {"title": "Pemasaran Digital untuk UMKM", "description": "Jualan daring",
            "level": "dasar", "modules": [{"key": "toko-daring", "title": "Membuka toko"},
                                          {"key": "foto-produk", "title": "Foto produk"}]} | kw


def session_body(course_id: str, **kw: Any) -> dict[str, Any]:
    """A session two days from now (naive: read as WIB)."""
    starts = datetime.now(UTC).astimezone(UTC) + timedelta(days=2)
    return {"course_id": course_id, "starts_at": starts.isoformat(), "duration_minutes": 90,
            "join_link": "https://zoom.example/j/123"} | kw


def build(settings: Settings, engine: Engine | None = None) -> tuple[Flask, Engine]:
    """The app on its own database, migrated to head."""
    from services.common.db.migrations import upgrade

    upgrade("training", settings.database_url)
    app = create_app(settings, engine)
    with app.app_context():
        return app, get_engine()


def new_session(client: FlaskClient, op: dict[str, str], **kw: Any) -> dict[str, Any]:
    """Create a course and one session on it; returns the session."""
    course = client.post("/v1/courses", json=course_body(), headers=op).get_json()
    resp = client.post("/v1/sessions", json=session_body(course["id"], **kw), headers=op)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()  # type: ignore[no-any-return]


def start_now(engine: Engine, session_id: str) -> None:
    """Move a session's start into the past (attendance is recorded after it starts)."""
    past = datetime.now(UTC) - timedelta(minutes=5)
    with engine.begin() as conn:
        conn.execute(sessions.update().where(sessions.c.id == session_id)
                     .values(starts_at=past, enrolment_deadline=past))


def events(engine: Engine, type_: str | None = None) -> list[dict[str, Any]]:
    """Outbox events (type and data) in order, optionally of one type."""
    t = outbox_table(metadata)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(t.c.payload).order_by(t.c.id)).scalars().all()
    docs = [json.loads(r) for r in rows]
    return [d for d in docs if type_ is None or d["type"] == type_]
