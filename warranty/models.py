"""Database tables. Money columns are integers in the currency's minor unit."""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm
from sqlmodel import Field, SQLModel

from warranty.dates import utcnow
from warranty.text import SINGLE_LINE_PATTERN

# Explicit constraint names keep migrations stable across SQLite and PostgreSQL.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(sa.types.TypeDecorator):
    """Timezone-aware UTC timestamps on every backend (SQLite keeps no zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        """Refuse naive datetimes; store UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given for a UTC timestamp column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        """Always hand back an aware UTC datetime."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# One line of text (no control characters, so nothing becomes a new line in a mail header
# or a CSV row; PostgreSQL refuses NUL anyway): for validating input models.
SINGLE_LINE = SINGLE_LINE_PATTERN
# NFKC can lengthen text (a ligature becomes its letters): room for any 100-character sku's key.
SKU_KEY_LENGTH = 300
# The largest amount input models accept (money columns are 64-bit; Stripe's cap is far below).
MAX_COLUMN_AMOUNT = 10**12


def public_id(prefix: str) -> str:
    """A random, unguessable public identifier such as ``ct_3f9a...``."""
    return f"{prefix}_{secrets.token_hex(10)}"


def ts_field(**kwargs: Any) -> Any:
    """A UTC timestamp column defaulting to now."""
    nullable = kwargs.pop("nullable", False)
    default = kwargs.pop("default", None)
    extra = {} if nullable or default is not None else {"default_factory": utcnow}
    if nullable:
        extra["default"] = None
    elif default is not None:
        extra["default"] = default
    return Field(sa_type=UTCDateTime(), nullable=nullable, **extra, **kwargs)


def money_field(**kwargs: Any) -> Any:
    """An amount in the currency's minor unit: 64-bit, since KRW, VND or IDR totals outgrow
    32 bits long before anything else does."""
    return Field(sa_type=sa.BigInteger(), ge=0, **kwargs)


def json_field(default_factory=dict) -> Any:
    """A JSON column."""
    return Field(default_factory=default_factory, sa_type=sa.JSON(), nullable=False)


# --- catalog and pricing -------------------------------------------------------------


class Product(SQLModel, table=True):
    """A product the store sells, pushed by the store (API or CSV)."""

    id: int | None = Field(default=None, primary_key=True)
    sku: str = Field(max_length=100, index=True)  # as the store last wrote it
    # What every lookup matches: the sku however a storefront spells it (warranty.text.sku_key:
    # NFKC, case, invisible characters). Unique: two skus that differ only so are one product.
    sku_key: str = Field(max_length=SKU_KEY_LENGTH, unique=True, index=True)
    title: str = Field(max_length=300)
    store_category: str = Field(max_length=100, index=True)
    unit_price: int = money_field()  # minor units of the store currency
    currency: str = Field(max_length=3)
    manufacturer_warranty_months: int = Field(default=12, ge=0)
    created_at: datetime = ts_field()
    updated_at: datetime = ts_field()


class RuleSet(SQLModel, table=True):
    """One uploaded version of the pricing rules; contracts keep the version sold under."""

    __tablename__ = "rule_set"

    version: int | None = Field(default=None, primary_key=True)
    currency: str = Field(max_length=3)
    document: dict = json_field()  # the validated rule document, as loaded
    note: str = Field(default="", max_length=500)
    created_by: str = Field(default="", max_length=200)
    created_at: datetime = ts_field()


# --- orders and payments -------------------------------------------------------------


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
    amount: int = money_field()  # unit_price × quantity
    manufacturer_warranty_months: int | None = None
    warranty_category: str | None = Field(default=None, max_length=50)
    # Plan lines: what they cover and under which rules.
    plan_code: str | None = Field(default=None, max_length=50)
    rule_set_version: int | None = Field(default=None, foreign_key="rule_set.version")
    covers_line_id: int | None = Field(default=None, foreign_key="order_line.id")
    placement: str | None = Field(default=None, max_length=30)
    refunded_quantity: int = Field(default=0, ge=0)


class StripeEvent(SQLModel, table=True):
    """Every Stripe event received, by its id; processing happens once."""

    __tablename__ = "stripe_event"

    id: str = Field(primary_key=True, max_length=255)
    type: str = Field(max_length=100)
    payload: dict = json_field()
    received_at: datetime = ts_field()
    processed_at: datetime | None = ts_field(nullable=True)
    attempts: int = 0  # tries to apply it: deliveries that stored it plus the worker's claims
    # When the worker may try it next: a lease while a delivery or worker is on it, then the
    # backoff after a failure (warranty.jobs). Meaningless once processed.
    next_attempt_at: datetime = ts_field()
    last_error: str | None = Field(default=None, max_length=2000)
    # What applying it did ("paid", "refund_recorded", ...); "failed" when Stripe answered that
    # it will never work (an object Stripe doesn't know): given up, and on the attention queue.
    outcome: str | None = Field(default=None, max_length=30)


# --- contracts -----------------------------------------------------------------------


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
    price: int = money_field()  # minor units paid for the plan
    currency: str = Field(max_length=3)
    rule_set_version: int = Field(foreign_key="rule_set.version")
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


class AttentionItem(SQLModel, table=True):
    """Something about money that a person must look at, with its figures, until handled.

    ``kind``: amount_mismatch | stripe_object_missing | refund_refused | refund_failed |
    excess_plan_refunded | external_refund. ``key`` names the problem, so one problem
    reported again (Stripe delivers events more than once) stays one item.
    """

    __tablename__ = "attention_item"

    id: int | None = Field(default=None, primary_key=True)
    public_id: str = Field(default_factory=lambda: public_id("att"), max_length=40, unique=True)
    kind: str = Field(max_length=40, index=True)
    key: str = Field(max_length=300, unique=True)
    summary: str = Field(max_length=1000)
    order_id: int | None = Field(default=None, foreign_key="orders.id", index=True)
    refund_id: int | None = Field(default=None, foreign_key="refund.id")
    stripe_event_id: str | None = Field(default=None, max_length=255)
    data: dict = json_field()  # the figures: amounts in minor units, currency, Stripe ids
    status: str = Field(default="open", max_length=20, index=True)  # open | handled
    created_at: datetime = ts_field()
    handled_at: datetime | None = ts_field(nullable=True)
    handled_by: str | None = Field(default=None, max_length=200)
    handled_note: str | None = Field(default=None, max_length=2000)
class ClosedMonth(SQLModel, table=True):
    """A month finance closed: no money fact is booked in it, or any month before it, again.

    Closing a month closes every earlier month too (they must have had no open activity);
    ``figures`` are the month's finance totals as they stood at the close, which every later
    report of the month reproduces (warranty.periods).
    """

    __tablename__ = "closed_month"

    month: date = Field(primary_key=True)  # its first day
    closed_at: datetime = ts_field()
    closed_by: str = Field(max_length=200)
    note: str = Field(default="", max_length=1000)
    figures: dict = json_field()  # minor units: the month's finance totals at the close


# --- outboxes: stored first, delivered by workers -------------------------------------


class OutboundWebhook(SQLModel, table=True):
    """An event for the store's webhook endpoint, stored before delivery."""

    __tablename__ = "outbound_webhook"

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(default_factory=lambda: public_id("evt"), max_length=40, unique=True)
    type: str = Field(max_length=60)
    payload: dict = json_field()
    status: str = Field(default="pending", max_length=20, index=True)  # pending|delivered|dead
    attempts: int = 0
    next_attempt_at: datetime = ts_field()
    last_error: str | None = Field(default=None, max_length=2000)
    created_at: datetime = ts_field()
    delivered_at: datetime | None = ts_field(nullable=True)


