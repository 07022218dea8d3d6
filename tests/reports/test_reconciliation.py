"""Reconciliation against the Stripe stand-in through the real SDK."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import stripe
from sqlmodel import select

from tests.report_history import plan_sale
from warranty.orders.models import Order, Refund
from warranty.payments.client import make_client
from warranty.reports import Context, parse_period, run_report


def _paid_intent(amount: int) -> str:
    """A succeeded PaymentIntent on the stand-in."""
    return stripe.PaymentIntent.create(amount=amount, currency="jpy",
                                       payment_method="pm_card_visa", confirm=True).id


def test_differences_are_listed_per_order(db, stripe_settings, stripe_standin):
    stripe_standin.reset()
    today = datetime.now(UTC)
    day = today.astimezone(ZoneInfo("Asia/Tokyo")).date()  # the ledger books store-local days
    # Order 1: matches Stripe exactly (product 50,000 + plan 3,000), with a ¥1,000 refund
    # made at Stripe and recorded in the ledger.
    pi_ok = _paid_intent(53000)
    (ok,) = plan_sale(db, price=3000, product_price=50000, sold_on=day,
                      payment_intent_id=pi_ok, cancel=(today.date(), 1000))
    refund = stripe.Refund.create(payment_intent=pi_ok, amount=1000)
    row = db.get(Refund, 1)
    row.stripe_refund_id, row.completed_at = refund.id, today
    # Order 2: the ledger says 53,000 but Stripe charged 52,000.
    pi_short = _paid_intent(52000)
    plan_sale(db, price=3000, product_price=50000, sold_on=day,
              payment_intent_id=pi_short)
    # Order 3: Stripe refunded ¥500 that the ledger does not know.
    pi_extra = _paid_intent(53000)
    plan_sale(db, price=3000, product_price=50000, sold_on=day,
              payment_intent_id=pi_extra)
    stripe.Refund.create(payment_intent=pi_extra, amount=500)
    # A charge at Stripe with no order at all.
    pi_stray = _paid_intent(700)
    for order in db.exec(select(Order)).all():
        order.paid_at = today
    db.commit()
    ctx = Context(session=db, settings=stripe_settings,
                  stripe_client=make_client(stripe_settings), period=parse_period(day, day))
    result = run_report("reconciliation", ctx)
    rows = {r["stripe_payment_intent_id"]: r for r in result.rows}
    assert set(rows) == {pi_short, pi_extra, pi_stray}
    assert (rows[pi_short]["charged_stripe"], rows[pi_short]["charged_ledger"],
            rows[pi_short]["difference"], rows[pi_short]["issue"]) == (
        52000, 53000, -1000, "charged amount differs")
    assert (rows[pi_extra]["refunded_stripe"], rows[pi_extra]["refunded_ledger"],
            rows[pi_extra]["difference"]) == (500, 0, -500)
    assert rows[pi_stray]["issue"] == "charge not in the ledger"
    assert rows[pi_stray]["order"] is None
    totals = result.extra["totals"]
    # Stripe charged 53,000 + 52,000 + 53,000 + 700; the ledger 3 × 53,000.
    assert (totals["charged_stripe"], totals["charged_ledger"]) == (158700, 159000)
    assert (totals["refunded_stripe"], totals["refunded_ledger"]) == (1500, 1000)
    assert (totals["orders_checked"], totals["orders_with_differences"]) == (4, 3)
    assert ok.id is not None
    stripe_standin.reset()


def test_a_charge_for_an_order_paid_in_another_period_names_the_order(
        db, stripe_settings, stripe_standin):
    stripe_standin.reset()
    today = datetime.now(UTC)
    day = today.astimezone(ZoneInfo("Asia/Tokyo")).date()
    pi = _paid_intent(53000)
    (contract,) = plan_sale(db, price=3000, product_price=50000, sold_on=day,
                            payment_intent_id=pi)
    order = db.exec(select(Order)).one()
    # The ledger has it paid, and booked, in another period.
    order.paid_at = today - timedelta(days=40)
    order.purchase_date = order.booked_on = day - timedelta(days=40)
    db.commit()
    ctx = Context(session=db, settings=stripe_settings,
                  stripe_client=make_client(stripe_settings), period=parse_period(day, day))
    (row,) = run_report("reconciliation", ctx).rows
    assert (row["stripe_payment_intent_id"], row["order"], row["issue"]) == (
        pi, order.public_id, "charged by Stripe, not paid in the ledger in this period")
    assert contract.id is not None
    stripe_standin.reset()
