"""an NPWP that is a NIK is kept as one; partner-reported rows can be verified

1. NPWP (issue 15 finding 1): an individual's NPWP is their NIK. Rows that stored one in
   clear get its keyed hash (npwp_nik_hash, the same HMAC as umkm.nik_hash, so equal numbers
   match) and last four digits (masked display); the clear value is removed. Legacy NPWPs
   (0 + 15 digits) stay as they are. Needs BBI_PII_HASH_KEY: the key the services use.
2. Lifecycle (finding 2): partner-reported rows started as `onboarded` without ever being
   verified, so they could not be verified. Those become `registered` (their platform
   onboardings stay); an operator's verification then makes them `onboarded`.

Revision ID: 756f84dc7d1c
Revises: 7711d7b918aa
Create Date: 2026-12-02 12:00:00

"""
import hashlib
import hmac
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '756f84dc7d1c'
down_revision: str | Sequence[str] | None = '7711d7b918aa'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 1000


def _nik_hash(key: str, nik: str) -> str:
    # Frozen copy of services.registration.store.nik_hash (a test checks they agree).
    return hmac.new(key.encode(), ("nik:" + nik).encode(), hashlib.sha256).hexdigest()


def upgrade() -> None:
    from services.common.config import Settings

    with op.batch_alter_table('umkm') as batch:
        batch.add_column(sa.Column('npwp_nik_hash', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('npwp_last4', sa.String(length=4), nullable=True))
    key = Settings.from_env("registration").pii_hash_key
    conn = op.get_bind()
    umkm = sa.table('umkm', sa.column('id', sa.String), sa.column('npwp', sa.String),
                    sa.column('npwp_nik_hash', sa.String),
                    sa.column('npwp_last4', sa.String), sa.column('status', sa.String),
                    sa.column('channel', sa.String), sa.column('verified_at', sa.DateTime))
    # Any stored 16-digit NPWP not starting with 0 was accepted as a NIK (validate_npwp).
    nik_form = sa.and_(umkm.c.npwp.is_not(None), sa.func.length(umkm.c.npwp) == 16,
                       sa.func.substr(umkm.c.npwp, 1, 1) != '0')
    update = (umkm.update().where(umkm.c.id == sa.bindparam('b_id'))
              .values(npwp=None, npwp_nik_hash=sa.bindparam('b_hash'),
                      npwp_last4=sa.bindparam('b_last4')))
    while True:  # batches: a large table is never held in memory at once
        rows = conn.execute(sa.select(umkm.c.id, umkm.c.npwp).where(nik_form)
                            .order_by(umkm.c.id).limit(_BATCH)).all()
        if not rows:
            break
        conn.execute(update, [{'b_id': r.id, 'b_hash': _nik_hash(key, r.npwp),
                               'b_last4': r.npwp[-4:]} for r in rows])
    conn.execute(umkm.update().where(umkm.c.channel == 'partner', umkm.c.status == 'onboarded',
                                     umkm.c.verified_at.is_(None))
                 .values(status='registered'))


def downgrade() -> None:
    # The clear NPWPs are gone for good (that is the point); only the columns go back.
    with op.batch_alter_table('umkm') as batch:
        batch.drop_column('npwp_last4')
        batch.drop_column('npwp_nik_hash')
