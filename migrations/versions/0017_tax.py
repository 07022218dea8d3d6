"""tax: gross, tax and net on order lines, the tax of each contract and refund

Existing rows are backfilled as the store's tax setting implies (WARRANTY_CURRENCY,
WARRANTY_TAX_MODE, WARRANTY_TAX_RATE, WARRANTY_TAX_ROUNDING as the service reads them):
with inclusive prices the tax was in what customers paid, so each order's plan lines get
the order's tax rounded once and allocated, their contracts the unit shares and refunds
their proportion; with exclusive prices no tax was added to those orders, so their tax is 0
and gross = net = amount.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-01 14:45:00.000000
"""
import os
from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal

import sqlalchemy as sa
from alembic import op

from warranty.core import money
from warranty.core.tax import TaxPolicy, default_rate, parse_rate

revision: str = '0017'
down_revision: str | None = '0016'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _policy() -> TaxPolicy:
    """The store's tax setting from the environment, as warranty.core.settings reads it."""
    currency = os.environ.get("WARRANTY_CURRENCY", "jpy").strip().lower() or "jpy"
    rate_text = os.environ.get("WARRANTY_TAX_RATE", "").strip()
    rate = parse_rate(rate_text) if rate_text else default_rate(currency)
    return TaxPolicy(mode=os.environ.get("WARRANTY_TAX_MODE", "inclusive").strip().lower()
                     or "inclusive", rate=Decimal(rate),
                     rounding=os.environ.get("WARRANTY_TAX_ROUNDING", "down").strip().lower()
                     or "down", currency=currency)


def upgrade() -> None:
    with op.batch_alter_table('order_line', schema=None) as batch_op:
        batch_op.add_column(sa.Column('gross', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('tax', sa.BigInteger(), server_default='0',
                                      nullable=False))
        batch_op.add_column(sa.Column('net', sa.BigInteger(), nullable=True))
    with op.batch_alter_table('contract', schema=None) as batch_op:
        batch_op.add_column(sa.Column('tax', sa.BigInteger(), server_default='0',
                                      nullable=False))
    with op.batch_alter_table('refund', schema=None) as batch_op:
        batch_op.add_column(sa.Column('tax', sa.BigInteger(), server_default='0',
                                      nullable=False))
    _backfill(op.get_bind(), _policy())
    with op.batch_alter_table('order_line', schema=None) as batch_op:
        batch_op.alter_column('gross', existing_type=sa.BigInteger(), nullable=False)
        batch_op.alter_column('net', existing_type=sa.BigInteger(), nullable=False)
        batch_op.alter_column('tax', existing_type=sa.BigInteger(), server_default=None)
    for table in ('contract', 'refund'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column('tax', existing_type=sa.BigInteger(), server_default=None)


def _backfill(conn, policy: TaxPolicy) -> None:
    """Gross, tax and net of every line; the tax of every contract and plan refund."""
    line = sa.table('order_line', sa.column('id'), sa.column('order_id'), sa.column('kind'),
                    sa.column('amount'), sa.column('gross'), sa.column('tax'),
                    sa.column('net'))
    contract = sa.table('contract', sa.column('id'), sa.column('plan_line_id'),
                        sa.column('unit_index'), sa.column('price'), sa.column('tax'))
    refund = sa.table('refund', sa.column('id'), sa.column('contract_id'),
                      sa.column('amount'), sa.column('tax'))
    conn.execute(line.update().values(gross=line.c.amount, net=line.c.amount, tax=0))
    if policy.exclusive or policy.rate == 0:
        return  # nothing was added to those orders (exclusive), or there is no tax
    plans = defaultdict(list)
    for id_, order_id, amount in conn.execute(
            sa.select(line.c.id, line.c.order_id, line.c.amount)
            .where(line.c.kind == 'plan').order_by(line.c.order_id, line.c.id)):
        plans[order_id].append((id_, amount))
    line_tax: dict[int, int] = {}
    for rows in plans.values():
        for (id_, _), (gross, tax, net) in zip(rows, policy.split([a for _, a in rows]),
                                               strict=True):
            line_tax[id_] = tax
            conn.execute(line.update().where(line.c.id == id_).values(gross=gross, tax=tax,
                                                                     net=net))
    units = defaultdict(list)
    for id_, line_id, price in conn.execute(
            sa.select(contract.c.id, contract.c.plan_line_id, contract.c.price)
            .order_by(contract.c.plan_line_id, contract.c.unit_index)):
        units[line_id].append((id_, price))
    contract_tax: dict[int, tuple[int, int]] = {}
    for line_id, rows in units.items():
        shares = money.allocate(line_tax.get(line_id, 0), [p for _, p in rows])
        for (id_, price), tax in zip(rows, shares, strict=True):
            contract_tax[id_] = (price, tax)
            conn.execute(contract.update().where(contract.c.id == id_).values(tax=tax))
    for id_, contract_id, amount in conn.execute(
            sa.select(refund.c.id, refund.c.contract_id, refund.c.amount)
            .where(refund.c.contract_id.is_not(None))):
        price, tax = contract_tax.get(contract_id, (0, 0))
        reversed_tax = policy.refund_tax(line_tax=tax, line_gross=price, refund=amount,
                                         left=tax)
        if reversed_tax:
            conn.execute(refund.update().where(refund.c.id == id_).values(tax=reversed_tax))


def downgrade() -> None:
    with op.batch_alter_table('refund', schema=None) as batch_op:
        batch_op.drop_column('tax')
    with op.batch_alter_table('contract', schema=None) as batch_op:
        batch_op.drop_column('tax')
    with op.batch_alter_table('order_line', schema=None) as batch_op:
        batch_op.drop_column('net')
        batch_op.drop_column('tax')
        batch_op.drop_column('gross')