class MailMessage(SQLModel, table=True):
    """A mail to a customer, stored before it is sent over SMTP."""

    __tablename__ = "mail_message"

    id: int | None = Field(default=None, primary_key=True)
    to: str = Field(max_length=320, index=True)
    subject: str = Field(max_length=300)
    body: str = Field(sa_type=sa.Text())
    kind: str = Field(max_length=40)
    status: str = Field(default="pending", max_length=20, index=True)  # pending|sent|dead
    attempts: int = 0
    next_attempt_at: datetime = ts_field()
    last_error: str | None = Field(default=None, max_length=2000)
    created_at: datetime = ts_field()
    sent_at: datetime | None = ts_field(nullable=True)


class ApiToken(SQLModel, table=True):
    """A bearer token for staff or finance endpoints (only its hash is stored)."""

    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    role: str = Field(max_length=20)  # support | finance | admin (warranty.auth.ROLES)
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = ts_field()
    expires_at: datetime | None = ts_field(nullable=True)
    revoked_at: datetime | None = ts_field(nullable=True)


# --- claims, staff accounts, payouts, NPS ----------------------------------------------


class StaffUser(SQLModel, table=True):
    """A person who signs in to the staff pages (created with ``warranty create-staff``)."""

    __tablename__ = "staff_user"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320, unique=True)
    role: str = Field(max_length=20)  # support | finance | admin (warranty.auth.ROLES)
    password_hash: str = Field(max_length=300)  # werkzeug scrypt hash, never the password
    created_at: datetime = ts_field()
    last_login_at: datetime | None = ts_field(nullable=True)
    disabled_at: datetime | None = ts_field(nullable=True)
    # Staff-page sessions issued before this moment are void (warranty revoke-staff-sessions).
    sessions_revoked_at: datetime | None = ts_field(nullable=True)


