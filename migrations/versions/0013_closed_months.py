"""closed months: a booking date on every money fact, and the months finance closed

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 10:00:37.126200
"""
import os
from collections.abc import Sequence
from datetime import UTC
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import warranty.db.types

revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _book_existing_rows() -> None:
    """Nothing was closed before this revision: every fact is booked on its own date."""
    conn = op.get_bind()
    conn.execute(sa.text("UPDATE contract SET booked_on = plan_sold_on"))
    conn.execute(sa.text("UPDATE refund SET booked_on = cancel_date"))
    conn.execute(sa.text("UPDATE orders SET booked_on = purchase_date "
                         "WHERE purchase_date IS NOT NULL AND status IN ('paid', 'refunded')"))
    # A payout's date is the store-local day it was recorded (the store's time zone, as the
    # settings read it; payouts are few, so in Python on both backends).
    zone = ZoneInfo(os.environ.get("WARRANTY_TIMEZONE", "Asia/Tokyo"))
    payout = sa.table("payout", sa.column("id"),
                      sa.column("created_at", warranty.db.types.UTCDateTime()),
                      sa.column("booked_on", sa.Date()))
    for row_id, created in conn.execute(sa.select(payout.c.id, payout.c.created_at)).all():
        day = created.replace(tzinfo=created.tzinfo or UTC).astimezone(zone).date()
        conn.execute(payout.update().where(payout.c.id == row_id).values(booked_on=day))


def upgrade() -> None:
    op.create_table('closed_month',
    sa.Column('month', sa.Date(), nullable=False),
    sa.Column('closed_at', warranty.db.types.UTCDateTime(), nullable=False),
    sa.Column('closed_by', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('note', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
    sa.Column('figures', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('month', name=op.f('pk_closed_month'))
    )
    for table in ('contract', 'orders', 'payout', 'refund'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('booked_on', sa.Date(), nullable=True))
    _book_existing_rows()
    for table in ('contract', 'payout', 'refund'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column('booked_on', existing_type=sa.Date(), nullable=False)
    for table in ('contract', 'orders', 'payout', 'refund'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(f'ix_{table}_booked_on', ['booked_on'], unique=False)


def downgrade() -> None:
    for table in ('refund', 'payout', 'orders', 'contract'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(f'ix_{table}_booked_on')
            batch_op.drop_column('booked_on')
    op.drop_table('closed_month')
