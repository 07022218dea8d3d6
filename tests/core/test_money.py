"""Money in minor units: zero-, two- and three-decimal currencies."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from warranty.core import money


@pytest.mark.parametrize(("currency", "exp", "step"), [
    ("jpy", 0, 10), ("JPY", 0, 10), ("krw", 0, 1), ("usd", 2, 1), ("eur", 2, 1), ("kwd", 3, 10),
])
def test_exponent_and_step(currency, exp, step):
    assert money.exponent(currency) == exp
    assert money.default_step(currency) == step


@pytest.mark.parametrize(("amount", "step", "expected"), [
    (0, 10, 0), (1, 10, 10), (10, 10, 10), (11, 10, 20), (5999, 10, 6000),
    (Decimal("5999.5"), 1, 6000), (Decimal("5999.0"), 1, 5999),
])
def test_round_up(amount, step, expected):
    assert money.round_up(amount, step) == expected


def test_rate_is_exact_not_float():
    # 0.1 × 3 is 0.30000000000000004 in floats; the rate stays exact here.
    assert money.round_up(money.of_rate(3, "0.1")) == 1
    assert money.of_rate(120000, "0.083") == 9960
    assert money.round_up(money.of_rate(29999, "0.08"), 1) == 2400  # 2399.92 cents up


@given(base=st.integers(0, 10**12), rate=st.decimals(0, 10, places=4),
       floor=st.integers(0, 10**6), step=st.sampled_from([1, 5, 10, 100]))
def test_price_at_rate_is_round_up_of_the_exact_product(base, rate, floor, step):
    expected = money.round_up(max(money.of_rate(base, rate), floor), step)
    assert money.price_at_rate(base, rate, floor=floor, step=step) == expected


def test_price_at_rate_examples():
    assert money.price_at_rate(29999, "0.08") == 2400  # 2399.92 cents up
    assert money.price_at_rate(120000, "0.083", step=10) == 9960
    assert money.price_at_rate(1000, "0.05", floor=980, step=10) == 980  # the floor
    assert money.price_at_rate(19999, "0.05", floor=0, step=10) == 1000  # 999.95 → ¥1,000
    with pytest.raises(money.MoneyError):
        money.price_at_rate(100, "0.1", step=0)


def test_pro_rata_rounds_down():
    assert money.pro_rata(6000, 1086, 1096) == 5945  # 5945.25...
    assert money.pro_rata(1999, 1, 3) == 666
    with pytest.raises(money.MoneyError):
        money.pro_rata(100, 1, 0)


@pytest.mark.parametrize(("amount", "currency", "text"), [
    (1980, "jpy", "¥1,980"), (1980, "usd", "$19.80"), (1250, "kwd", "KWD 1.250"),
    (-500, "usd", "-$5.00"), (0, "jpy", "¥0"),
])
def test_format(amount, currency, text):
    assert money.format_amount(amount, currency) == text


@pytest.mark.parametrize(("text", "currency", "minor"), [
    ("1980", "jpy", 1980), ("19.80", "usd", 1980), ("1.25", "kwd", 1250), ("0.001", "kwd", 1),
])
def test_from_and_to_major(text, currency, minor):
    assert money.from_major(text, currency) == minor
    assert money.to_major(minor, currency) == Decimal(text)


@pytest.mark.parametrize(("text", "currency"), [("19.5", "jpy"), ("1.234", "usd"), ("x", "usd")])
def test_from_major_refuses_extra_precision(text, currency):
    with pytest.raises(money.MoneyError):
        money.from_major(text, currency)


@pytest.mark.parametrize("bad", ["", "yenn", "12", "j p", "¥¥¥"])
def test_bad_currency(bad):
    with pytest.raises(money.MoneyError):
        money.exponent(bad)


@pytest.mark.parametrize(("currency", "step"), [
    ("kwd", 10), ("BHD", 10), ("jod", 10), ("omr", 10), ("tnd", 10),
    ("jpy", 1), ("krw", 1), ("usd", 1), ("eur", 1),
])
def test_stripe_step(currency, step):
    assert money.stripe_step(currency) == step


@pytest.mark.parametrize(("amount", "step", "expected"), [
    (0, 10, 0), (9, 10, 0), (10, 10, 10), (4554, 10, 4550), (4559, 10, 4550), (4554, 1, 4554),
])
def test_round_down_to_step(amount, step, expected):
    assert money.round_down_to_step(amount, step) == expected


def test_round_down_to_step_refuses_nonsense():
    with pytest.raises(money.MoneyError):
        money.round_down_to_step(10, 0)
    with pytest.raises(money.MoneyError):
        money.round_down_to_step(-10, 10)


def test_amounts_stripe_refuses_are_named():
    assert money.stripe_amount_problem(12340, "kwd") is None
    assert money.stripe_amount_problem(12345, "jpy") is None
    problem = money.stripe_amount_problem(12345, "kwd")
    assert "KWD 12.345" in problem and "KWD 0.010" in problem
