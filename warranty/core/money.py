"""Money: integers in the currency's minor unit, as Stripe counts it.

This is the one module that rounds or scales money. Everything else passes
integer amounts around and calls these functions for any arithmetic that is
not plain addition or subtraction.
"""

from __future__ import annotations

import functools
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from fractions import Fraction

# Stripe's zero-decimal currencies: an amount of 1 is one whole yen, won, ...
ZERO_DECIMAL = frozenset(
    ["bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga",
     "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"]
)
# Stripe's three-decimal currencies; Stripe requires their amounts to end in 0.
THREE_DECIMAL = frozenset(["bhd", "jod", "kwd", "omr", "tnd"])
# Display symbols for the currencies stores ask for most; others show their code.
SYMBOLS = {"jpy": "¥", "usd": "$", "eur": "€", "gbp": "£", "krw": "₩", "cad": "CA$", "aud": "A$"}


class MoneyError(ValueError):
    """An amount or currency that money cannot represent."""


def check_currency(currency: str) -> str:
    """Return the lower-case ISO code, or raise for something that is not one."""
    code = (currency or "").strip().lower()
    if len(code) != 3 or not code.isascii() or not code.isalpha():
        raise MoneyError(f"not a currency code: {currency!r}")
    return code


def exponent(currency: str) -> int:
    """Number of decimal places of the currency's minor unit (0, 2 or 3)."""
    code = check_currency(currency)
    if code in ZERO_DECIMAL:
        return 0
    if code in THREE_DECIMAL:
        return 3
    return 2


def default_step(currency: str) -> int:
    """The rounding step for plan prices: ¥10 for JPY, 10 for three-decimal, else 1."""
    code = check_currency(currency)
    if code == "jpy":
        return 10
    if code in THREE_DECIMAL:
        return 10
    return 1


def stripe_step(currency: str) -> int:
    """The step every amount sent to Stripe must be a multiple of, in minor units.

    Stripe charges and refunds three-decimal currencies (KWD, BHD, JOD, OMR, TND) in steps of
    10 minor units (the last digit must be 0); every other currency in steps of 1.
    """
    return 10 if check_currency(currency) in THREE_DECIMAL else 1


def round_down_to_step(amount: int, step: int) -> int:
    """Round a non-negative integer amount down to a multiple of ``step`` minor units."""
    if step < 1:
        raise MoneyError("rounding step must be at least 1")
    if amount < 0:
        raise MoneyError("only non-negative amounts are rounded down to a step")
    return amount - amount % step


def stripe_amount_problem(amount: int, currency: str) -> str | None:
    """Why Stripe would refuse ``amount`` in ``currency`` (None when it accepts it)."""
    step = stripe_step(currency)
    if amount % step:
        return (f"{format_amount(amount, currency)} cannot be charged or refunded: Stripe takes "
                f"{currency.upper()} amounts in steps of {format_amount(step, currency)} "
                f"(multiples of {step} minor units)")
    return None


