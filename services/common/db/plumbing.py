"""Migration bodies for the tables every service has (db/engine.py `new_metadata`): the
outbox, processed events, consumer offsets and idempotency keys, and the indexes that prune
them. Each service's initial revision calls `create_tables` once instead of carrying its own
copy of the DDL.

This is the schema as those revisions created it, frozen: a later change to a plumbing table
is a new revision in every service (a function here for it), never an edit of these."""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from services.common.db.engine import UtcDateTime


def create_tables(op: Any, *, outbox: bool = True) -> None:
    """Initial revision, upgrade: the plumbing tables (the outbox only where the service
    publishes events)."""
    op.create_table(
        "consumer_offsets",
        sa.Column("consumer", sa.String(length=60), nullable=False),
        sa.Column("topic", sa.String(length=100), nullable=False),
        sa.Column("partition", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("next_offset", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("consumer", "topic", "partition",
                                name=op.f("pk_consumer_offsets")),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("scope", sa.String(length=200), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("headers", sa.Text(), server_default="{}", nullable=False),
        sa.Column("created_at", UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", "scope", name=op.f("pk_idempotency_keys")),
    )
    if outbox:
        create_outbox(op)
    op.create_table(
        "processed_events",
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("consumer", sa.String(length=60), nullable=False),
        sa.Column("processed_at", UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("event_id", "consumer", name=op.f("pk_processed_events")),
    )


def drop_tables(op: Any, *, outbox: bool = True) -> None:
    """Initial revision, downgrade: the reverse of `create_tables`."""
    op.drop_table("processed_events")
    if outbox:
        drop_outbox(op)
    op.drop_table("idempotency_keys")
    op.drop_table("consumer_offsets")


def create_outbox(op: Any) -> None:
    """The transactional outbox: events written with the state change, published later."""
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  autoincrement=True, nullable=False),
        sa.Column("topic", sa.String(length=100), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("event_type", sa.String(length=100), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("state", sa.String(length=10), server_default="pending", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("event_id", name=op.f("uq_outbox_event_id")),
    )
    op.create_index("ix_outbox_state_id", "outbox", ["state", "id"], unique=False)


def drop_outbox(op: Any) -> None:
    op.drop_index("ix_outbox_state_id", "outbox")
    op.drop_table("outbox")


def create_pruning_indexes(op: Any) -> None:
    """The indexes the worker's housekeeping deletes by (old processed event ids, expired
    Idempotency-Keys): a range scan instead of a full one."""
    op.create_index("ix_processed_events_processed_at", "processed_events", ["processed_at"])
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])


def drop_pruning_indexes(op: Any) -> None:
    op.drop_index("ix_idempotency_keys_created_at", "idempotency_keys")
    op.drop_index("ix_processed_events_processed_at", "processed_events")


def create_rate_limits(op: Any) -> None:
    """Per-client request counters (services/common/http/ratelimit.py), where a service
    limits a public endpoint."""
    op.create_table(
        "rate_limits",
        sa.Column("client_key", sa.String(length=64), nullable=False),
        sa.Column("window_start", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("client_key", "window_start", name=op.f("pk_rate_limits")),
    )


def drop_rate_limits(op: Any) -> None:
    op.drop_table("rate_limits")