class AuthSession(SQLModel, table=True):
    """A signed-in browser or a customer API token: the cookie (or token) holds an opaque
    random id, this row only its hash. Logging out or revoking ends it here, so a copied
    cookie stops working (warranty.auth_sessions)."""

    __tablename__ = "auth_session"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)  # SHA-256 of the cookie's id
    kind: str = Field(max_length=20)  # customer | staff | customer_api
    subject: str = Field(max_length=320)  # the customer's or the staff member's email
    staff_user_id: int | None = Field(default=None, foreign_key="staff_user.id", index=True)
    # full: the mailbox was proved (a mailed link) or a store backend vouched (API token);
    # order: an email and order reference, which show that one order's plans only.
    scope: str = Field(max_length=20)
    order_ref: str | None = Field(default=None, max_length=200)  # for scope "order"
    created_by: str = Field(default="", max_length=200)  # how: link, order_ref, password, actor
    created_at: datetime = ts_field()
    last_seen_at: datetime = ts_field()
    expires_at: datetime = ts_field(index=True)
    revoked_at: datetime | None = ts_field(nullable=True)


class UsedLink(SQLModel, table=True):
    """A sign-in link that was spent: its ``jti`` may not sign anyone in again."""

    __tablename__ = "used_link"

    jti: str = Field(primary_key=True, max_length=64)
    email: str = Field(max_length=320)
    used_at: datetime = ts_field(index=True)


class VoidedLinks(SQLModel, table=True):
    """Sign-in links mailed to ``email`` before ``voided_at`` sign nobody in any more
    (``warranty revoke-customer-sessions``: someone else may have read those mails)."""

    __tablename__ = "voided_links"

    email: str = Field(primary_key=True, max_length=320)
    voided_at: datetime = ts_field()


class Claim(SQLModel, table=True):
    """A customer's claim on one contract."""

    id: int | None = Field(default=None, primary_key=True)
    public_id: str = Field(default_factory=lambda: public_id("cl"), max_length=40, unique=True)
    contract_id: int = Field(foreign_key="contract.id", index=True)
    customer_email: str = Field(max_length=320, index=True)  # who filed it: they may see it
    incident_date: date
    failure_type: str = Field(max_length=20)  # breakdown | accident
    description: str = Field(sa_type=sa.Text())
    estimated_amount: int | None = money_field(default=None)  # minor units, customer's estimate
    coverage_year: int = Field(ge=1)
    # submitted | in_review | info_requested | approved | denied | paid | closed
    status: str = Field(default="submitted", max_length=20, index=True)
    decision: str | None = Field(default=None, max_length=20)  # repair | replace | reimburse
    approved_amount: int | None = money_field(default=None)  # minor units, before deductible
    deny_code: str | None = Field(default=None, max_length=40)
    deny_reason: str | None = Field(default=None, max_length=1000)
    info_request: str | None = Field(default=None, max_length=2000)
    lang: str = Field(default="ja", max_length=5)  # language of the customer's mails
    source: str = Field(default="web", max_length=10)  # web | api
    created_at: datetime = ts_field()
    updated_at: datetime = ts_field()
    closed_at: datetime | None = ts_field(nullable=True)


