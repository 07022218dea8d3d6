"""Ledger exports for accounting: contracts, money movements, orders, and the journal.

Row-per-record exports stream from the database (a server-side cursor on PostgreSQL,
SQLite's incremental cursor) through a connection of their own, so they run after the web
request's session is gone and never hold more than a batch of rows.

Every export reads the books as they stood at the end of the period: facts by their booking
date (warranty.periods), and states (a contract's status, a refund's) as of that day, so the
export of a closed month reads the same however often it is run again.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import date, timedelta

import sqlalchemy as sa

from warranty.claims.models import Payout
from warranty.contracts.models import Contract, ContractEvent
from warranty.core.dates import month_end
from warranty.orders.models import PURCHASE_STATUSES, Order, OrderEvent, OrderLine, Refund
from warranty.reports import revenue as rev
from warranty.reports.csv_copy import copy_csv
from warranty.reports.registry import Context, Result, report

BATCH = 2000
_c, _r, _o, _p = Contract.__table__, Refund.__table__, Order.__table__, Payout.__table__
_e = ContractEvent.__table__
_oe = OrderEvent.__table__
_l = OrderLine.__table__


def stream(engine: sa.Engine, stmt) -> Iterator[dict]:
    """Rows of ``stmt`` as dicts, fetched in batches through a streaming cursor."""
    with engine.connect() as conn:
        result = conn.execution_options(yield_per=BATCH).execute(stmt)
        for row in result.mappings():
            yield dict(row)


def _streamed(ctx: Context, name: str, columns: list[str], stmt, money: set[str]) -> Result:
    """A row-per-record export: rows streamed from ``stmt``, and on PostgreSQL its CSV
    written by the database (warranty.reports.csv_copy), the same bytes."""
    currency = ctx.settings.currency
    return Result(name, ctx.period, currency, columns, stream(ctx.engine, stmt), money=money,
                  csv_rows=copy_csv(ctx.engine, stmt, columns, money, currency))


CONTRACT_COLUMNS = ["contract", "order", "order_ref", "customer_email", "category", "plan_code",
                    "sold_on", "booked_on", "purchase_date", "term_end", "status", "price",
                    "tax", "net", "cancel_date", "refund_booked_on", "refund", "refund_tax",
                    "refund_status", "earned_to_date", "earned_tax_to_date",
                    "deferred_at_end", "deferred_tax_at_end", "stripe_payment_intent_id",
                    "stripe_charge_id", "stripe_refund_id"]


def _end_bound(ctx: Context):
    """The UTC instant the period's last day ends (store-local midnight after it)."""
    return sa.literal(rev.period_bounds(ctx.period, ctx.settings.timezone)[1],
                      Refund.__table__.c.completed_at.type)


def _refund_status_at(bound):
    """A plan refund's status at ``bound``: its final one if reached by then, else
    ``pending``. Stripe may still fail a refund after it succeeded: until that failure (the
    contract's ``refund_failed`` audit row) it was ``succeeded``."""
    failed_by_then = (sa.select(_e.c.id)
                      .where(_e.c.contract_id == _r.c.contract_id,
                             _e.c.action == "refund_failed", _e.c.created_at < bound)
                      .exists())
    return sa.case((_r.c.id.is_(None), None),
                   (sa.and_(_r.c.completed_at < bound, _r.c.status == "failed",
                            ~failed_by_then), "succeeded"),
                   (_r.c.completed_at < bound, _r.c.status), else_="pending")


def _order_status_at(bound):
    """A paid order's status at ``bound``: ``refunded`` once Stripe had refunded its charge
    in full by then (the order's ``refunded`` audit row), else ``paid``; others as stored."""
    refunded_by_then = (sa.select(_oe.c.id)
                        .where(_oe.c.order_id == _o.c.id, _oe.c.action == "refunded",
                               _oe.c.created_at < bound)
                        .exists())
    return sa.case((_o.c.status != "refunded", _o.c.status),
                   (refunded_by_then, "refunded"), else_="paid")


def _stripe_refund_at(bound):
    """The Stripe refund id, once Stripe had made the refund by ``bound``."""
    return sa.case((_r.c.completed_at < bound, _r.c.stripe_refund_id), else_=None)


