"""progress by event time: keep each business's registration, first onboarding and curation times

The monthly portal counts behind the national progress figures are new rows in metric_values
(no schema change); what needs columns is where each business was counted, so that a later
event (an earlier onboarding, a new curation decision, a withdrawal) can move or remove it.
Existing rows get NULL times and are in no monthly count: run `bbi metrics rebuild` after
upgrading to recount everything from the topics (docs/OPERATIONS.md).

Revision ID: c41f7a2e9b15
Revises: c60c40b194c4
Create Date: 2026-12-02 04:00:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from services.common.db.engine import UtcDateTime

# revision identifiers, used by Alembic.
revision: str = "c41f7a2e9b15"
down_revision: str | Sequence[str] | None = "c60c40b194c4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("umkm_attributes", "umkm_attributes_rebuild")
_COLUMNS = ("registered_at", "first_onboarded_at", "curated_at")


def upgrade() -> None:
    """Upgrade schema."""
    for table in _TABLES:
        for column in _COLUMNS:
            op.add_column(
                table,
                sa.Column(column, UtcDateTime(timezone=True), nullable=True),
            )


def downgrade() -> None:
    """Downgrade schema."""
    for table in _TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column in _COLUMNS:
                batch_op.drop_column(column)
