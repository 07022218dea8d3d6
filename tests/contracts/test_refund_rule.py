"""The brief's refund rule, computed by hand for each case."""

from datetime import date, timedelta

import pytest

from warranty.changes.cancellation import quote_refund
from warranty.contracts.models import Contract
from warranty.core.errors import DomainError
from warranty.http.errors import status_of

BOUGHT = date(2026, 1, 10)


def plan(price=6000, currency="jpy", bought=BOUGHT, term_end=date(2029, 1, 9), sold_on=None):
    """A 36-month contract as create_contracts would store it (not saved)."""
    return Contract(public_id="ct_test", order_id=1, plan_line_id=1, product_line_id=1,
                    unit_index=0, customer_email="a@example.com", sku="TV-1",
                    product_title="TV", product_price=120000, warranty_category="electronics",
                    plan_code="standard-36", coverage="standard", term_months=36, price=price,
                    currency=currency, rule_set_version=1, purchase_date=bought,
                    plan_sold_on=sold_on or bought, term_end=term_end,
                    breakdown_start=date(2027, 1, 10))


def test_day_ten_is_a_full_refund_even_with_a_fee():
    quote = quote_refund(contract=plan(), cancel_date=BOUGHT + timedelta(days=10), fee=500)
    assert (quote.rule, quote.amount, quote.fee) == ("free_look", 6000, 0)


def test_free_look_ends_thirty_days_after_the_purchase_date():
    last_free = quote_refund(contract=plan(), cancel_date=date(2026, 2, 9))  # +30 days
    assert (last_free.rule, last_free.amount) == ("free_look", 6000)
    first_paid = quote_refund(contract=plan(), cancel_date=date(2026, 2, 10))  # +31 days
    # Unused days 2026-02-10..2029-01-09 inclusive: 1,096 − 31 = 1,065.
    assert first_paid.rule == "pro_rata" and first_paid.unused_days == 1065
    assert first_paid.amount == 6000 * 1065 // 1096 == 5830


def test_pro_rata_on_a_later_day_matches_the_hand_computation():
    quote = quote_refund(contract=plan(), cancel_date=date(2026, 7, 1))
    # 2026-01-10..2029-01-09 is 1,096 days. 2026-07-01..2029-01-09 is 924 of them:
    # 184 (rest of 2026) + 365 (2027) + 366 (2028 is a leap year) + 9 (2029) = 924.
    # (A count that forgets 2028-02-29 gets 923 and ¥5,052.) 6000 × 924 / 1096 = 5058.3… → ¥5,058.
    assert (quote.term_days, quote.unused_days) == (1096, 924)
    assert (quote.rule, quote.pro_rata_amount, quote.amount) == ("pro_rata", 5058, 5058)


def test_fee_and_claims_paid_come_off_the_pro_rata_amount():
    quote = quote_refund(contract=plan(), cancel_date=date(2026, 7, 1), fee=1000,
                         claims_paid=2000)
    assert quote.amount == 5058 - 1000 - 2000 == 2058


def test_a_claim_paid_ends_the_free_look():
    quote = quote_refund(contract=plan(), cancel_date=BOUGHT + timedelta(days=10),
                         claims_paid=1500)
    # 2026-01-20..2029-01-09 = 1,086 days unused: 6000 × 1086 / 1096 = 5945.2… → 5945.
    assert (quote.rule, quote.unused_days, quote.amount) == ("pro_rata", 1086, 5945 - 1500)


def test_never_below_zero():
    quote = quote_refund(contract=plan(), cancel_date=date(2028, 12, 1), fee=300,
                         claims_paid=50_000)
    assert quote.amount == 0
    last_day = quote_refund(contract=plan(), cancel_date=date(2029, 1, 9), fee=10)
    # One unused day: 6000 × 1 / 1096 = 5.47… → 5, less a fee of 10 → 0.
    assert (last_day.unused_days, last_day.pro_rata_amount, last_day.amount) == (1, 5, 0)


def test_usd_amounts_are_cents():
    quote = quote_refund(contract=plan(price=5999, currency="usd"), cancel_date=date(2026, 7, 1),
                         fee=250)
    # 5999 × 924 / 1096 = 5057.5… → 5057 cents ($50.57), less the $2.50 fee.
    assert (quote.currency, quote.pro_rata_amount, quote.amount) == ("usd", 5057, 4807)


def test_post_purchase_plan_free_look_counts_from_its_own_sale():
    late = plan(sold_on=date(2026, 2, 20))
    quote = quote_refund(contract=late, cancel_date=date(2026, 3, 10))
    assert (quote.rule, quote.amount) == ("free_look", 6000)