@report("contracts")
def contracts(ctx: Context) -> Result:
    """One row per contract booked in the period, as it stood at the period's end.

    Its cancellation shows if booked by then; its status is the one it had then (cancelled,
    fulfilled, expired, active); earned and deferred are the books' at the end, net of tax,
    with the tax that goes with them beside. ``price`` includes its ``tax``; ``net`` is the
    difference. The customer is the buyer (the order's email), whoever owns the plan now.
    """
    end = sa.literal(ctx.period.end, sa.Date())
    bound = _end_bound(ctx)
    fulfilled = (sa.select(_e.c.contract_id)
                 .where(_e.c.action == "fulfilled", _e.c.created_at < bound)
                 .group_by(_e.c.contract_id).subquery("fulfilled"))
    status = sa.case((_r.c.id.is_not(None), "cancelled"),
                     (fulfilled.c.contract_id.is_not(None), "fulfilled"),
                     (_c.c.term_end < end, "expired"), else_="active")
    stmt = (sa.select(
        _c.c.public_id.label("contract"), _o.c.public_id.label("order"),
        _o.c.store_order_ref.label("order_ref"), _o.c.customer_email,
        _c.c.warranty_category.label("category"), _c.c.plan_code,
        _c.c.plan_sold_on.label("sold_on"), _c.c.booked_on, _c.c.purchase_date,
        _c.c.term_end, status.label("status"), _c.c.price, _c.c.tax,
        (_c.c.price - _c.c.tax).label("net"), _r.c.cancel_date,
        _r.c.booked_on.label("refund_booked_on"), _r.c.amount.label("refund"),
        _r.c.tax.label("refund_tax"), _refund_status_at(bound).label("refund_status"),
        rev.earned_sql(end, "net").label("earned_to_date"),
        rev.earned_sql(end, "tax").label("earned_tax_to_date"),
        rev.deferred_sql(end, "net").label("deferred_at_end"),
        rev.deferred_sql(end, "tax").label("deferred_tax_at_end"), _o.c.stripe_payment_intent_id,
        _o.c.stripe_charge_id, _stripe_refund_at(bound).label("stripe_refund_id"))
        .select_from(_c.join(_o, _o.c.id == _c.c.order_id)
                     .outerjoin(_r, sa.and_(_r.c.contract_id == _c.c.id,
                                            _r.c.booked_on <= ctx.period.end))
                     .outerjoin(fulfilled, fulfilled.c.contract_id == _c.c.id))
        .where(_c.c.booked_on.between(ctx.period.start, ctx.period.end))
        .order_by(_c.c.booked_on, _c.c.id))
    return _streamed(ctx, "contracts", CONTRACT_COLUMNS, stmt,
                     {"price", "tax", "net", "refund", "refund_tax", "earned_to_date",
                      "earned_tax_to_date", "deferred_at_end", "deferred_tax_at_end"})


MOVEMENT_COLUMNS = ["date", "type", "amount", "tax", "net", "contract", "order", "category",
                    "effective_date", "adjustment", "stripe_payment_intent_id",
                    "stripe_charge_id", "stripe_refund_id", "payout_reference", "status"]


def _adjustment(booked, effective):
    """True for a movement booked after the date it concerns (that month was closed)."""
    return sa.type_coerce(sa.case((booked > effective, True), else_=False), sa.Boolean())


def _sales_select(period, bound):
    """Sale movements: one per contract, on its booking date, with the order's Stripe ids."""
    return (sa.select(
        _c.c.booked_on.label("date"), sa.literal("sale").label("type"),
        _c.c.price.label("amount"), _c.c.tax.label("tax"),
        (_c.c.price - _c.c.tax).label("net"), _c.c.public_id.label("contract"),
        _o.c.public_id.label("order"), _c.c.warranty_category.label("category"),
        _c.c.plan_sold_on.label("effective_date"),
        _adjustment(_c.c.booked_on, _c.c.plan_sold_on).label("adjustment"),
        _o.c.stripe_payment_intent_id, _o.c.stripe_charge_id,
        sa.null().label("stripe_refund_id"), sa.null().label("payout_reference"),
        _order_status_at(bound).label("status"), _c.c.id.label("seq"))
        .select_from(_c.join(_o, _o.c.id == _c.c.order_id))
        .where(_c.c.booked_on.between(period.start, period.end)))


def _refunds_select(period, bound):
    """Refund movements: one per cancelled contract, on the refund's booking date."""
    return (sa.select(
        _r.c.booked_on.label("date"), sa.literal("refund").label("type"),
        (-_r.c.amount).label("amount"), (-_r.c.tax).label("tax"),
        (_r.c.tax - _r.c.amount).label("net"), _c.c.public_id.label("contract"),
        _o.c.public_id.label("order"), _c.c.warranty_category.label("category"),
        _r.c.cancel_date.label("effective_date"),
        _adjustment(_r.c.booked_on, _r.c.cancel_date).label("adjustment"),
        _o.c.stripe_payment_intent_id, _o.c.stripe_charge_id,
        _stripe_refund_at(bound).label("stripe_refund_id"),
        sa.null().label("payout_reference"), _refund_status_at(bound).label("status"),
        _c.c.id.label("seq"))
        .select_from(_r.join(_c, _c.c.id == _r.c.contract_id)
                     .join(_o, _o.c.id == _r.c.order_id))
        .where(_r.c.booked_on.between(period.start, period.end)))


