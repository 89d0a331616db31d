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
from services.common.db import plumbing

revision: str = "6b382e267d92"
down_revision: str | Sequence[str] | None = "b7e2f4a19c63"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    audit.create_in_migration(op)
    plumbing.create_pruning_indexes(op)


def downgrade() -> None:
    plumbing.drop_pruning_indexes(op)
    audit.drop_in_migration(op)