def round_up(amount: int | Fraction | Decimal, step: int = 1) -> int:
    """Round a non-negative exact amount up to a multiple of ``step`` minor units."""
    if step < 1:
        raise MoneyError("rounding step must be at least 1")
    value = Fraction(amount)
    units = -((-value) // step)  # ceiling division on exact fractions
    return int(units) * step


@functools.lru_cache(maxsize=1024)
def _exact(rate: Decimal | str) -> Fraction:
    """A rate as an exact fraction (rule sets reuse a handful of rates)."""
    return Fraction(Decimal(rate))


def of_rate(base: int, rate: Decimal | str) -> Fraction:
    """``base × rate`` exactly (no float ever touches it)."""
    return base * _exact(rate)


def price_at_rate(base: int, rate: Decimal | str, *, floor: int = 0, step: int = 1) -> int:
    """``round_up(max(base × rate, floor), step)`` in integer arithmetic (offers are hot)."""
    if step < 1:
        raise MoneyError("rounding step must be at least 1")
    exact = _exact(rate)
    scaled, den = base * exact.numerator, exact.denominator  # base × rate == scaled / den
    if scaled < floor * den:
        scaled, den = floor, 1
    return -(-scaled // (den * step)) * step


def pro_rata(amount: int, numerator: int, denominator: int) -> int:
    """``amount × numerator / denominator``, rounded down, in integers."""
    if denominator <= 0:
        raise MoneyError("pro-rata denominator must be positive")
    return amount * numerator // denominator


def percent_of(amount: int, percent: int | Decimal) -> int:
    """``amount × percent / 100`` rounded down (used for liability caps)."""
    return int(Fraction(amount) * Fraction(Decimal(percent)) / 100)


def to_major(amount: int, currency: str) -> Decimal:
    """Minor units to a Decimal in major units, for exports (¥1980 → 1980, 1980¢ → 19.80)."""
    exp = exponent(currency)
    return (Decimal(amount) / (Decimal(10) ** exp)).quantize(Decimal(1).scaleb(-exp))


def from_major(text: str, currency: str) -> int:
    """Parse a major-unit amount ("19.80") into minor units, refusing extra precision."""
    try:
        value = Decimal(str(text).strip())
    except InvalidOperation as exc:
        raise MoneyError(f"not an amount: {text!r}") from exc
    scaled = value.scaleb(exponent(currency))
    if scaled != scaled.to_integral_value():
        raise MoneyError(f"{text} has more decimals than {currency.upper()} allows")
    return int(scaled)


def format_amount(amount: int, currency: str) -> str:
    """Human text for an amount: ¥1,980 / $19.80 / KWD 1.250."""
    code = check_currency(currency)
    major = to_major(amount, code)
    sign = "-" if major < 0 else ""
    exp = exponent(code)
    body = f"{abs(major):,.{exp}f}"
    symbol = SYMBOLS.get(code)
    return f"{sign}{symbol}{body}" if symbol else f"{sign}{code.upper()} {body}"


def format_statistic(value: float | int, currency: str, *, signed: bool = False) -> str:
    """Human text for a statistic in minor units that is not itself an amount (a difference
    of means, an interval's end: reports give them as floats), to the nearest minor unit:
    ¥123 / $-0.42 / +¥1,200 with ``signed``. For display only; never stored or charged."""
    nearest = int(Decimal(str(value)).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
    text = format_amount(nearest, currency)
    return f"+{text}" if signed and nearest > 0 else text


# --- rounding modes and allocation (tax) ----------------------------------------------------

ROUNDING_MODES = ("down", "up", "half_up", "half_down", "half_even")


def round_fraction(value: int | Fraction | Decimal, mode: str = "down", step: int = 1) -> int:
    """Round a non-negative exact amount to a multiple of ``step`` minor units by ``mode``:
    ``down`` (truncate, the Japanese invoice default), ``up``, ``half_up``, ``half_down``,
    ``half_even`` (banker's). Integers and fractions only; no float."""
    if step < 1:
        raise MoneyError("rounding step must be at least 1")
    if mode not in ROUNDING_MODES:
        raise MoneyError(f"unknown rounding mode {mode!r}; use one of {', '.join(ROUNDING_MODES)}")
    exact = Fraction(value) / step
    if exact < 0:
        raise MoneyError("only non-negative amounts are rounded")
    whole = exact.numerator // exact.denominator
    rest = exact - whole
    if mode == "down" or rest == 0:
        units = whole
    elif mode == "up" or rest > Fraction(1, 2):
        units = whole + 1
    elif rest < Fraction(1, 2):
        units = whole
    elif mode == "half_up":
        units = whole + 1
    elif mode == "half_down":
        units = whole
    else:  # half_even
        units = whole + (whole % 2)
    return int(units) * step


def allocate(total: int, weights: list[int], step: int = 1) -> list[int]:
    """Split ``total`` (a non-negative multiple of ``step``) over ``weights`` in proportion, by
    the largest remainder: every share a multiple of ``step``, the shares summing to ``total``
    exactly. Ties go to the earlier weight. All weights zero: equal parts."""
    if step < 1:
        raise MoneyError("allocation step must be at least 1")
    if total < 0 or total % step:
        raise MoneyError("only a non-negative multiple of the step is allocated")
    if not weights:
        if total:
            raise MoneyError("nothing to allocate to")
        return []
    if any(w < 0 for w in weights):
        raise MoneyError("allocation weights must be non-negative")
    if sum(weights) == 0:
        weights = [1] * len(weights)
    units, whole = total // step, sum(weights)
    floors = [units * w // whole for w in weights]
    remainders = [units * w % whole for w in weights]
    left = units - sum(floors)
    order = sorted(range(len(weights)), key=lambda i: (-remainders[i], i))
    for i in order[:left]:
        floors[i] += 1
    return [f * step for f in floors]


def proportion(amount: int, numerator: int, denominator: int, mode: str = "down",
               step: int = 1) -> int:
    """``amount × numerator / denominator`` rounded by ``mode`` to ``step`` (a refund's tax)."""
    if denominator <= 0:
        raise MoneyError("proportion denominator must be positive")
    return round_fraction(Fraction(amount * numerator, denominator), mode, step)
