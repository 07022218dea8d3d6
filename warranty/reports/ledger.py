"""Ledger exports for accounting: contracts, money movements, orders, and the journal.

Row-per-record exports stream from the database (a server-side cursor on PostgreSQL,
SQLite's incremental cursor) through a connection of their own, so they run after the web
request's session is gone and never hold more than a batch of rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import sqlalchemy as sa

from warranty.customer_facts import PURCHASE_STATUSES
from warranty.dates import month_end
from warranty.models import Contract, Order, Payout, Refund
from warranty.reports import Context, Result, report
from warranty.reports import revenue as rev
from warranty.reports.sql import local_date

BATCH = 2000
_c, _r, _o, _p = Contract.__table__, Refund.__table__, Order.__table__, Payout.__table__


def stream(engine: sa.Engine, stmt) -> Iterator[dict]:
    """Rows of ``stmt`` as dicts, fetched in batches through a streaming cursor."""
    with engine.connect() as conn:
        result = conn.execution_options(yield_per=BATCH).execute(stmt)
        for row in result.mappings():
            yield dict(row)


CONTRACT_COLUMNS = ["contract", "order", "order_ref", "customer_email", "category", "plan_code",
                    "sold_on", "purchase_date", "term_end", "status", "price", "cancel_date",
                    "refund", "refund_status", "earned_to_date", "deferred_at_end",
                    "stripe_payment_intent_id", "stripe_charge_id", "stripe_refund_id"]


@report("contracts")
def contracts(ctx: Context) -> Result:
    """One row per contract sold in the period, with its earned and deferred at period end."""
    end = sa.literal(ctx.period.end, sa.Date())
    stmt = (sa.select(
        _c.c.public_id.label("contract"), _o.c.public_id.label("order"),
        _o.c.store_order_ref.label("order_ref"), _c.c.customer_email,
        _c.c.warranty_category.label("category"), _c.c.plan_code,
        _c.c.plan_sold_on.label("sold_on"), _c.c.purchase_date, _c.c.term_end, _c.c.status,
        _c.c.price, _r.c.cancel_date, _r.c.amount.label("refund"),
        _r.c.status.label("refund_status"), rev._earned_sql(end).label("earned_to_date"),
        rev._deferred_sql(end).label("deferred_at_end"), _o.c.stripe_payment_intent_id,
        _o.c.stripe_charge_id, _r.c.stripe_refund_id)
        .select_from(_c.join(_o, _o.c.id == _c.c.order_id)
                     .outerjoin(_r, _r.c.contract_id == _c.c.id))
        .where(_c.c.plan_sold_on.between(ctx.period.start, ctx.period.end))
        .order_by(_c.c.plan_sold_on, _c.c.id))
    return Result("contracts", ctx.period, ctx.settings.currency, CONTRACT_COLUMNS,
                  stream(ctx.engine, stmt),
                  money={"price", "refund", "earned_to_date", "deferred_at_end"})


MOVEMENT_COLUMNS = ["date", "type", "amount", "contract", "order", "category",
                    "stripe_payment_intent_id", "stripe_charge_id", "stripe_refund_id",
                    "payout_reference", "status"]


def _sales_select(period):
    """Sale movements: one per contract, on its sale date, with the order's Stripe ids."""
    return (sa.select(
        _c.c.plan_sold_on.label("date"), sa.literal("sale").label("type"),
        _c.c.price.label("amount"), _c.c.public_id.label("contract"),
        _o.c.public_id.label("order"), _c.c.warranty_category.label("category"),
        _o.c.stripe_payment_intent_id, _o.c.stripe_charge_id,
        sa.null().label("stripe_refund_id"), sa.null().label("payout_reference"),
        _o.c.status.label("status"), _c.c.id.label("seq"))
        .select_from(_c.join(_o, _o.c.id == _c.c.order_id))
        .where(_c.c.plan_sold_on.between(period.start, period.end)))


def _refunds_select(period):
    """Refund movements: one per cancelled contract, on its cancel date."""
    return (sa.select(
        _r.c.cancel_date.label("date"), sa.literal("refund").label("type"),
        (-_r.c.amount).label("amount"), _c.c.public_id.label("contract"),
        _o.c.public_id.label("order"), _c.c.warranty_category.label("category"),
        _o.c.stripe_payment_intent_id, _o.c.stripe_charge_id, _r.c.stripe_refund_id,
        sa.null().label("payout_reference"), _r.c.status.label("status"),
        _c.c.id.label("seq"))
        .select_from(_r.join(_c, _c.c.id == _r.c.contract_id)
                     .join(_o, _o.c.id == _r.c.order_id))
        .where(_r.c.cancel_date.between(period.start, period.end)))


