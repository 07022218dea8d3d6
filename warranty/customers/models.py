"""Per-customer facts for the retention report."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from sqlmodel import Field, SQLModel


class CustomerFacts(SQLModel, table=True):
    """What the retention report needs of one customer (an email), kept up to date in the
    transaction of every write to their orders, contracts or visitor events
    (``warranty.customers.facts``), so the report reads one row per customer instead of
    every order. A purchase is a paid (or later refunded) order that is not a post-purchase
    plan order; every figure below is a pure function of the base tables."""

    __tablename__ = "customer_facts"

    email: str = Field(primary_key=True, max_length=320)
    first_purchase: date | None = Field(default=None, index=True)  # None: no purchase yet
    orders: int = 0  # purchases
    value: int = Field(default=0, sa_type=sa.BigInteger())  # minor units: their totals
    next_gap: int | None = None  # days from the first purchase to the next on a later day
    year_one: int = 0  # purchases less than 365 days after the first (the first included)
    # Bit k (1..12) set: a purchase in calendar month k after the first purchase's month.
    months: int = 0
    first_plan: date | None = None  # earliest product purchase date a plan was bought for
    arm: str | None = Field(default=None, max_length=20)  # min arm of their orders' visitors
