"""The rollup tables: deferred revenue per warranty category at every month end."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from warranty.contracts.models import Contract
from warranty.customers.models import CustomerFacts
from warranty.orders.models import Refund


class DeferredRollup(SQLModel, table=True):
    """Deferred revenue of a warranty category at the end of a calendar month, and how many
    contracts were in the books during that month.

    Rows are added (never updated) by triggers on ``contract`` and ``refund`` in the
    writer's transaction (``warranty.rollups.deferred``): a contract adds one row per month
    it is in the books, a refund takes the months after its booking away again. The figures
    of a (category, month end) are the sum of its rows; ``compact`` folds them into one.
    """

    __tablename__ = "deferred_rollup"

    id: int | None = Field(default=None, primary_key=True)
    warranty_category: str = Field(max_length=50)
    month_end: date = Field(index=True)
    # Minor units: the deferred revenue at the end of month_end, net of tax, and its tax.
    net: int = Field(default=0, sa_type=sa.BigInteger())
    tax: int = Field(default=0, sa_type=sa.BigInteger())
    # Contracts booked by month_end whose last change (refund booking, term end) is in the
    # month or later; and those whose last change is on month_end or later.
    touching: int = 0
    at_end: int = 0



class RetentionRollup(SQLModel, table=True):
    """Customers by first-purchase day, plan group and holdout arm, with the sums of their
    ``customer_facts`` the retention report reads (``warranty.rollups.retention``).

    Rows are added (never updated) by a trigger on ``customer_facts`` in the transaction
    that recomputes a customer's facts: the old row's figures taken away, the new one's
    added. The figures of a key are the sum of its rows.
    """

    __tablename__ = "retention_rollup"

    id: int | None = Field(default=None, primary_key=True)
    first_purchase: date = Field(index=True)
    with_plan: int  # 1: a plan was bought for the first purchase
    arm: str | None = Field(default=None, max_length=20)
    customers: int = 0
    orders: int = 0
    value: int = Field(default=0, sa_type=sa.BigInteger())  # minor units
    year_one: int = 0
    back_90: int = 0  # customers who bought again on a later day within 90 days
    back_180: int = 0
    back_365: int = 0
    m1: int = 0  # customers who bought in calendar month 1 after the first purchase's
    m2: int = 0
    m3: int = 0
    m4: int = 0
    m5: int = 0
    m6: int = 0
    m7: int = 0
    m8: int = 0
    m9: int = 0
    m10: int = 0
    m11: int = 0
    m12: int = 0


# Writes to these fact tables write the rollups (triggers): in table order (tests and tools
# that empty every table, last table first) a rollup comes before its facts, so it is
# emptied after them and the rows their deletion adds are gone too.
for _facts, _rollup in ((Contract, DeferredRollup), (Refund, DeferredRollup),
                        (CustomerFacts, RetentionRollup)):
    _facts.__table__.add_is_dependent_on(_rollup.__table__)
