"""claim messages: answers to a request for more information add to a claim

Staff requests already recorded (claim events ``info_requested``) become the first
messages; an answer given before this revision rewrote the claim and is not recoverable.

Revision ID: 0021_customer_claim_messages
Revises: 0020_finance_export_jobs
Create Date: 2026-12-01 17:00:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import warranty.db.types

revision: str = '0021_customer_claim_messages'
down_revision: str | None = '0020_finance_export_jobs'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('claim_message',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('claim_id', sa.Integer(), nullable=False),
    sa.Column('author', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('files', sa.JSON(), nullable=False),
    sa.Column('created_at', warranty.db.types.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['claim_id'], ['claim.id'],
                            name=op.f('fk_claim_message_claim_id_claim')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_claim_message'))
    )
    with op.batch_alter_table('claim_message', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_claim_message_claim_id'), ['claim_id'],
                              unique=False)
    event = sa.table('claim_event', sa.column('claim_id'), sa.column('action'),
                     sa.column('actor'), sa.column('reason'), sa.column('created_at'),
                     sa.column('id'))
    message = sa.table('claim_message', sa.column('claim_id'), sa.column('author'),
                       sa.column('kind'), sa.column('actor'), sa.column('body'),
                       sa.column('files'), sa.column('created_at'))
    conn = op.get_bind()
    rows = conn.execute(sa.select(event.c.claim_id, event.c.actor, event.c.reason,
                                  event.c.created_at)
                        .where(event.c.action == 'info_requested').order_by(event.c.id)).all()
    if rows:
        conn.execute(message.insert(), [
            {"claim_id": r.claim_id, "author": "staff", "kind": "info_request",
             "actor": r.actor, "body": r.reason or "", "files": [], "created_at": r.created_at}
            for r in rows])


def downgrade() -> None:
    with op.batch_alter_table('claim_message', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_claim_message_claim_id'))
    op.drop_table('claim_message')
