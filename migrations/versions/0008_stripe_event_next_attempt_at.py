"""stripe_event.next_attempt_at: Stripe event retries scheduled like every other job

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 10:00:00.000000
"""
from collections.abc import Sequence
from datetime import timedelta
from types import SimpleNamespace

import sqlalchemy as sa
from alembic import op

import warranty.db.types
from warranty.db.outbox import backoff_seconds
from warranty.core.settings import Settings

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# What the worker used to wait before it first looked at an unprocessed event.
OLD_RECOVERY_MIN_AGE_SECONDS = 30


def _backfill() -> None:
    """Processed events: when they were processed. Unprocessed ones: when the old schedule
    (received + 30 s + the backoffs of the failed tries so far, default settings) made them
    due, so an upgrade neither hurries nor delays a retry."""
    table = sa.table('stripe_event', sa.column('id', sa.String()),
                     sa.column('received_at', warranty.db.types.UTCDateTime()),
                     sa.column('processed_at', warranty.db.types.UTCDateTime()),
                     sa.column('attempts', sa.Integer()),
                     sa.column('next_attempt_at', warranty.db.types.UTCDateTime()))
    conn = op.get_bind()
    conn.execute(table.update().where(table.c.processed_at.is_not(None))
                 .values(next_attempt_at=table.c.processed_at))
    defaults = SimpleNamespace(**{name: Settings.model_fields[name].default
                                  for name in ('retry_base_seconds', 'retry_cap_seconds')})
    waiting = conn.execute(sa.select(table.c.id, table.c.received_at, table.c.attempts)
                           .where(table.c.processed_at.is_(None))).all()
    for event_id, received_at, attempts in waiting:
        wait = OLD_RECOVERY_MIN_AGE_SECONDS + sum(
            backoff_seconds(n, defaults) for n in range(1, min(attempts, 200) + 1))
        conn.execute(table.update().where(table.c.id == event_id)
                     .values(next_attempt_at=received_at + timedelta(seconds=wait)))


def upgrade() -> None:
    with op.batch_alter_table('stripe_event', schema=None) as batch_op:
        batch_op.add_column(sa.Column('next_attempt_at', warranty.db.types.UTCDateTime(),
                                      nullable=True))
    _backfill()
    with op.batch_alter_table('stripe_event', schema=None) as batch_op:
        batch_op.alter_column('next_attempt_at', existing_type=warranty.db.types.UTCDateTime(),
                              nullable=False)
        batch_op.create_index('ix_stripe_event_due', ['next_attempt_at'], unique=False,
                              postgresql_where=sa.text('processed_at IS NULL'),
                              sqlite_where=sa.text('processed_at IS NULL'))


def downgrade() -> None:
    with op.batch_alter_table('stripe_event', schema=None) as batch_op:
        batch_op.drop_index('ix_stripe_event_due')
        batch_op.drop_column('next_attempt_at')
