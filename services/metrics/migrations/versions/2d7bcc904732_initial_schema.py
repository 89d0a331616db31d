"""initial schema

Revision ID: 2d7bcc904732
Revises:
Create Date: 2026-11-23 16:06:03.925326

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from services.common.db import plumbing
from services.common.db.engine import UtcDateTime

revision: str = "2d7bcc904732"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# The live tables and their twins that `bbi metrics rebuild` fills before swapping them in.
_TWINS = ("", "_rebuild")


def upgrade() -> None:
    plumbing.create_tables(op)
    op.create_table(
        "consumer_lag",
        sa.Column("topic", sa.String(length=100), nullable=False),
        sa.Column("partition", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("lag", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("topic", "partition", name=op.f("pk_consumer_lag")),
    )
    op.create_table(
        "pipeline_status",
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_pipeline_status")),
    )
    for twin in _TWINS:
        op.create_table(
            "metric_values" + twin,
            sa.Column("metric", sa.String(length=80), nullable=False),
            sa.Column("labels", sa.String(length=300), nullable=False),
            sa.Column("value", sa.BigInteger(), nullable=False),
            sa.PrimaryKeyConstraint("metric", "labels", name=op.f("pk_metric_values" + twin)),
        )
        op.create_table(
            "umkm_attributes" + twin,
            sa.Column("umkm_id", sa.String(length=36), nullable=False),
            sa.Column("province", sa.String(length=2), nullable=False),
            sa.Column("scale", sa.String(length=10), nullable=False),
            sa.Column("kbli_section", sa.String(length=1), nullable=False),
            sa.Column("qris", sa.Boolean(), nullable=False),
            sa.Column("verified", sa.Boolean(), nullable=False),
            sa.Column("platforms", sa.String(length=400), nullable=False),
            sa.Column("curation", sa.String(length=10), nullable=True),
            sa.Column("status", sa.String(length=12), nullable=False),
            sa.PrimaryKeyConstraint("umkm_id", name=op.f("pk_umkm_attributes" + twin)),
        )


def downgrade() -> None:
    for twin in _TWINS:
        op.drop_table("umkm_attributes" + twin)
        op.drop_table("metric_values" + twin)
    op.drop_table("pipeline_status")
    op.drop_table("consumer_lag")
    plumbing.drop_tables(op)
