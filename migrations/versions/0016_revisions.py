"""revisions: the catalog's revision and the newest rule version, what cached offers key on

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-08 10:00:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = '0016'
down_revision: str | None = '0015'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('revision',
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('value', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_revision'))
    )
    # Start from what the database holds: the newest rule version, a catalog at 1 if any.
    op.execute("INSERT INTO revision (name, value) "
               "SELECT 'rules', COALESCE(MAX(version), 0) FROM rule_set")
    op.execute("INSERT INTO revision (name, value) "
               "SELECT 'catalog', CASE WHEN EXISTS (SELECT 1 FROM product) THEN 1 ELSE 0 END")


def downgrade() -> None:
    op.drop_table('revision')