def _payouts_select(period):
    """Payout movements (claims paid), by their booking date (the store-local pay day)."""
    return (sa.select(
        _p.c.booked_on.label("date"), sa.literal("payout").label("type"),
        (-_p.c.amount).label("amount"), sa.literal(0, sa.BigInteger()).label("tax"),
        (-_p.c.amount).label("net"), _c.c.public_id.label("contract"),
        _o.c.public_id.label("order"), _c.c.warranty_category.label("category"),
        _p.c.booked_on.label("effective_date"),
        sa.type_coerce(sa.false(), sa.Boolean()).label("adjustment"),
        _o.c.stripe_payment_intent_id, _o.c.stripe_charge_id,
        sa.null().label("stripe_refund_id"), _p.c.reference.label("payout_reference"),
        _p.c.method.label("status"), _c.c.id.label("seq"))
        .select_from(_p.join(_c, _c.c.id == _p.c.contract_id)
                     .join(_o, _o.c.id == _c.c.order_id))
        .where(_p.c.booked_on.between(period.start, period.end)))


@report("movements")
def movements(ctx: Context) -> Result:
    """One row per money movement (sale, refund, payout) booked in the period, by date.

    Amounts are signed from the store's side: sales in, refunds and payouts out; ``amount``
    includes the ``tax`` (none on payouts) and ``net`` is the rest. ``date`` is
    the booking date; ``effective_date`` the date the movement concerns, earlier for an
    adjustment (``adjustment``: booked in the first open month because its own was closed).
    A refund's status is the one it had at the period's end.
    """
    bound = _end_bound(ctx)
    union = sa.union_all(_sales_select(ctx.period, bound), _refunds_select(ctx.period, bound),
                         _payouts_select(ctx.period)).subquery("movements")
    stmt = sa.select(union).order_by(union.c.date, union.c.type, union.c.seq)
    return _streamed(ctx, "movements", MOVEMENT_COLUMNS, stmt, {"amount", "tax", "net"})


ORDER_COLUMNS = ["order", "order_ref", "channel", "status", "purchase_date", "booked_on",
                 "customer_email", "total_amount", "currency", "plans_gross", "tax_rate",
                 "plans_tax", "plans_net", "registration_number", "visitor_id",
                 "stripe_payment_intent_id", "stripe_charge_id"]


@report("orders")
def orders(ctx: Context) -> Result:
    """Every paid order (through the service or imported) booked in the period.

    An order paid (or imported) with a purchase date in a month closed by the time it was
    recorded is booked on the first open day; both dates are shown. The plans' gross, tax
    and net (the qualified invoice's tax per rate: the store has one rate) are the order's
    plan lines'; the registration number is the store's, when it is registered.
    """
    plans = (sa.select(_l.c.order_id, sa.func.sum(_l.c.gross).label("gross"),
                       sa.func.sum(_l.c.tax).label("tax"), sa.func.sum(_l.c.net).label("net"))
             .where(_l.c.kind == "plan").group_by(_l.c.order_id).subquery("plans"))
    tax = ctx.settings.tax
    stmt = (sa.select(
        _o.c.public_id.label("order"), _o.c.store_order_ref.label("order_ref"), _o.c.channel,
        _order_status_at(_end_bound(ctx)).label("status"), _o.c.purchase_date,
        _o.c.booked_on, _o.c.customer_email,
        _o.c.total_amount, _o.c.currency,
        sa.func.coalesce(plans.c.gross, 0).label("plans_gross"),
        sa.literal(tax.percent).label("tax_rate"),
        sa.func.coalesce(plans.c.tax, 0).label("plans_tax"),
        sa.func.coalesce(plans.c.net, 0).label("plans_net"),
        sa.literal(tax.registration_number or None, sa.String()).label("registration_number"),
        _o.c.visitor_id, _o.c.stripe_payment_intent_id, _o.c.stripe_charge_id)
        .select_from(_o.outerjoin(plans, plans.c.order_id == _o.c.id))
        .where(_o.c.booked_on.between(ctx.period.start, ctx.period.end),
               _o.c.status.in_(PURCHASE_STATUSES))
        .order_by(_o.c.booked_on, _o.c.id))
    return _streamed(ctx, "orders", ORDER_COLUMNS, stmt,
                     {"total_amount", "plans_gross", "plans_tax", "plans_net"})


JOURNAL_COLUMNS = ["entry", "date", "month", "category", "account", "debit", "credit", "memo",
                   "effective_date"]
