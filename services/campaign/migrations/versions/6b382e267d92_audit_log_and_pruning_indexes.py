"""audit log (append-only); indexes to prune processed events and expired keys

The audit log of operator/admin actions and of reads and exports of personal data, with the
triggers that refuse UPDATE and DELETE (services/common/audit.py); and the indexes the worker
uses to delete old processed event ids and expired Idempotency-Keys (housekeeping.py).

Revision ID: 6b382e267d92
Revises: b7e2f4a19c63
Create Date: 2026-12-02 10:00:00

"""
from collections.abc import Sequence

from alembic import op

from services.common import audit

revision: str = "6b382e267d92"
down_revision: str | Sequence[str] | None = "b7e2f4a19c63"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    audit.create_in_migration(op)
    op.create_index("ix_processed_events_processed_at", "processed_events", ["processed_at"])
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_idempotency_keys_created_at", "idempotency_keys")
    op.drop_index("ix_processed_events_processed_at", "processed_events")
    audit.drop_in_migration(op)
