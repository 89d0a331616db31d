"""Unit of work: one database transaction that also stages the events it publishes."""
from __future__ import annotations

from types import TracebackType
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from services.common.http import idempotency
from services.common.messaging.events import Event, make_event
from services.common.messaging.outbox import add_events
from services.common.observability import correlation_id


class UnitOfWork:
    """`with UnitOfWork(engine, md, source) as uow:` -> uow.conn, uow.publish(type, data)."""

    def __init__(self, engine: Engine, md: sa.MetaData, source: str,
                 topic_prefix: str = "") -> None:
        self.engine, self.md, self.source = engine, md, source
        self.topic_prefix = topic_prefix
        self.events: list[Event] = []
        self._ctx: Any = None
        self._joined: tuple[Connection, bool] | None = None
        self.conn: Connection

    def __enter__(self) -> UnitOfWork:
        # In a request with an Idempotency-Key: a SAVEPOINT in the request's transaction,
        # which also holds the claimed key and, at the end, the answer (idempotency.py).
        self._joined = idempotency.join(self.engine)
        if self._joined is not None:
            self.conn = self._joined[0]
            self._ctx = self.conn.begin_nested()
            return self
        self._ctx = self.engine.begin()
        self.conn = self._ctx.__enter__()
        return self

    def publish(self, type_: str, data: dict[str, Any]) -> Event:
        """Validate now (a bad event is a bug), write to the outbox at commit."""
        event = make_event(type_, self.source, data, correlation_id.get() or None)
        self.events.append(event)
        return event

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> bool | None:
        if exc_type is None and self.events:
            try:
                add_events(self.conn, self.md, self.events, self.topic_prefix)
            except BaseException as inner:
                self._end(type(inner), inner, inner.__traceback__)
                raise
        return self._end(exc_type, exc, tb)

    def _end(self, exc_type: type[BaseException] | None, exc: BaseException | None,
             tb: TracebackType | None) -> bool | None:
        result = self._ctx.__exit__(exc_type, exc, tb)
        if exc_type is not None and self._joined is not None and self._joined[1]:
            idempotency.abandon()  # the claiming unit failed: nothing done, release the key
        return result  # type: ignore[no-any-return]
