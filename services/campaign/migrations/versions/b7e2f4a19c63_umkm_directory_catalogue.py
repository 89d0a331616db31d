"""umkm directory: owner subject, trade name, NIB, declared and onboarded platforms

Existing rows keep NULLs (owner unknown until claimed; events written before these fields
carry no name or NIB).

Revision ID: b7e2f4a19c63
Revises: 4b841b20cd23
Create Date: 2026-11-24 09:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import services.common.db

revision: str = "b7e2f4a19c63"
down_revision: str | Sequence[str] | None = "4b841b20cd23"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("umkm_directory", schema=None) as b:
        b.add_column(sa.Column("owner_subject", sa.String(length=128), nullable=True))
        b.add_column(sa.Column("trade_name", sa.String(length=200), nullable=True))
        b.add_column(sa.Column("name_key", sa.String(length=200), nullable=True))
        b.add_column(sa.Column("nib", sa.String(length=13), nullable=True))
        b.add_column(sa.Column("platforms_declared", sa.String(length=400), nullable=True))
        b.create_index("ix_umkm_directory_nib", ["nib"], unique=False)
        b.create_index("ix_umkm_directory_owner", ["owner_subject"], unique=False)
        b.create_index("ix_umkm_directory_province_name", ["province_code", "name_key"],
                       unique=False)
    op.create_table(
        "umkm_directory_platforms",
        sa.Column("umkm_id", sa.String(length=36), nullable=False),
        sa.Column("platform", sa.String(length=40), nullable=False),
        sa.Column("onboarded_at", services.common.db.UtcDateTime(timezone=True),
                  nullable=False),
        sa.PrimaryKeyConstraint("umkm_id", "platform", name=op.f("pk_umkm_directory_platforms")),
    )


def downgrade() -> None:
    op.drop_table("umkm_directory_platforms")
    with op.batch_alter_table("umkm_directory", schema=None) as b:
        b.drop_index("ix_umkm_directory_province_name")
        b.drop_index("ix_umkm_directory_owner")
        b.drop_index("ix_umkm_directory_nib")
        for name in ("platforms_declared", "nib", "name_key", "trade_name", "owner_subject"):
            b.drop_column(name)
