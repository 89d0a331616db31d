"""indexes to prune processed events and expired idempotency keys

The worker deletes processed event ids after their retention window and Idempotency-Keys
after their TTL (services/common/messaging/housekeeping.py): these indexes keep that a range scan.

Revision ID: c60c40b194c4
Revises: 2d7bcc904732
Create Date: 2026-12-02 10:00:00

"""
from collections.abc import Sequence

from alembic import op

from services.common.db import plumbing

revision: str = "c60c40b194c4"
down_revision: str | Sequence[str] | None = "2d7bcc904732"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    plumbing.create_pruning_indexes(op)


def downgrade() -> None:
    plumbing.drop_pruning_indexes(op)
