"""Property-based tests of the revenue rules: random contract histories with cancellations,
post-purchase plans, and sales or refunds booked after their dates (adjustments)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.report_history import payout, plan_sale
from warranty.changes.cancellation import quote_refund
from warranty.claims.models import Claim, Payout
from warranty.contracts.models import Contract
from warranty.core import money
from warranty.core.dates import days_inclusive, term_end
from warranty.core.tax import TaxPolicy
from warranty.orders.models import Order, OrderLine, Refund
from warranty.reports.period import Period
from warranty.reports.revenue import PlanHistory, finance

BASE = date(2025, 1, 1)
CATEGORIES = ["electronics", "phones", "furniture"]


# Days a fact is booked after its date: mostly none; else its month was closed when it was
# recorded (a late payment, a cancellation back-dated into a closed month).
LATE = st.sampled_from([0, 0, 0, 1, 17, 45])


@st.composite
def histories(draw):
    """A plan sale, maybe post-purchase, maybe cancelled under the brief's refund rule, maybe
    booked late."""
    price = draw(st.integers(min_value=0, max_value=300_000))
    purchase = BASE + timedelta(days=draw(st.integers(0, 700)))
    sold_on = purchase + timedelta(days=draw(st.sampled_from([0, 0, 0, 5, 59])))
    months = draw(st.sampled_from([12, 24, 36, 60]))
    end = term_end(purchase, months)
    cancel = None
    if draw(st.booleans()):
        cancel_date = sold_on + timedelta(days=draw(st.integers(0, (end - sold_on).days + 40)))
        full = (cancel_date - sold_on).days <= 30 or cancel_date > end or draw(
            st.booleans())  # free look, or a returned product: full refund
        if full:
            refund = price
        else:
            # The service's own refund rule (over the plan's span, sale date to term end).
            refund = quote_refund(contract=_contract(price, purchase, sold_on, end),
                                  cancel_date=cancel_date,
                                  fee=draw(st.integers(0, 2000))).amount
        cancel = (cancel_date, refund)
    booked_on = sold_on + timedelta(days=draw(LATE))
    # A refund is never booked before its sale (warranty.periods).
    refund_booked = (max(cancel[0] + timedelta(days=draw(LATE)), booked_on)
                     if cancel else None)
    category = draw(st.sampled_from(CATEGORIES))
    claim = None
    if draw(st.booleans()):
        claim = (sold_on + timedelta(days=draw(st.integers(0, (end - sold_on).days))),
                 draw(st.integers(0, 500_000)))
    # The tax in the price, as a store with this rate and rounding would work it out, and the
    # tax its refund reverses (warranty.core.tax).
    policy = TaxPolicy(rate=draw(st.sampled_from([Decimal(0), Decimal("0.08"), Decimal("0.10"),
                                                  Decimal("0.08875")])),
                       rounding=draw(st.sampled_from(money.ROUNDING_MODES)))
    tax = policy.tax_of(price)
    refund_tax = policy.refund_tax(line_tax=tax, line_gross=price, refund=cancel[1],
                                   left=tax) if cancel else 0
    return {"price": price, "purchase": purchase, "sold_on": sold_on, "months": months,
            "end": end, "cancel": cancel, "category": category, "claim": claim,
            "booked_on": booked_on, "refund_booked": refund_booked, "tax": tax,
            "refund_tax": refund_tax}


def _contract(price: int, purchase: date, sold_on: date, end: date,
              currency: str = "jpy") -> Contract:
    """A contract with just what the refund rule reads (not saved)."""
    return Contract(public_id="ct_prop", price=price, currency=currency,
                    purchase_date=purchase, plan_sold_on=sold_on, term_end=end)


@st.composite
def pro_rata_cancellations(draw):
    """A plan, maybe sold up to 60 days after its product, cancelled after its free look."""
    price = draw(st.integers(min_value=0, max_value=300_000))
    purchase = BASE + timedelta(days=draw(st.integers(0, 700)))
    sold_on = purchase + timedelta(days=draw(st.one_of(st.just(0), st.integers(0, 60))))
    end = term_end(purchase, draw(st.sampled_from([12, 24, 36, 60])))
    cancel_date = sold_on + timedelta(days=draw(st.integers(31, (end - sold_on).days)))
    return price, purchase, sold_on, end, cancel_date


@settings(max_examples=300, deadline=None)
@given(pro_rata_cancellations())
def test_refund_on_day_d_is_the_revenue_deferred_at_the_end_of_d_minus_1(case):
    """The identity between the refund rule and the revenue rule, post-purchase plans too.

    Both spread the price over the span S (sale date to term end, both counted). Cancelled
    on d, U days are unused (d to the term end) and E = S − U are used by the end of d − 1:
    refund = floor(price × U / S), deferred(d − 1) = price − floor(price × E / S)
    = ceil(price × U / S). So deferred(d − 1) − refund is 0 when price × U is a multiple of
    S, and 1 otherwise.
    """
    price, purchase, sold_on, end, cancel_date = case
    quote = quote_refund(contract=_contract(price, purchase, sold_on, end),
                         cancel_date=cancel_date)
    deferred = PlanHistory(price=price, sold_on=sold_on, term_end=end).deferred_at(
        cancel_date - timedelta(days=1))
    span = days_inclusive(sold_on, end)
    assert quote.rule == "pro_rata" and quote.span_days == span
    assert quote.unused_days == days_inclusive(cancel_date, end)
    assert deferred - quote.pro_rata_amount == (1 if price * quote.unused_days % span else 0)
    assert quote.amount == quote.pro_rata_amount  # no fee, no claims, a JPY amount
    # In a three-decimal currency the refund sent to Stripe is that, rounded down to 10.
    kwd = quote_refund(contract=_contract(price, purchase, sold_on, end, "kwd"),
                       cancel_date=cancel_date)
    assert kwd.amount == quote.pro_rata_amount - quote.pro_rata_amount % 10


@settings(max_examples=100, deadline=None)
@given(pro_rata_cancellations(), st.integers(0, 30))
def test_free_look_runs_thirty_days_from_the_sale(case, days):
    price, purchase, sold_on, end, _ = case
    quote = quote_refund(contract=_contract(price, purchase, sold_on, end),
                         cancel_date=sold_on + timedelta(days=days))
    assert (quote.rule, quote.amount) == ("free_look", price)


def _model(h: dict) -> PlanHistory:
    """The Python rule for one drawn history."""
    cancel_date, refund = h["cancel"] or (None, 0)
    return PlanHistory(price=h["price"], sold_on=h["sold_on"], term_end=h["end"],
                       cancel_date=cancel_date, refund=refund, booked_on=h["booked_on"],
                       refund_booked_on=h["refund_booked"], tax=h["tax"],
                       refund_tax=h["refund_tax"])


@settings(max_examples=200, deadline=None)
@given(st.lists(histories(), min_size=1, max_size=6))
def test_books_balance_every_day(drawn):
    """On the gross figures, and on the net and the tax parts separately."""
    for part in ("gross", "net", "tax"):
        _balance_every_day([_model(h).part(part) for h in drawn])


def _balance_every_day(plans: list[PlanHistory]) -> None:
    first = min(p.sold_on for p in plans) - timedelta(days=1)
    last = max(max(p.term_end, p.cancel_booked_on or p.term_end, p.sale_booked_on)
               for p in plans) + timedelta(days=1)
    previous_earned = {id(p): 0 for p in plans}
    day = first
    while day <= last:
        for p in plans:
            earned, deferred = p.earned_by(day), p.deferred_at(day)
            assert p.sold_by(day) - p.refunded_by(day) == earned + deferred
            assert deferred >= 0
            drop = previous_earned[id(p)] - earned
            if day == p.cancel_booked_on:
                # Only a refund larger than what was still deferred reverses earned revenue,
                # and by exactly the excess (for a refund booked late: what had accrued since
                # the cancel date is part of that excess).
                deferred_before = p.price - previous_earned[id(p)]
                assert earned == p.price - p.refund
                assert drop <= 0 or p.refund > deferred_before
            else:
                assert drop <= 0, "earned revenue never decreases"
            previous_earned[id(p)] = earned
        day += timedelta(days=1)
    for p in plans:
        assert p.earned_by(last) == p.price - p.refund
        assert p.deferred_at(last) == 0


def _clear(db) -> None:
    """Remove the contracts of the previous example (rules stay)."""
    for table in (Payout, Claim, Refund, Contract, OrderLine, Order):
        db.execute(sa.delete(table))
    db.commit()


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(drawn=st.lists(histories(), min_size=1, max_size=5),
       start=st.integers(0, 900), length=st.integers(0, 500))
def test_sql_report_matches_the_rule_and_adds_up(db, drawn, start, length):
    _clear(db)
    for h in drawn:
        (contract,) = plan_sale(db, price=h["price"], sold_on=h["sold_on"],
                                purchase_date=h["purchase"], term_months=h["months"],
                                category=h["category"], cancel=h["cancel"],
                                booked_on=h["booked_on"], refund_booked_on=h["refund_booked"],
                                tax=h["tax"], refund_tax=h["refund_tax"])
        if h["claim"]:
            day, amount = h["claim"]
            # 03:00 UTC is noon in Tokyo: the payout's local date is ``day``.
            payout(db, contract, amount=amount,
                   paid_at=datetime(day.year, day.month, day.day, 3, tzinfo=UTC))
    period = Period(BASE + timedelta(days=start), BASE + timedelta(days=start + length))
    report = finance(session=db, period=period, timezone="Asia/Tokyo")
    total = report["total"]
    plans = [(_model(h), h["category"]) for h in drawn]
    day_before = period.start - timedelta(days=1)
    for cat in [*CATEGORIES, None]:
        mine = [p for p, c in plans if cat is None or c == cat]
        row = total if cat is None else next(
            (r for r in report["by_category"] if r["category"] == cat), None)
        # The rule on the net part (earned_revenue, deferred_revenue) and on the tax part
        # (earned_tax, deferred_tax), each against the report and its identity.
        for part, names in (("net", ("earned_revenue", "deferred_revenue", "deferred_opening",
                                     "sales_net", "refunds_net")),
                            ("tax", ("earned_tax", "deferred_tax", "deferred_opening_tax",
                                     "sales_tax", "refunds_tax"))):
            parts = [p.part(part) for p in mine]
            earned = sum(p.earned_by(period.end) - p.earned_by(day_before) for p in parts)
            deferred = sum(p.deferred_at(period.end) for p in parts)
            opening = sum(p.deferred_at(day_before) for p in parts)
            if row is None:
                assert earned == deferred == opening == 0
                continue
            e, d, o, sold, back = names
            assert (row[e], row[d], row[o]) == (earned, deferred, opening)
            assert row[d] >= 0
            assert row[o] + row[sold] - row[back] - row[e] == row[d]
        if row is not None:
            assert row["sales_net"] + row["sales_tax"] == row["gross_sales"]
            assert row["refunds_net"] + row["refunds_tax"] == row["refunds"]
    assert total["claims_paid"] == sum(
        h["claim"][1] for h in drawn if h["claim"] and period.start <= h["claim"][0] <= period.end)
    for name in ("plans_sold", "gross_sales", "refunds", "earned_revenue", "claims_paid",
                 "cancellations", "sales_tax", "refunds_tax", "earned_tax"):
        by_month = sum(r[name] for r in report["by_month"])
        by_category = sum(r[name] for r in report["by_category"])
        assert by_month == by_category == total[name]
    assert report["by_month"][-1]["deferred_revenue"] == total["deferred_revenue"]
    assert report["by_month"][0]["deferred_opening"] == total["deferred_opening"]