def test_returned_product_refunds_everything_on_any_day():
    quote = quote_refund(contract=plan(), cancel_date=date(2027, 5, 1), fee=400, full=True)
    assert (quote.rule, quote.amount, quote.fee) == ("product_returned", 6000, 0)


def test_dates_outside_the_plan_are_refused():
    with pytest.raises(DomainError) as before:
        quote_refund(contract=plan(), cancel_date=date(2026, 1, 9))
    assert before.value.code == "invalid_cancel_date"
    with pytest.raises(DomainError) as after:
        quote_refund(contract=plan(), cancel_date=date(2029, 1, 10))
    assert after.value.code == "term_ended" and status_of(after.value) == 409


# --- a plan sold after its product: the span runs from the sale -----------------------------
# Product bought 2026-01-10, plan sold 2026-02-20 (post-purchase), 36-month term from the
# purchase: 2026-01-10..2029-01-09 (1,096 days). Span: 2026-02-20..2029-01-09 = 1,096 − 41
# (2026-01-10..2026-02-19: 22 days of January, 19 of February) = 1,055 days.
SOLD_LATER = date(2026, 2, 20)


def test_post_purchase_span_runs_from_the_sale_date():
    quote = quote_refund(contract=plan(sold_on=SOLD_LATER), cancel_date=date(2026, 10, 1))
    # Used: 2026-02-20..2026-09-30 = 9 + 31 + 30 + 31 + 30 + 31 + 31 + 30 = 223 days;
    # unused 1,055 − 223 = 832. 6000 × 832 / 1055 = 4731.75… → ¥4,731
    # (spread over the whole term it would be 6000 × 832 / 1096 = ¥4,554).
    assert (quote.term_days, quote.span_days, quote.unused_days) == (1096, 1055, 832)
    assert (quote.rule, quote.pro_rata_amount, quote.amount) == ("pro_rata", 4731, 4731)


def test_post_purchase_free_look_ends_thirty_days_after_the_sale():
    late = plan(sold_on=SOLD_LATER)
    last_free = quote_refund(contract=late, cancel_date=date(2026, 3, 22))  # sale + 30 days
    assert (last_free.rule, last_free.amount) == ("free_look", 6000)
    first_paid = quote_refund(contract=late, cancel_date=date(2026, 3, 23))
    # 31 days used (2026-02-20..2026-03-22), 1,024 unused: 6000 × 1024 / 1055 = 5823.69… → 5823.
    assert (first_paid.rule, first_paid.unused_days, first_paid.amount) == ("pro_rata", 1024,
                                                                            5823)


def test_the_sale_day_itself_is_never_unused_time_lost():
    # Cancelled (with a claim paid, so no free look) on the sale day: every day is unused.
    quote = quote_refund(contract=plan(sold_on=SOLD_LATER), cancel_date=SOLD_LATER,
                         claims_paid=1)
    assert (quote.unused_days, quote.pro_rata_amount, quote.amount) == (1055, 6000, 5999)


# --- three-decimal currencies: the refund Stripe accepts ------------------------------------


@pytest.mark.parametrize("currency", ["kwd", "bhd", "jod", "omr", "tnd"])
def test_three_decimal_refund_rounds_down_to_ten(currency):
    # 6.000 (6,000 fils) bought with the product 2026-01-10, cancelled 2026-10-01: 832 of 1,096
    # days unused (2026-01-10..2026-09-30 = 264 used). 6000 × 832 / 1096 = 4554.7… → 4,554,
    # rounded down to Stripe's step of 10 → 4,550.
    quote = quote_refund(contract=plan(currency=currency), cancel_date=date(2026, 10, 1))
    assert (quote.unused_days, quote.pro_rata_amount, quote.amount) == (832, 4554, 4550)
    # After the fee and the claims paid: 4,554 − 125 − 1,000 = 3,429 → 3,420.
    net = quote_refund(contract=plan(currency=currency), cancel_date=date(2026, 10, 1), fee=125,
                       claims_paid=1000)
    assert net.amount == 3420
    # The free look gives the whole price back, itself a multiple of 10.
    assert quote_refund(contract=plan(currency=currency),
                        cancel_date=date(2026, 1, 20)).amount == 6000


def test_two_decimal_and_zero_decimal_refunds_keep_every_minor_unit():
    assert quote_refund(contract=plan(currency="usd"), cancel_date=date(2026, 10, 1)).amount \
        == 4554
    assert quote_refund(contract=plan(currency="jpy"), cancel_date=date(2026, 10, 1)).amount \
        == 4554
