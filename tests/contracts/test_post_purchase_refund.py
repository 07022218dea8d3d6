"""A plan sold after its product: free look, pro-rata refund and revenue over one span.

Product bought 2026-01-10; plan sold 2026-02-20 (post-purchase); 36-month term counted from
the purchase: 2026-01-10..2029-01-09. The plan's span runs from its sale to the term end,
both counted: 2026-02-20..2029-01-09 = 1,096 − 41 = 1,055 days. Everything through HTTP: the
quote, the cancellation with its refund on the Stripe stand-in, and the finance report.
"""

from datetime import date

import pytest
import stripe

from tests.factories import stripe_paid_order
from warranty.http.app import create_app

BOUGHT, SOLD = date(2026, 1, 10), date(2026, 2, 20)
REPORT = "/api/v1/reports/finance?from={}&to={}"


@pytest.fixture
def api(mail_settings):
    """A client of the app talking to the Stripe stand-in."""
    return create_app(mail_settings).test_client()


def _later_plan(db, order_ref):
    """A ¥6,000 standard-36 plan for a ¥120,000 TV, sold 41 days after the TV, paid on Stripe."""
    order, (contract,) = stripe_paid_order(db, purchase_date=BOUGHT, plan_sold_on=SOLD,
                                           order_ref=order_ref)
    assert (contract.price, contract.plan_sold_on, contract.term_end) == (
        6000, SOLD, date(2029, 1, 9))
    return order, contract


def _cancel(api, headers, contract, cancel_date):
    """Quote, then confirm the quoted amount; returns (quote, refund) as the API shows them."""
    quote = api.get(f"/api/v1/contracts/{contract.public_id}/cancellation-quote"
                    f"?cancel_date={cancel_date}", headers=headers)
    assert quote.status_code == 200, quote.json
    done = api.post(f"/api/v1/contracts/{contract.public_id}/cancel", headers=headers,
                    json={"amount": quote.json["amount"], "cancel_date": cancel_date,
                          "reason": "asked", "backdate_reason": "a test dated on a fixed day"})
    assert done.status_code == 200, done.json
    return quote.json, done.json["refund"]


def test_pro_rata_refund_over_the_span_matches_deferred_revenue(api, db, staff_headers):
    order, contract = _later_plan(db, "PP-1")
    # Deferred revenue at the end of 2026-09-30 (before the cancellation): 223 days of the
    # span are used (2026-02-20..2026-09-30: 9 + 31 + 30 + 31 + 30 + 31 + 31 + 30), earned
    # 6000 × 223 // 1055 = 1,338,000 // 1055 = 1,268, so ¥4,732 is deferred (tax included).
    # The ¥6,000 includes 10% tax: 6000 × 10 / 110 = 545.45… → ¥545, net ¥5,455. The rule on
    # each part: net earned 5455 × 223 // 1055 = 1,153, deferred 4,302; tax earned
    # 545 × 223 // 1055 = 115, deferred 430; together ¥4,732.
    september = api.get(REPORT.format("2026-09-01", "2026-09-30"), headers=staff_headers).json
    total = september["total"]
    assert (total["deferred_revenue"], total["deferred_tax"]) == (5455 - 1153, 545 - 115)
    deferred = total["deferred_revenue"] + total["deferred_tax"]
    assert deferred == 6000 - 1268 == 4732
    quote, refund = _cancel(api, staff_headers, contract, "2026-10-01")
    # Unused from 2026-10-01: 1,055 − 223 = 832 days. 6000 × 832 / 1055 = 4731.75… → ¥4,731
    # (over the whole 1,096-day term it would have been ¥4,554).
    assert (quote["rule"], quote["term_days"], quote["span_days"], quote["unused_days"]) == (
        "pro_rata", 1096, 1055, 832)
    assert quote["pro_rata_amount"] == quote["amount"] == 4731
    # The identity of the two rules: both are 6000 × 832 / 1055 = 4731.75…, the refund rounded
    # down and the deferred balance rounded up (earned revenue rounds down): 4,732 − 4,731 = 1
    # because 6000 × 832 is not a multiple of 1,055.
    assert deferred - quote["pro_rata_amount"] == 1
    assert (refund["status"], refund["amount"]) == ("succeeded", 4731)
    (sent,) = stripe.Refund.list(payment_intent=order.stripe_payment_intent_id, limit=10).data
    assert sent.amount == 4731
    october = api.get(REPORT.format("2026-10-01", "2026-10-31"), headers=staff_headers).json
    # The refund comes out of deferred revenue; the ¥1 left is earned on the cancel date. Its
    # tax: 545 × 4731 / 6000 = 429.7… → ¥429; so the plan earns net 5455 − 4302 = 1,153 in
    # all (nothing more in October) and tax 545 − 429 = 116 (¥1 in October).
    total = october["total"]
    assert (total["refunds"], total["refunds_tax"], total["earned_revenue"],
            total["earned_tax"], total["deferred_revenue"], total["deferred_tax"]) == (
        4731, 429, 0, 1, 0, 0)


def test_free_look_counts_from_the_sale_date(api, db, staff_headers):
    _, last_free = _later_plan(db, "PP-2")
    quote, refund = _cancel(api, staff_headers, last_free, "2026-03-22")  # sale + 30 days
    assert (quote["rule"], refund["amount"]) == ("free_look", 6000)
    _, first_paid = _later_plan(db, "PP-3")
    quote, refund = _cancel(api, staff_headers, first_paid, "2026-03-23")
    # 31 days used, 1,024 unused: 6000 × 1024 / 1055 = 5823.69… → ¥5,823.
    assert (quote["rule"], quote["unused_days"], refund["amount"]) == ("pro_rata", 1024, 5823)
