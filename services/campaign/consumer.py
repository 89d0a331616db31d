"""What the campaign service consumes: `bbi.umkm`, into its read model of registered UMKM."""
from __future__ import annotations

from sqlalchemy.engine import Connection

from services.campaign.store import campaign_umkm, purchases
from services.common import umkm_directory
from services.common.messaging import contracts
from services.common.messaging.consumer import Consumer
from services.common.messaging.events import Event


def on_registered(conn: Connection, event: Event) -> None:
    """A business became known: officials may now buy from it."""
    umkm_directory.on_registered(conn, event)


def on_withdrawn(conn: Connection, event: Event) -> None:
    """PDP withdrawal: purchases stay counted but are no longer attributed to the business."""
    umkm_directory.on_withdrawn(conn, event)
    uid = event.data["umkm_id"]
    conn.execute(purchases.update().where(purchases.c.umkm_id == uid).values(umkm_id=None))
    conn.execute(campaign_umkm.update().where(campaign_umkm.c.umkm_id == uid)
                 .values(umkm_id=None))


def consumers() -> list[Consumer]:
    """The consumer groups of the campaign worker."""
    # "-v2": a new group reads bbi.umkm once from its start, so businesses known before the
    # directory kept platforms get their declared and onboarded platforms (purchases check
    # them). Every handler is idempotent, so the replay changes nothing else.
    return [Consumer.per_event("campaign-umkm-directory-v2", [contracts.TOPIC_UMKM],
                               {contracts.UMKM_REGISTERED: on_registered,
                                contracts.UMKM_ONBOARDED: umkm_directory.on_onboarded,
                                contracts.UMKM_CLAIMED: umkm_directory.on_claimed,
                                contracts.UMKM_WITHDRAWN: on_withdrawn},
                               service="campaign")]
