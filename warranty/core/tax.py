"""Consumption tax on plan sales: the store's tax setting and its arithmetic.

The rules (docs/domain/tax.md):

- ``inclusive``: prices as shown include the tax; the tax in an amount is
  ``amount × rate / (1 + rate)``. ``exclusive``: prices are net and the tax,
  ``amount × rate``, is added at checkout.
- The Japanese qualified-invoice rule: the tax is worked out once per order and rate, on the
  sum of the order's plan lines at that rate, rounded once (``WARRANTY_TAX_ROUNDING``,
  default down), then allocated to the lines (money.allocate), never rounded per line.
- Where the tax is charged (exclusive), it is rounded to Stripe's step, so that every amount
  sent to Stripe stays a multiple of it (10 fils for KWD).
- A refund reverses tax in proportion: ``line tax × refund / line gross``, rounded by the
  same mode, never more than what is left.

No database and no Flask here: integers in minor units, rates as exact decimals.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from warranty.core import money

MODES = ("inclusive", "exclusive")
# Rates the store does not set: 10% in Japan (the standard consumption tax rate), else none.
DEFAULT_RATES = {"jpy": Decimal("0.10")}
REGISTRATION = re.compile(r"T(\d{13})")


def default_rate(currency: str) -> Decimal:
    """The rate a store in ``currency`` has unless it sets one."""
    return DEFAULT_RATES.get(money.check_currency(currency), Decimal("0"))


def parse_rate(text: str | Decimal) -> Decimal:
    """A rate as a decimal fraction, 0 <= rate < 1 ("0.10", "0.08875"); ValueError else."""
    try:
        rate = Decimal(str(text).strip())
    except ArithmeticError:
        raise ValueError("write the rate as a decimal fraction, such as 0.10 or 0.08875") \
            from None
    if not rate.is_finite() or rate < 0 or rate >= 1:
        raise ValueError("the rate is a decimal fraction from 0 up to (not including) 1, "
                         "such as 0.10 for 10%")
    if rate.as_tuple().exponent < -6:
        raise ValueError("the rate has at most 6 decimals (0.088750 is 8.875%)")
    return rate


def registration_problem(number: str) -> str | None:
    """Why ``number`` is not a qualified invoice issuer's registration number (None if it is).

    The number is ``T`` and 13 digits; the first digit is the check digit of the corporate
    number (法人番号) rule of the National Tax Agency: ``9 − (Σ Pn × Qn mod 9)`` over the 12
    other digits, Pn the n-th digit from the right, Qn 1 for odd n and 2 for even n.
    """
    match = REGISTRATION.fullmatch(number)
    if match is None:
        return "a registration number is T followed by 13 digits, such as T7000012050002"
    digits = match.group(1)
    body = digits[1:]
    total = sum(int(d) * (1 if n % 2 else 2) for n, d in enumerate(reversed(body), start=1))
    if int(digits[0]) != 9 - total % 9:
        return "the registration number's check digit (its first digit after T) is wrong"
    return None


@dataclass(frozen=True)
class TaxPolicy:
    """The store's tax setting as the arithmetic needs it."""

    mode: str = "inclusive"
    rate: Decimal = Decimal("0")
    rounding: str = "down"
    currency: str = "jpy"
    registration_number: str = ""
    # Stripe Tax works out the tax of hosted Checkout Sessions (exclusive prices only).
    automatic: bool = False

    @property
    def exclusive(self) -> bool:
        """Tax is added to the prices at checkout."""
        return self.mode == "exclusive"

    @property
    def step(self) -> int:
        """The quantum of the tax: Stripe's step where the tax is charged on top (10 fils for
        three-decimal currencies), else one minor unit."""
        return money.stripe_step(self.currency) if self.exclusive else 1

    @property
    def percent(self) -> str:
        """The rate as a percentage for people: ``10%``, ``8.875%``."""
        text = format(self.rate * 100, "f")
        if "." in text:
            text = text.rstrip("0").rstrip(".")
        return f"{text}%"

    def tax_of(self, amount: int) -> int:
        """The tax in (inclusive) or on (exclusive) ``amount``, the sum of an order's lines
        at this rate, rounded once."""
        if amount < 0:
            raise money.MoneyError("tax is worked out on non-negative amounts")
        rate = Fraction(self.rate)
        exact = amount * rate / (1 + rate) if not self.exclusive else amount * rate
        return money.round_fraction(exact, self.rounding, self.step)

    def split(self, amounts: list[int]) -> list[tuple[int, int, int]]:
        """(gross, tax, net) of each line of one order at this rate: the order's tax rounded
        once, allocated to the lines by the largest remainder (they sum to it)."""
        taxes = money.allocate(self.tax_of(sum(amounts)), amounts, self.step)
        if self.exclusive:
            return [(amount + tax, tax, amount) for amount, tax in zip(amounts, taxes,
                                                                      strict=True)]
        return [(amount, tax, amount - tax) for amount, tax in zip(amounts, taxes, strict=True)]

    def refund_tax(self, *, line_tax: int, line_gross: int, refund: int, left: int) -> int:
        """The tax a refund reverses: ``line_tax × refund / line_gross`` rounded by the mode,
        never more than ``left`` (the line's tax not yet reversed)."""
        if line_gross <= 0 or refund <= 0:
            return 0
        return max(0, min(left, money.proportion(line_tax, refund, line_gross,
                                                 self.rounding)))
