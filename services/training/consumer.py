"""What the training service consumes: `bbi.umkm`, into its read model of registered UMKM;
a withdrawal also cancels the business's seats (and promotes from the waitlists)."""
from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection

from services.common import umkm_directory
from services.common.config import Settings
from services.common.messaging import contracts
from services.common.messaging.consumer import Consumer, Handler
from services.common.messaging.events import Event, make_event
from services.common.messaging.outbox import add_events
from services.common.observability import correlation_id
from services.training import seats
from services.training.config import load_settings
from services.training.store import metadata


def on_registered(conn: Connection, event: Event) -> None:
    """A business became known: it may now enrol."""
    umkm_directory.on_registered(conn, event)


def on_withdrawn_handler(topic_prefix: str = "") -> Handler:
    """The withdrawn handler; events it publishes go to the outbox under `topic_prefix`."""

    def on_withdrawn(conn: Connection, event: Event) -> None:
        """Directory update first, then cancel the business's seats (reason withdrawn)."""
        umkm_directory.on_withdrawn(conn, event)

        def publish(type_: str, data: dict[str, Any]) -> Event:
            # Same transaction as the read-model update and the processed-event record.
            staged = make_event(type_, "training", data, correlation_id.get() or None)
            add_events(conn, metadata, [staged], topic_prefix)
            return staged

        seats.cancel_all_of(conn, publish, str(event.data["umkm_id"]))

    return on_withdrawn


def consumers(settings: Settings | None = None) -> list[Consumer]:
    """The consumer groups of the training worker."""
    prefix = (settings or load_settings()).topic_prefix
    return [Consumer.per_event("training-umkm-directory", [contracts.TOPIC_UMKM],
                               {contracts.UMKM_REGISTERED: on_registered,
                                contracts.UMKM_ONBOARDED: umkm_directory.on_onboarded,
                                contracts.UMKM_CLAIMED: umkm_directory.on_claimed,
                                contracts.UMKM_WITHDRAWN: on_withdrawn_handler(prefix)},
                               service="training")]
