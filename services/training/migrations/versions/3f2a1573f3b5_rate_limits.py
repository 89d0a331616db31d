"""rate limits: per-client counters of the public certificate check

The same fixed-window counters registration keeps (services/common/http/ratelimit.py): the public
certificate lookup counts per client address across every worker and replica.

Revision ID: 3f2a1573f3b5
Revises: 0b91913f1de7
Create Date: 2026-12-02 12:30:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "3f2a1573f3b5"
down_revision: str | Sequence[str] | None = "0b91913f1de7"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rate_limits",
        sa.Column("client_key", sa.String(length=64), nullable=False),
        sa.Column("window_start", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("client_key", "window_start", name=op.f("pk_rate_limits")),
    )


def downgrade() -> None:
    op.drop_table("rate_limits")
