"""umkm directory: owner subject, trade name, NIB, declared and onboarded platforms

Existing rows keep NULLs (owner unknown until claimed; events written before these fields
carry no name or NIB).

Revision ID: b7e2f4a19c63
Revises: 4b841b20cd23
Create Date: 2026-11-24 09:00:00

"""

from collections.abc import Sequence

from alembic import op

from services.common import umkm_directory

revision: str = "b7e2f4a19c63"
down_revision: str | Sequence[str] | None = "4b841b20cd23"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    umkm_directory.add_catalogue_in_migration(op)


def downgrade() -> None:
    umkm_directory.drop_catalogue_in_migration(op)
