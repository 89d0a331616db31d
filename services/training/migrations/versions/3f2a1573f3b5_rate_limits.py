"""rate limits: per-client counters of the public certificate check

The same fixed-window counters registration keeps (services/common/http/ratelimit.py): the public
certificate lookup counts per client address across every worker and replica.

Revision ID: 3f2a1573f3b5
Revises: 0b91913f1de7
Create Date: 2026-12-02 12:30:00

"""
from collections.abc import Sequence

from alembic import op

from services.common.db import plumbing

revision: str = "3f2a1573f3b5"
down_revision: str | Sequence[str] | None = "0b91913f1de7"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    plumbing.create_rate_limits(op)


def downgrade() -> None:
    plumbing.drop_rate_limits(op)