def _payouts_select(period, timezone: str):
    """Payout movements (claims paid), in the period by their store-local day."""
    lo, hi = rev.period_bounds(period, timezone)
    return (sa.select(
        local_date(_p.c.created_at, timezone).label("date"), sa.literal("payout").label("type"),
        (-_p.c.amount).label("amount"), _c.c.public_id.label("contract"),
        _o.c.public_id.label("order"), _c.c.warranty_category.label("category"),
        _o.c.stripe_payment_intent_id, _o.c.stripe_charge_id,
        sa.null().label("stripe_refund_id"), _p.c.reference.label("payout_reference"),
        _p.c.method.label("status"), _c.c.id.label("seq"))
        .select_from(_p.join(_c, _c.c.id == _p.c.contract_id)
                     .join(_o, _o.c.id == _c.c.order_id))
        .where(_p.c.created_at >= lo, _p.c.created_at < hi))


@report("movements")
def movements(ctx: Context) -> Result:
    """One row per money movement (sale, refund, payout) in the period, by date.

    Amounts are signed from the store's side: sales in, refunds and payouts out.
    """
    union = sa.union_all(_sales_select(ctx.period), _refunds_select(ctx.period),
                         _payouts_select(ctx.period, ctx.settings.timezone)).subquery("movements")
    stmt = sa.select(union).order_by(union.c.date, union.c.type, union.c.seq)
    return Result("movements", ctx.period, ctx.settings.currency, MOVEMENT_COLUMNS,
                  stream(ctx.engine, stmt), money={"amount"})


ORDER_COLUMNS = ["order", "order_ref", "channel", "status", "purchase_date", "customer_email",
                 "total_amount", "currency", "visitor_id", "stripe_payment_intent_id",
                 "stripe_charge_id"]


@report("orders")
def orders(ctx: Context) -> Result:
    """Every paid order (through the service or imported) with its purchase date in the period."""
    stmt = (sa.select(
        _o.c.public_id.label("order"), _o.c.store_order_ref.label("order_ref"), _o.c.channel,
        _o.c.status, _o.c.purchase_date, _o.c.customer_email, _o.c.total_amount, _o.c.currency,
        _o.c.visitor_id, _o.c.stripe_payment_intent_id, _o.c.stripe_charge_id)
        .where(_o.c.purchase_date.between(ctx.period.start, ctx.period.end),
               _o.c.status.in_(PURCHASE_STATUSES))
        .order_by(_o.c.purchase_date, _o.c.id))
    return Result("orders", ctx.period, ctx.settings.currency, ORDER_COLUMNS,
                  stream(ctx.engine, stmt), money={"total_amount"})


JOURNAL_COLUMNS = ["entry", "date", "month", "category", "account", "debit", "credit", "memo"]
# (what, debit account, credit account) for each flow of the finance report.
JOURNAL = [
    ("gross_sales", "cash", "deferred_revenue", "plans sold: cash received, revenue deferred"),
    ("refunds", "deferred_revenue", "cash", "cancellations: refunds out of deferred revenue"),
    ("earned_revenue", "deferred_revenue", "earned_revenue", "revenue earned in the month"),
    ("claims_paid", "claims_expense", "cash", "claims paid"),
]


def journal_lines(finance: dict) -> Iterator[dict]:
    """Debit/credit lines per month and category from the finance report's cells.

    A negative amount (revenue reversed by a full refund) is booked the other way round.
    """
    entry = 0
    for cell in finance["rows"]:
        year, month = map(int, cell["month"].split("-"))
        day = month_end(date(year, month, 1))
        for flow, debit, credit, memo in JOURNAL:
            amount = cell.get(flow, 0)
            if not amount:
                continue
            if amount < 0:
                debit, credit, amount = credit, debit, -amount
                memo = "revenue reversed: refund larger than what was still deferred"
            entry += 1
            base = {"entry": entry, "date": day, "month": cell["month"],
                    "category": cell["category"], "memo": memo}
            yield {**base, "account": debit, "debit": amount, "credit": None}
            yield {**base, "account": credit, "debit": None, "credit": amount}


@report("journal")
def journal(ctx: Context) -> Result:
    """The monthly journal of sales, refunds, earned revenue and claims paid."""
    finance = rev.finance(session=ctx.session, period=ctx.period,
                          timezone=ctx.settings.timezone)
    return Result("journal", ctx.period, ctx.settings.currency, JOURNAL_COLUMNS,
                  list(journal_lines(finance)), money={"debit", "credit"},
                  extra={"deferred_opening": finance["total"]["deferred_opening"],
                         "deferred_closing": finance["total"]["deferred_revenue"]})
