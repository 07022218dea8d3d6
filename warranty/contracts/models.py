"""Contracts (one plan for one unit) and their audit rows."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from warranty.core.ids import public_id
from warranty.db.types import json_field, money_field, ts_field


class Contract(SQLModel, table=True):
    """One plan on one unit of a product."""

    __table_args__ = (sa.UniqueConstraint("plan_line_id", "unit_index"),)

    id: int | None = Field(default=None, primary_key=True)
    public_id: str = Field(default_factory=lambda: public_id("ct"), max_length=40, unique=True)
    order_id: int = Field(foreign_key="orders.id", index=True)
    plan_line_id: int = Field(foreign_key="order_line.id")
    product_line_id: int = Field(foreign_key="order_line.id")
    unit_index: int = Field(ge=0)  # which unit of the plan line: exactly one contract each
    customer_email: str = Field(max_length=320, index=True)  # current owner
    sku: str = Field(max_length=100)
    product_title: str = Field(max_length=300)
    product_price: int = money_field()  # minor units, unit price paid for the product
    warranty_category: str = Field(max_length=50)
    plan_code: str = Field(max_length=50)
    coverage: str = Field(max_length=20)  # standard | accident
    term_months: int
    price: int = money_field()  # minor units paid for the plan, tax included
    # The tax in price: this unit's share of its order line's tax (price − tax is net).
    tax: int = money_field(default=0)
    currency: str = Field(max_length=3)
    rule_set_version: int = Field(foreign_key="rule_set.version")
    # The terms the plan was sold under (warranty.pricing.terms); every page, mail and
    # certificate of the contract shows this version.
    terms_version: str = Field(foreign_key="terms_version.version", max_length=40)
    deductible: int = money_field(default=0)  # minor units per claim
    liability_schedule: list = json_field(list)  # cap % of product price per coverage year
    purchase_date: date  # product purchase date: the term counts from it
    plan_sold_on: date  # the plan's own sale date (later for post-purchase plans)
    term_end: date
    breakdown_start: date
    accident_start: date | None = None
    waiting_until: date | None = None  # no claims with an incident before this date
    # The date the sale is booked on: plan_sold_on, or the first day of the first open month
    # when plan_sold_on was in a closed month as the sale was recorded (warranty.periods).
    booked_on: date
    status: str = Field(default="active", max_length=20, index=True)
    # The product's serial number, registered by the store (API) or the customer (their
    # contract page), normalised by warranty.core.text.serial_number; serial_key is the form
    # serials are compared by (the same product on two plans is a claim risk signal).
    serial_number: str | None = Field(default=None, max_length=64)
    serial_key: str | None = Field(default=None, max_length=255, index=True)
    created_at: datetime = ts_field()
    updated_at: datetime = ts_field()


class ContractEvent(SQLModel, table=True):
    """Audit row for every change to a contract: who, when, why."""

    __tablename__ = "contract_event"

    id: int | None = Field(default=None, primary_key=True)
    contract_id: int = Field(foreign_key="contract.id", index=True)
    action: str = Field(max_length=30)
    from_status: str | None = Field(default=None, max_length=20)
    to_status: str | None = Field(default=None, max_length=20)
    actor: str = Field(max_length=200)
    reason: str = Field(default="", max_length=1000)
    data: dict = json_field()
    created_at: datetime = ts_field()


sa.Index("ix_contract_plan_sold_on", Contract.__table__.c.plan_sold_on)
# Reports aggregate money facts by the date they are booked on (warranty.periods).
sa.Index("ix_contract_booked_on", Contract.__table__.c.booked_on)



# The finance report reads contracts by booking date (sales, adjustments) and, for the days of
# its period that are no month end, every contract in the books then, with what it needs of
# them alongside: an index-only scan on PostgreSQL, a covering index on SQLite.
sa.Index("ix_contract_booked_on_accrual", Contract.__table__.c.booked_on,
         Contract.__table__.c.term_end, Contract.__table__.c.plan_sold_on,
         Contract.__table__.c.price, Contract.__table__.c.tax,
         Contract.__table__.c.warranty_category, Contract.__table__.c.id)
