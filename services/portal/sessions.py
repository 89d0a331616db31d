"""Server-side sessions: the browser holds only a random id (HttpOnly, SameSite=Lax, Secure
in production); the tokens and everything else stay in this store. It is the portal's only
storage (SQLite locally, PostgreSQL in production; one table, created on start)."""
from __future__ import annotations

import hashlib
import json
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask, Request, Response
from flask.sessions import SessionInterface, SessionMixin
from werkzeug.datastructures import CallbackDict

metadata = sa.MetaData()
sessions = sa.Table(
    "portal_sessions", metadata,
    # The hash of the cookie's id: a copy of this table gives nobody a usable cookie.
    sa.Column("id_hash", sa.String(64), primary_key=True),
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False, index=True),
)
COOKIE = "bbi_portal"


class ServerSession(CallbackDict[str, Any], SessionMixin):
    """A dict that remembers whether it changed, and whether its id must be renewed."""

    def __init__(self, sid: str | None = None, initial: dict[str, Any] | None = None) -> None:
        def touched(_: Any) -> None:
            self.modified = True

        super().__init__(initial or {}, touched)
        self.sid = sid
        self.modified = False
        self.renew = False

    def regenerate(self) -> None:
        """A new id on sign-in and sign-out, so a planted id never becomes a signed-in one."""
        self.renew = True
        self.modified = True


def _hash(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


class ServerSessionInterface(SessionInterface):
    def __init__(self, engine: sa.engine.Engine, lifetime_seconds: int) -> None:
        self.engine = engine
        self.lifetime = timedelta(seconds=lifetime_seconds)
        metadata.create_all(engine)

    def open_session(self, app: Flask, request: Request) -> ServerSession:
        sid = request.cookies.get(COOKIE, "")
        if 20 <= len(sid) <= 100:
            with self.engine.connect() as conn:
                row = conn.execute(sa.select(sessions.c.data, sessions.c.expires_at).where(
                    sessions.c.id_hash == _hash(sid))).first()
            if row is not None and _aware(row.expires_at) > datetime.now(UTC):
                return ServerSession(sid, json.loads(row.data))
        return ServerSession()

    def stored(self, session: SessionMixin) -> dict[str, Any] | None:
        """What the store holds now for this session (another request may have saved)."""
        sid = getattr(session, "sid", None)
        if not sid:
            return None
        with self.engine.connect() as conn:
            data = conn.execute(sa.select(sessions.c.data).where(
                sessions.c.id_hash == _hash(sid))).scalar()
        return json.loads(data) if data else None

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        assert isinstance(session, ServerSession)
        secure = bool(app.config.get("SESSION_COOKIE_SECURE"))
        if session.renew and session.sid:
            self._delete(session.sid)
            session.sid = None
        if not session:
            if session.sid:
                self._delete(session.sid)
            if session.sid or session.renew:  # signed out: the browser forgets the id too
                response.delete_cookie(COOKIE, httponly=True, samesite="Lax", secure=secure)
            return
        if not session.modified and session.sid:
            return
        sid = session.sid or secrets.token_urlsafe(32)
        expires = datetime.now(UTC) + self.lifetime
        data = json.dumps(dict(session))
        with self.engine.begin() as conn:
            done = conn.execute(sessions.update().where(sessions.c.id_hash == _hash(sid))
                                .values(data=data, expires_at=expires)).rowcount
            if not done:
                conn.execute(sessions.insert().values(id_hash=_hash(sid), data=data,
                                                      expires_at=expires))
            if secrets.randbelow(100) == 0:  # now and then, drop expired sessions
                conn.execute(sessions.delete().where(sessions.c.expires_at < datetime.now(UTC)))
        session.sid = sid
        response.set_cookie(COOKIE, sid, max_age=int(self.lifetime.total_seconds()),
                            httponly=True, samesite="Lax", secure=secure, path="/")

    def _delete(self, sid: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(sessions.delete().where(sessions.c.id_hash == _hash(sid)))


def _aware(value: datetime) -> datetime:
    # SQLite gives naive datetimes back.
    return value if value.tzinfo else value.replace(tzinfo=UTC)