# (what, debit account, credit account) for each flow of the finance report. The tax in a
# plan's price is held in deferred_tax with the revenue it goes with, and moves to
# tax_payable as that revenue is earned (docs/domain/tax.md).
JOURNAL = [
    ("sales_net", "cash", "deferred_revenue", "plans sold: cash received, revenue deferred"),
    ("sales_tax", "cash", "deferred_tax", "plans sold: the tax in their prices"),
    ("refunds_net", "deferred_revenue", "cash",
     "cancellations: refunds out of deferred revenue"),
    ("refunds_tax", "deferred_tax", "cash", "cancellations: the tax the refunds give back"),
    ("earned_revenue", "deferred_revenue", "earned_revenue", "revenue earned in the month"),
    ("earned_tax", "deferred_tax", "tax_payable", "tax on the revenue earned in the month"),
    ("claims_paid", "claims_expense", "cash", "claims paid"),
]


ACCOUNTS = {flow: (debit, credit) for flow, debit, credit, _ in JOURNAL}


def _adjusting_entries(adjustment: dict) -> list[tuple[str, int, str]]:
    """(flow, amount, memo) of one adjustment, naming the date it concerns."""
    booked, day = adjustment["booked_on"], adjustment["effective_date"]
    contract = adjustment["contract"]
    amount, tax = adjustment["amount"], adjustment.get("tax", 0)
    if adjustment["type"] == "sale":
        sold = f"adjustment: plan sold {day} ({contract}), a closed month, booked {booked}"
        earned = (f"adjustment: revenue earned {day} to {booked - timedelta(days=1)} by the "
                  f"plan sold {day} ({contract})")
        return [("sales_net", amount - tax, sold), ("sales_tax", tax, f"{sold}: its tax"),
                ("earned_revenue", adjustment["earned_revenue"], earned),
                ("earned_tax", adjustment.get("earned_tax", 0), f"{earned}: its tax")]
    refund = (f"adjustment: refund of the cancellation dated {day} ({contract}), a closed "
              f"month, booked {booked}")
    earned = (f"adjustment: revenue of the cancellation dated {day} ({contract}), "
              "booked as the rest of the price earned less what had accrued")
    return [("refunds_net", amount - tax, refund), ("refunds_tax", tax, f"{refund}: its tax"),
            ("earned_revenue", adjustment["earned_revenue"], earned),
            ("earned_tax", adjustment.get("earned_tax", 0), f"{earned}: its tax")]


def journal_lines(finance: dict) -> Iterator[dict]:
    """Debit/credit lines per month and category from the finance report's cells.

    A negative amount (revenue reversed by a full refund) is booked the other way round.
    Adjustments (facts booked in the month for a date in a closed month) get entries of
    their own, dated on their booking day and naming the date they concern; the month's
    entries carry the rest.
    """
    by_cell: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for adjustment in finance.get("adjustments", []):
        by_cell[(f"{adjustment['booked_on']:%Y-%m}", adjustment["category"])].append(adjustment)
    entry = 0

    def lines(base: dict, flow: str, amount: int, memo: str) -> Iterator[dict]:
        nonlocal entry
        debit, credit = ACCOUNTS[flow]
        if amount < 0:
            debit, credit, amount = credit, debit, -amount
            memo = ("revenue reversed: refund larger than what was still deferred"
                    if base["effective_date"] is None else f"{memo} (reversed)")
        entry += 1
        base = {**base, "entry": entry, "memo": memo}
        yield {**base, "account": debit, "debit": amount, "credit": None}
        yield {**base, "account": credit, "debit": None, "credit": amount}

    for cell in finance["rows"]:
        year, month = map(int, cell["month"].split("-"))
        day = month_end(date(year, month, 1))
        own = by_cell.get((cell["month"], cell["category"]), [])
        adjusting = [(a, _adjusting_entries(a)) for a in own]
        base = {"date": day, "month": cell["month"], "category": cell["category"],
                "effective_date": None}
        for flow, _, _, memo in JOURNAL:
            amount = cell.get(flow, 0) - sum(a_amount for _, entries in adjusting
                                             for a_flow, a_amount, _ in entries
                                             if a_flow == flow)
            if amount:
                yield from lines(base, flow, amount, memo)
        for adjustment, entries in adjusting:
            dated = {**base, "date": adjustment["booked_on"],
                     "effective_date": adjustment["effective_date"]}
            for flow, amount, memo in entries:
                if amount:
                    yield from lines(dated, flow, amount, memo)


@report("journal")
def journal(ctx: Context) -> Result:
    """The monthly journal of sales, refunds, earned revenue and claims paid."""
    finance = rev.finance(session=ctx.session, period=ctx.period,
                          timezone=ctx.settings.timezone)
    return Result("journal", ctx.period, ctx.settings.currency, JOURNAL_COLUMNS,
                  list(journal_lines(finance)), money={"debit", "credit"},
                  extra={"deferred_opening": finance["total"]["deferred_opening"],
                         "deferred_closing": finance["total"]["deferred_revenue"],
                         "deferred_tax_opening": finance["total"]["deferred_opening_tax"],
                         "deferred_tax_closing": finance["total"]["deferred_tax"]})
