"""The rollup tables: deferred revenue per warranty category at every month end."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from sqlmodel import Field, SQLModel


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

