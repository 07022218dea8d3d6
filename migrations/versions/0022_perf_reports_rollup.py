"""rollups: deferred revenue per category at every month end, retention sums per first-purchase
day, both kept by triggers

The finance report read every live contract at every month end of its period; now it reads
``deferred_rollup`` (warranty.rollups.deferred), which triggers on ``contract`` and
``refund`` keep in the writer's transaction. The rollup is filled from the facts here. The
index serves the report's reads of contracts by booking date and its scan of the contracts
still in the books on a day that is no month end. ``retention_rollup`` (warranty.rollups.retention) sums ``customer_facts`` per
first-purchase day, plan group and arm, kept by a trigger on ``customer_facts``.

A later migration that rebuilds ``contract``, ``refund`` or ``customer_facts`` on SQLite
(``batch_alter_table`` with a table copy) drops their triggers: it must create them again
(``deferred.ddl`` / ``retention.ddl``).

Revision ID: 0022_perf_reports_rollup
Revises: 0021_customer_claim_messages
Create Date: 2026-12-01 17:00:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

from warranty.rollups import deferred, retention

revision: str = '0022_perf_reports_rollup'
down_revision: str | None = '0021_customer_claim_messages'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('deferred_rollup',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('warranty_category', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
    sa.Column('month_end', sa.Date(), nullable=False),
    sa.Column('net', sa.BigInteger(), nullable=False),
    sa.Column('tax', sa.BigInteger(), nullable=False),
    sa.Column('touching', sa.Integer(), nullable=False),
    sa.Column('at_end', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deferred_rollup'))
    )
    with op.batch_alter_table('deferred_rollup', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_deferred_rollup_month_end'), ['month_end'],
                              unique=False)
    op.create_table('retention_rollup',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('first_purchase', sa.Date(), nullable=False),
    sa.Column('with_plan', sa.Integer(), nullable=False),
    sa.Column('arm', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
    sa.Column('customers', sa.Integer(), nullable=False),
    sa.Column('orders', sa.Integer(), nullable=False),
    sa.Column('value', sa.BigInteger(), nullable=False),
    sa.Column('year_one', sa.Integer(), nullable=False),
    sa.Column('back_90', sa.Integer(), nullable=False),
    sa.Column('back_180', sa.Integer(), nullable=False),
    sa.Column('back_365', sa.Integer(), nullable=False),
    *(sa.Column(f'm{m}', sa.Integer(), nullable=False) for m in range(1, 13)),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_retention_rollup'))
    )
    with op.batch_alter_table('retention_rollup', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_retention_rollup_first_purchase'),
                              ['first_purchase'], unique=False)
    with op.batch_alter_table('contract', schema=None) as batch_op:
        batch_op.create_index('ix_contract_booked_on_accrual',
                              ['booked_on', 'term_end', 'plan_sold_on', 'price', 'tax',
                               'warranty_category', 'id'], unique=False)
    conn = op.get_bind()
    for module in (deferred, retention):
        for statement in module.ddl(conn.dialect.name):
            conn.exec_driver_sql(statement)
        module.backfill(conn)


def downgrade() -> None:
    conn = op.get_bind()
    for module in (deferred, retention):
        for statement in module.drop_ddl(conn.dialect.name):
            conn.exec_driver_sql(statement)
    with op.batch_alter_table('contract', schema=None) as batch_op:
        batch_op.drop_index('ix_contract_booked_on_accrual')
    with op.batch_alter_table('deferred_rollup', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_deferred_rollup_month_end'))
    op.drop_table('deferred_rollup')
    with op.batch_alter_table('retention_rollup', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_retention_rollup_first_purchase'))
    op.drop_table('retention_rollup')