class ClaimEvent(SQLModel, table=True):
    """Audit row for every change to a claim: who, when, why."""

    __tablename__ = "claim_event"

    id: int | None = Field(default=None, primary_key=True)
    claim_id: int = Field(foreign_key="claim.id", index=True)
    action: str = Field(max_length=30)
    from_status: str | None = Field(default=None, max_length=20)
    to_status: str | None = Field(default=None, max_length=20)
    actor: str = Field(max_length=200)
    reason: str = Field(default="", max_length=2000)
    data: dict = json_field()
    created_at: datetime = ts_field()


class ClaimFile(SQLModel, table=True):
    """A photo or PDF attached to a claim, stored outside the web root under a random name."""

    __tablename__ = "claim_file"

    id: int | None = Field(default=None, primary_key=True)
    public_id: str = Field(default_factory=lambda: public_id("fl"), max_length=40, unique=True)
    claim_id: int = Field(foreign_key="claim.id", index=True)
    stored_name: str = Field(max_length=80, unique=True)
    original_name: str = Field(max_length=255)
    content_type: str = Field(max_length=50)  # detected from the bytes, not the name
    size: int = Field(ge=0)
    sha256: str = Field(max_length=64)
    uploaded_by: str = Field(max_length=200)
    created_at: datetime = ts_field()


class Payout(SQLModel, table=True):
    """Money (or a replacement) paid out on a claim; not a refund of the plan's price."""

    id: int | None = Field(default=None, primary_key=True)
    claim_id: int = Field(foreign_key="claim.id", unique=True)  # at most one payout per claim
    contract_id: int = Field(foreign_key="contract.id", index=True)
    amount: int = money_field()  # minor units counted against the liability cap
    currency: str = Field(max_length=3)
    # bank_transfer | store_credit | repair_vendor | replacement
    method: str = Field(max_length=20)
    reference: str = Field(default="", max_length=200)
    actor: str = Field(max_length=200)
    # The store-local date the payout is booked on (the day it was recorded; warranty.periods).
    booked_on: date
    created_at: datetime = ts_field()


class NpsAnswer(SQLModel, table=True):
    """The customer's 0-10 "would you recommend us" answer after a claim closed."""

    __tablename__ = "nps_answer"

    id: int | None = Field(default=None, primary_key=True)
    claim_id: int = Field(foreign_key="claim.id", unique=True)  # one answer per claim
    score: int = Field(ge=0, le=10)
    comment: str = Field(default="", max_length=2000)
    created_at: datetime = ts_field()


# --- storefront embed and the holdout experiment ---------------------------------------


class VisitorEvent(SQLModel, table=True):
    """What an anonymous storefront visitor saw and did with offers (from the embed)."""

    __tablename__ = "visitor_event"

    # Big: one row per event. SQLite only auto-increments a plain INTEGER primary key.
    id: int | None = Field(default=None, primary_key=True,
                           sa_type=sa.BigInteger().with_variant(sa.Integer(), "sqlite"))
    visitor_id: str = Field(max_length=64, index=True)
    arm: str = Field(max_length=20)  # treatment | holdout, recomputed by the server
    # exposure | offer_viewed | offer_selected | offer_removed | checkout_started
    type: str = Field(max_length=30)
    placement: str | None = Field(default=None, max_length=30)
    sku: str | None = Field(default=None, max_length=100)
    warranty_category: str | None = Field(default=None, max_length=50)
    price: int | None = money_field(default=None)  # minor units: the product's unit price
    plan_code: str | None = Field(default=None, max_length=50)
    plan_price: int | None = money_field(default=None)  # minor units: the plan's unit price
    quantity: int | None = Field(default=None, ge=1)
    order_public_id: str | None = Field(default=None, max_length=40, index=True)
    occurred_at: datetime = ts_field()  # the client's time, clamped (indexed below)
    received_at: datetime = ts_field()


