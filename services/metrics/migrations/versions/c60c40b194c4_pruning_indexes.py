"""indexes to prune processed events and expired idempotency keys

The worker deletes processed event ids after their retention window and Idempotency-Keys
after their TTL (services/common/messaging/housekeeping.py): these indexes keep that a range scan.

Revision ID: c60c40b194c4
Revises: 2d7bcc904732
Create Date: 2026-12-02 10:00:00

"""
from collections.abc import Sequence

from alembic import op

revision: str = "c60c40b194c4"
down_revision: str | Sequence[str] | None = "2d7bcc904732"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_processed_events_processed_at", "processed_events", ["processed_at"])
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_idempotency_keys_created_at", "idempotency_keys")
    op.drop_index("ix_processed_events_processed_at", "processed_events")
