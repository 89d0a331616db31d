"""drop the outbox: metrics publishes no events

The initial revision created every service's plumbing tables, the outbox included, but
metrics only consumes (its worker runs no relay). Downgrade puts the empty table back.

Revision ID: e5d1a7c3b2f9
Revises: c41f7a2e9b15
Create Date: 2026-12-03 08:00:00

"""
from collections.abc import Sequence

from alembic import op

from services.common.db import plumbing

revision: str = "e5d1a7c3b2f9"
down_revision: str | Sequence[str] | None = "c41f7a2e9b15"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    plumbing.drop_outbox(op)


def downgrade() -> None:
    plumbing.create_outbox(op)
