"""serials: a contract's product serial number (and the claim's copy at filing), the source
of an order's tax (the service, or Stripe Tax)

Revision ID: 0019_serials_serial_numbers
Revises: 0018_legal_terms
Create Date: 2026-12-01 17:00:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = '0019_serials_serial_numbers'
down_revision: str | None = '0018_legal_terms'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ('contract', 'claim'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('serial_number',
                                          sqlmodel.sql.sqltypes.AutoString(length=64),
                                          nullable=True))
            batch_op.add_column(sa.Column('serial_key',
                                          sqlmodel.sql.sqltypes.AutoString(length=255),
                                          nullable=True))
            batch_op.create_index(batch_op.f(f'ix_{table}_serial_key'), ['serial_key'],
                                  unique=False)
    # Orders priced before this revision had their tax worked out by the service (and bulk
    # writers that name only the columns they fill get the same).
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('tax_source', sqlmodel.sql.sqltypes.AutoString(length=10),
                                      server_default='service', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_column('tax_source')
    for table in ('claim', 'contract'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(batch_op.f(f'ix_{table}_serial_key'))
            batch_op.drop_column('serial_key')
            batch_op.drop_column('serial_number')
