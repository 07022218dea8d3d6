"""voided links: sign-in links mailed to an address before a revocation sign nobody in

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01 12:30:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import warranty.db.types

revision: str = '0015'
down_revision: str | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('voided_links',
    sa.Column('email', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
    sa.Column('voided_at', warranty.db.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('email', name=op.f('pk_voided_links'))
    )


def downgrade() -> None:
    op.drop_table('voided_links')
