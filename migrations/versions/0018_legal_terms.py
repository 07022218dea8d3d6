"""legal terms: versions of the plans' terms, the version each contract was sold under,
mail attachments (the certificate PDFs of the purchase mail)

Existing contracts get the version of their rule set under the store's conditions as the
service reads them now (WARRANTY_CURRENCY, WARRANTY_FREE_LOOK_DAYS,
WARRANTY_CANCELLATION_FEE, WARRANTY_CLAIM_FILING_DAYS_AFTER_TERM, WARRANTY_REPAIR_ONLY):
the conditions in force at their sale were not recorded, and those are the ones their
cancellations and claims are handled under.

Revision ID: 0018_legal_terms
Revises: 0017
Create Date: 2026-12-01 17:00:00.000000
"""
import hashlib
import json
import os
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import warranty.db.types

revision: str = '0018_legal_terms'
down_revision: str | None = '0017'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _conditions() -> dict:
    """The store's conditions from the environment, as warranty.core.settings reads them
    (warranty.pricing.terms.Conditions)."""
    def number(name: str, default: int) -> int:
        text = os.environ.get(name, "").strip()
        return int(text) if text else default

    repair = os.environ.get("WARRANTY_REPAIR_ONLY", "").strip().lower()
    return {"currency": os.environ.get("WARRANTY_CURRENCY", "jpy").strip().lower() or "jpy",
            "free_look_days": number("WARRANTY_FREE_LOOK_DAYS", 30),
            "cancellation_fee": number("WARRANTY_CANCELLATION_FEE", 0),
            "claim_filing_days": number("WARRANTY_CLAIM_FILING_DAYS_AFTER_TERM", 90),
            "repair_only": repair in ("1", "true", "yes", "on")}


def _label(rule_set_version: int, conditions: dict) -> str:
    """warranty.pricing.terms.label, as of this revision."""
    canonical = json.dumps(conditions, sort_keys=True, separators=(",", ":"))
    return f"{rule_set_version}-{hashlib.sha256(canonical.encode()).hexdigest()[:6]}"


def upgrade() -> None:
    op.create_table('terms_version',
    sa.Column('version', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('rule_set_version', sa.Integer(), nullable=False),
    sa.Column('conditions', sa.JSON(), nullable=False),
    sa.Column('created_at', warranty.db.types.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['rule_set_version'], ['rule_set.version'], name=op.f('fk_terms_version_rule_set_version_rule_set')),
    sa.PrimaryKeyConstraint('version', name=op.f('pk_terms_version'))
    )
    op.create_table('mail_attachment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('mail_id', sa.Integer(), nullable=False),
    sa.Column('filename', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('content_type', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['mail_id'], ['mail_message.id'], name=op.f('fk_mail_attachment_mail_id_mail_message')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mail_attachment'))
    )
    with op.batch_alter_table('mail_attachment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mail_attachment_mail_id'), ['mail_id'], unique=False)
    with op.batch_alter_table('contract', schema=None) as batch_op:
        batch_op.add_column(sa.Column('terms_version', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True))
    conn = op.get_bind()
    conditions = _conditions()
    versions = sa.table('terms_version', sa.column('version'), sa.column('rule_set_version'),
                        sa.column('conditions', sa.JSON()), sa.column('created_at'))
    contract = sa.table('contract', sa.column('rule_set_version'),
                        sa.column('terms_version'))
    used = conn.execute(sa.select(contract.c.rule_set_version).distinct()).scalars().all()
    now = sa.func.now() if conn.dialect.name == "postgresql" else sa.func.current_timestamp()
    for rule_set_version in sorted(used):
        name = _label(rule_set_version, conditions)
        conn.execute(versions.insert().values(version=name, rule_set_version=rule_set_version,
                                              conditions=conditions, created_at=now))
        conn.execute(contract.update().where(contract.c.rule_set_version == rule_set_version)
                     .values(terms_version=name))
    with op.batch_alter_table('contract', schema=None) as batch_op:
        batch_op.alter_column('terms_version', existing_type=sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False)
        batch_op.create_foreign_key(batch_op.f('fk_contract_terms_version_terms_version'), 'terms_version', ['terms_version'], ['version'])


def downgrade() -> None:
    with op.batch_alter_table('contract', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_contract_terms_version_terms_version'), type_='foreignkey')
        batch_op.drop_column('terms_version')
    op.drop_table('terms_version')
    with op.batch_alter_table('mail_attachment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mail_attachment_mail_id'))
    op.drop_table('mail_attachment')
