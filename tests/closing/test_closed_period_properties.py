"""Property test of closed months: random sales (some recorded late, some post-purchase),
cancellations back-dated into closed months, payouts and month closes, in random order over
time. After each close, that month's reports and exports never change again; at every month
end gross − refunds = earned + deferred on the reported figures; and the books match the
Python rule (warranty.reports.revenue.PlanHistory) on the booking dates the service chose."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlmodel import select

from tests.report_history import payout, plan_sale
from warranty.changes import cancellation
from warranty.claims.models import Claim, Payout
from warranty.closing import months as closing
from warranty.contracts.models import Contract, ContractEvent
from warranty.core.dates import month_end
from warranty.core.errors import DomainError
from warranty.customers.models import CustomerFacts
from warranty.notify.models import MailMessage, OutboundWebhook
from warranty.orders.models import Order, OrderLine, Refund
from warranty.periods.models import ClosedMonth
from warranty.reports import Context, export, run_report
from warranty.reports.period import Period
from warranty.reports.revenue import PlanHistory, finance

BASE = date(2026, 1, 1)
REPORTS = ["finance", "journal", "contracts", "movements", "orders"]

step = st.tuples(
    st.integers(0, 21),  # days that pass before the step
    st.sampled_from(["sale", "sale", "sale", "cancel", "cancel", "payout", "close", "close"]),
    st.integers(0, 10**6),  # which contract, the price, ...
    st.sampled_from([0, 0, 0, 2, 12, 40]),  # a sale recorded late; a cancel date back-dated
    st.sampled_from([0, 0, 0, 20]),  # a plan bought after its product (post-purchase)
    st.sampled_from([12, 24, 36]),
)


def _clear(db) -> None:
    """Remove the previous example's rows (rules and tokens stay)."""
    for table in (Payout, Claim, ContractEvent, MailMessage, OutboundWebhook, Refund, Contract,
                  OrderLine, Order, CustomerFacts, ClosedMonth):
        db.execute(sa.delete(table))
    db.commit()


def _read(db, app_settings, period: Period) -> dict:
    """Every report of the period as JSON and CSV text."""
    ctx = Context(session=db, settings=app_settings, period=period)
    out = {}
    for name in REPORTS:
        for fmt in ("json", "csv"):
            out[(name, fmt)] = "".join(export.chunks(run_report(name, ctx), fmt))
    db.commit()  # end the read (SQLite)
    return out


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=st.lists(step, min_size=8, max_size=30))
def test_closed_months_never_move_and_the_books_balance(db, settings, steps):
    _clear(db)
    today, sold, frozen = BASE, [], {}
    for gap, kind, pick, late, post, months in steps:
        today += timedelta(days=gap)
        if kind == "sale":
            sold_on = max(BASE, today - timedelta(days=late))
            (contract,) = plan_sale(db, price=pick % 90_000, sold_on=sold_on,
                                    purchase_date=sold_on - timedelta(days=post),
                                    term_months=months, category=("a", "b")[pick % 2],
                                    payment_intent_id=f"pi_sim_{len(sold)}")
            sold.append(contract)
        elif kind == "cancel" and sold:
            contract = db.get(Contract, sold[pick % len(sold)].id)
            day = max(contract.plan_sold_on, today - timedelta(days=late))
            try:
                cancellation.cancel_contract(
                    session=db, settings=settings, contract_id=contract.public_id,
                    cancel_date=day, today=today, actor="sim", reason="asked", role="admin",
                    backdate_reason="simulated", book_as_adjustment=True)
                db.commit()
            except DomainError:  # already cancelled, or the term is over
                db.rollback()
        elif kind == "payout" and sold:
            contract = sold[pick % len(sold)]
            payout(db, contract, amount=pick % 20_000,
                   paid_at=datetime.combine(today, time(3), tzinfo=UTC))  # noon in Tokyo
        elif kind == "close":
            month = closing.next_to_close(db, today)
            if month is None:
                db.commit()
                continue
            row = closing.close_month(session=db, settings=settings, month=month, today=today,
                                      actor="sim")
            db.commit()
            period = Period(month, month_end(month))
            frozen[month] = (row.figures, _read(db, settings, period),
                             _read(db, settings, Period(BASE, month_end(month))))

    # Everything that followed each close left the closed months' reports as they were.
    for month, (figures, alone, cumulative) in frozen.items():
        assert _read(db, settings, Period(month, month_end(month))) == alone, month
        assert _read(db, settings, Period(BASE, month_end(month))) == cumulative, month
        report = finance(session=db, period=Period(month, month_end(month)),
                         timezone=settings.timezone)["by_month"][0]
        assert {k: report[k] for k in figures} == figures

    adjusted = sum(1 for r in db.exec(select(Refund)).all() if r.booked_on > r.cancel_date) + sum(
        1 for c in db.exec(select(Contract)).all() if c.booked_on > c.plan_sold_on)
    event(f"closes: {min(len(frozen), 3)}+, adjustments: {min(adjusted, 3)}+")
    # The books follow the rule on the booking dates, and balance at every month end.
    refunds = {r.contract_id: r for r in db.exec(select(Refund)).all()}
    plans = []
    for contract in db.exec(select(Contract)).all():
        refund = refunds.get(contract.id)
        plans.append(PlanHistory(price=contract.price, sold_on=contract.plan_sold_on,
                                 term_end=contract.term_end,
                                 cancel_date=refund.cancel_date if refund else None,
                                 refund=refund.amount if refund else 0,
                                 booked_on=contract.booked_on,
                                 refund_booked_on=refund.booked_on if refund else None))
        assert contract.booked_on >= contract.plan_sold_on
        if refund:
            assert refund.booked_on >= max(refund.cancel_date, contract.booked_on)
    cursor = BASE
    while cursor <= today:
        end = month_end(cursor)
        total = finance(session=db, period=Period(BASE, end), timezone=settings.timezone)["total"]
        assert total["gross_sales"] - total["refunds"] == (total["earned_revenue"]
                                                           + total["deferred_revenue"])
        assert total["earned_revenue"] == sum(p.earned_by(end) for p in plans)
        assert total["deferred_revenue"] == sum(p.deferred_at(end) for p in plans) >= 0
        cursor = end + timedelta(days=1)
    db.commit()