class RefusedVisitorIds(SQLModel, table=True):
    """How many visitor ids were refused, per store-local day: events sent with an unsigned
    or foreign id (``source`` events; counted per event) and checkouts whose id was recorded
    without attribution (``source`` checkout). The conversion report shows them."""

    __tablename__ = "refused_visitor_ids"

    day: date = Field(primary_key=True)
    source: str = Field(primary_key=True, max_length=20)  # events | checkout
    reason: str = Field(primary_key=True, max_length=20)  # unsigned | foreign
    count: int = Field(default=0, sa_type=sa.BigInteger())


# The worker's claim reads only unprocessed events by due time: a partial index stays as small
# as the backlog while the table keeps every event ever received.
sa.Index("ix_stripe_event_due", StripeEvent.__table__.c.next_attempt_at,
         postgresql_where=StripeEvent.__table__.c.processed_at.is_(None),
         sqlite_where=StripeEvent.__table__.c.processed_at.is_(None))

# --- reports: per-customer facts, and indexes for aggregation by date and by customer -------


class CustomerFacts(SQLModel, table=True):
    """What the retention report needs of one customer (an email), kept up to date in the
    transaction of every write to their orders, contracts or visitor events
    (``warranty.customer_facts``), so the report reads one row per customer instead of
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


sa.Index("ix_auth_session_kind_subject", AuthSession.__table__.c.kind,
         AuthSession.__table__.c.subject)
sa.Index("ix_contract_plan_sold_on", Contract.__table__.c.plan_sold_on)
sa.Index("ix_refund_cancel_date", Refund.__table__.c.cancel_date)
# Reports aggregate money facts by the date they are booked on (warranty.periods).
sa.Index("ix_contract_booked_on", Contract.__table__.c.booked_on)
sa.Index("ix_refund_booked_on", Refund.__table__.c.booked_on)
sa.Index("ix_payout_booked_on", Payout.__table__.c.booked_on)
sa.Index("ix_orders_booked_on", Order.__table__.c.booked_on)
sa.Index("ix_orders_purchase_date", Order.__table__.c.purchase_date)
sa.Index("ix_orders_customer_email_purchase_date", Order.__table__.c.customer_email,
         Order.__table__.c.purchase_date)
# Conversion: the visitors active in a period and their arms, read from the index alone.
sa.Index("ix_visitor_event_occurred_at_visitor_id_arm", VisitorEvent.__table__.c.occurred_at,
         VisitorEvent.__table__.c.visitor_id, VisitorEvent.__table__.c.arm)


def _load_old_value(target, value, oldvalue, initiator) -> None:
    """Nothing: registered with active_history so that the replaced value is loaded."""


# An order (or contract) moved to another customer must refresh the one it left too: have
# the flush's history hold the old value even when it was not loaded (e.g. after a rollback).
for _attribute in (Order.customer_email, Order.visitor_id, Contract.order_id):
    sa.event.listen(_attribute, "set", _load_old_value, active_history=True)


@sa.event.listens_for(orm.Session, "after_flush")
def _note_customer_writes(session, _flush_context) -> None:
    """Remember customers whose orders, contracts or visitor events this flush wrote."""
    from warranty import customer_facts

    customer_facts.note_flush(session)


@sa.event.listens_for(orm.Session, "before_commit")
def _refresh_customer_facts(session) -> None:
    """Bring those customers' facts up to date before the transaction commits."""
    from warranty import customer_facts

    customer_facts.before_commit(session)


@sa.event.listens_for(orm.Session, "after_rollback")
def _forget_customer_writes(session) -> None:
    """A rolled-back transaction changed no one."""
    from warranty import customer_facts

    customer_facts.forget(session)
