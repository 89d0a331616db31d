"""owners are people: owner_subject and claimed_at on umkm

Existing rows keep owner_subject NULL: their owner is unknown until someone claims the
business with its NIK and NIB (POST /v1/umkm/claims).

Revision ID: 7711d7b918aa
Revises: 5e85e7ac0b85
Create Date: 2026-12-02 10:00:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from services.common.db.engine import UtcDateTime

revision: str = '7711d7b918aa'
down_revision: str | Sequence[str] | None = '5e85e7ac0b85'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('umkm') as batch:
        batch.add_column(sa.Column('owner_subject', sa.String(length=128), nullable=True))
        batch.add_column(sa.Column('claimed_at', UtcDateTime(timezone=True),
                                   nullable=True))
        batch.create_index('ix_umkm_owner_subject', ['owner_subject'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('umkm') as batch:
        batch.drop_index('ix_umkm_owner_subject')
        batch.drop_column('claimed_at')
        batch.drop_column('owner_subject')
