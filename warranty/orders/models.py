"""Orders, their lines and events, and refunds (money owed back on an order; payments executes
them).
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from warranty.core.ids import public_id
from warranty.db.types import json_field, money_field, ts_field

# The order statuses that count as a purchase (customer facts, conversion, the ledger,
# reconciliation): paid, and paid then refunded.
PURCHASE_STATUSES = ("paid", "refunded")


class Order(SQLModel, table=True):
    """An order: stored as pending before Stripe is called, so nothing is lost."""

    __tablename__ = "orders"

    id: int | None = Field(default=None, primary_key=True)
    public_id: str = Field(default_factory=lambda: public_id("ord"), max_length=40, unique=True)
    store_order_ref: str = Field(max_length=200, index=True)
    customer_email: str = Field(max_length=320, index=True)
    currency: str = Field(max_length=3)
    total_amount: int = money_field()  # minor units: what Stripe must charge
    # checkout_session | payment_intent | post_purchase | external
    channel: str = Field(max_length=20)
    # pending | paid | expired | failed | refunded
    status: str = Field(default="pending", max_length=20, index=True)
    purchase_date: date | None = None  # store-local date of payment
    visitor_id: str | None = Field(default=None, max_length=64, index=True)
    # Set for a post-purchase plan order: the original order and line it covers.
    parent_order_id: int | None = Field(default=None, foreign_key="orders.id")
    stripe_checkout_session_id: str | None = Field(default=None, max_length=255, unique=True)
    stripe_payment_intent_id: str | None = Field(default=None, max_length=255, unique=True)
    stripe_charge_id: str | None = Field(default=None, max_length=255)
    # Who works out the plans' tax: ``service`` (warranty.core.tax, at pricing) or ``stripe``
    # (Stripe Tax, automatic_tax on the Checkout Session: stored on the lines when paid).
    # (A server default too: bulk writers such as devtools.synth name only the columns they fill.)
    tax_source: str = Field(default="service", max_length=10,
                            sa_column_kwargs={"server_default": "service"})
    created_at: datetime = ts_field()
    paid_at: datetime | None = ts_field(nullable=True)
    # The date the books show the payment on: its purchase date, or the first day of the first
    # open month if that month was closed when the payment was recorded (warranty.periods).
    booked_on: date | None = None
    updated_at: datetime = ts_field()


class OrderLine(SQLModel, table=True):
    """A product line or a plan line of an order."""

    __tablename__ = "order_line"
    __table_args__ = (sa.UniqueConstraint("order_id", "line_no"),)

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="orders.id", index=True)
    line_no: int
    kind: str = Field(max_length=10)  # product | plan
    sku: str = Field(max_length=100)
    title: str = Field(max_length=300)
    quantity: int = Field(ge=1)
    unit_price: int = money_field()  # minor units, priced by the server for plan lines
    amount: int = money_field()  # unit_price × quantity, the prices as shown
    # The line's tax (warranty.core.tax): its share of the order's tax at its rate, rounded
    # once per order and allocated to the plan lines. gross = what the customer pays for the
    # line (tax included), net = gross − tax. Inclusive prices: gross = amount; exclusive
    # ones: net = amount. Product lines carry no tax of the service's: gross = net = amount.
    gross: int = money_field()
    tax: int = money_field(default=0)
    net: int = money_field()
    manufacturer_warranty_months: int | None = None
    warranty_category: str | None = Field(default=None, max_length=50)
    # Plan lines: what they cover and under which rules.
    plan_code: str | None = Field(default=None, max_length=50)
    rule_set_version: int | None = Field(default=None, foreign_key="rule_set.version")
    covers_line_id: int | None = Field(default=None, foreign_key="order_line.id")
    placement: str | None = Field(default=None, max_length=30)
    refunded_quantity: int = Field(default=0, ge=0)


class Refund(SQLModel, table=True):
    """Money given back through Stripe against an order's payment, each exactly once.

    ``kind``: ``plan`` — a cancelled contract's refund (one per contract); ``excess_plan`` — a
    post-purchase plan refunded automatically because every unit already had one when it was
    paid (no contract was ever made); ``external`` — a refund made outside the service, in
    Stripe's dashboard, recorded from Stripe's events (no contract). A plan refund whose money
    Stripe already gave back in another refund (a full refund of the charge made in the
    dashboard) names that refund in ``covered_by_id`` and makes no Stripe call of its own.
    """

    __table_args__ = (
        # Plan refunds, and only they, belong to a contract.
        sa.CheckConstraint("(kind = 'plan') = (contract_id IS NOT NULL)", name="kind_contract"),
    )

    id: int | None = Field(default=None, primary_key=True)
    contract_id: int | None = Field(default=None, foreign_key="contract.id", unique=True)
    order_id: int = Field(foreign_key="orders.id", index=True)
    kind: str = Field(default="plan", max_length=20)  # plan | excess_plan | external
    covered_by_id: int | None = Field(default=None, foreign_key="refund.id")
    amount: int = money_field()  # minor units
    # The tax the refund gives back (part of amount): the plan's tax in proportion to the
    # refund, rounded by the store's mode, never more than the plan's tax (warranty.core.tax).
    tax: int = money_field(default=0)
    currency: str = Field(max_length=3)
    cancel_date: date
    # The date the books take the refund on: cancel_date, or the first open day when the
    # cancellation was dated in a month already closed (an adjustment, warranty.periods).
    booked_on: date
    fee: int = money_field(default=0)
    claims_paid: int = money_field(default=0)
    reason: str = Field(default="", max_length=1000)
    # pending (not sent yet, or Stripe has not settled it) | succeeded | failed | not_needed
    status: str = Field(default="pending", max_length=20, index=True)
    idempotency_key: str = Field(max_length=100, unique=True)
    stripe_refund_id: str | None = Field(default=None, max_length=255, unique=True)
    # What Stripe last said: pending | requires_action | succeeded | failed | canceled.
    stripe_status: str | None = Field(default=None, max_length=20)
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=2000)
    next_attempt_at: datetime | None = ts_field(nullable=True)
    created_at: datetime = ts_field()
    completed_at: datetime | None = ts_field(nullable=True)


class OrderEvent(SQLModel, table=True):
    """Audit row for an order's money outside its contracts: a payment that didn't match, a
    plan refunded because it would have exceeded the units, a refund made in Stripe's
    dashboard."""

    __tablename__ = "order_event"

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="orders.id", index=True)
    action: str = Field(max_length=40)
    actor: str = Field(max_length=200)
    reason: str = Field(default="", max_length=1000)
    data: dict = json_field()
    created_at: datetime = ts_field()


sa.Index("ix_refund_cancel_date", Refund.__table__.c.cancel_date)
sa.Index("ix_refund_booked_on", Refund.__table__.c.booked_on)
sa.Index("ix_orders_booked_on", Order.__table__.c.booked_on)
sa.Index("ix_orders_purchase_date", Order.__table__.c.purchase_date)
sa.Index("ix_orders_customer_email_purchase_date", Order.__table__.c.customer_email,
         Order.__table__.c.purchase_date)
