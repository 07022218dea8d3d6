"""hardening: products matched by a normalised sku key (backfilled, unique); refused visitor
ids counted per day

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01 10:00:00.000000
"""
import re
import unicodedata
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op


revision: str = '0014'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# warranty.text.sku_key as of this revision, frozen here so that later changes to the module
# cannot change what this migration does (tests/db/test_migrations.py checks both agree).
_INVISIBLE_OTHER = {0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x3164, 0xFFA0,
                    *range(0xFE00, 0xFE10), *range(0xE0100, 0xE01F0)}
_DASHES = {0x2010, 0x2011, 0x2012, 0x2013, 0x2014, 0x2015, 0x2212, 0xFE58, 0xFE63, 0xFF0D}


def sku_key(sku: str) -> str:
    """The sku as products are matched: NFKC, case folded, no invisible characters."""
    text = unicodedata.normalize("NFKC", sku)
    text = "".join("-" if ord(ch) in _DASHES else ch for ch in text
                   if unicodedata.category(ch) != "Cf" and ord(ch) not in _INVISIBLE_OTHER)
    text = unicodedata.normalize("NFKC", text.casefold())
    return re.sub(r"\s+", " ", text).strip()


def _backfill_sku_keys() -> None:
    """Give every stored product its key; refuse (naming them) skus that become one."""
    product = sa.table("product", sa.column("id", sa.Integer()), sa.column("sku", sa.String()),
                       sa.column("sku_key", sa.String()))
    conn = op.get_bind()
    rows = conn.execute(sa.select(product.c.id, product.c.sku).order_by(product.c.id)).all()
    by_key: dict[str, list[str]] = {}
    for _id, sku in rows:
        by_key.setdefault(sku_key(sku) or sku, []).append(sku)
    clashes = [skus for skus in by_key.values() if len(skus) > 1]
    if clashes:
        listed = "; ".join(", ".join(repr(s) for s in skus) for skus in clashes[:20])
        raise RuntimeError(
            "these catalog skus differ only in case, width or invisible characters, so they "
            f"would be one product: {listed}. Rename or delete all but one of each "
            "(the store's catalog decides which), then migrate again.")
    if not rows:
        return
    conn.execute(product.update().where(product.c.id == sa.bindparam("row_id"))
                 .values(sku_key=sa.bindparam("key")),
                 [{"row_id": id_, "key": sku_key(sku) or sku} for id_, sku in rows])


def upgrade() -> None:
    op.create_table('refused_visitor_ids',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('count', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('day', 'source', 'reason', name=op.f('pk_refused_visitor_ids'))
    )
    with op.batch_alter_table('product', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sku_key', sqlmodel.sql.sqltypes.AutoString(length=300),
                                      nullable=True))
    _backfill_sku_keys()
    with op.batch_alter_table('product', schema=None) as batch_op:
        batch_op.alter_column('sku_key', existing_type=sqlmodel.sql.sqltypes.AutoString(
            length=300), nullable=False)
        batch_op.drop_index(batch_op.f('ix_product_sku'))
        batch_op.create_index(batch_op.f('ix_product_sku'), ['sku'], unique=False)
        batch_op.create_index(batch_op.f('ix_product_sku_key'), ['sku_key'], unique=True)


def downgrade() -> None:
    with op.batch_alter_table('product', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_product_sku_key'))
        batch_op.drop_index(batch_op.f('ix_product_sku'))
        batch_op.create_index(batch_op.f('ix_product_sku'), ['sku'], unique=True)
        batch_op.drop_column('sku_key')
    op.drop_table('refused_visitor_ids')
