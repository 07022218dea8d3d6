"""The tax of an order's plan lines, worked out once (warranty.core.tax) or by Stripe Tax, and
each unit's part.

Stored on the order lines (``gross``, ``tax``, ``net``) when the order is priced; a
contract takes its unit's part of its line (``unit_shares``), a refund its proportion.
"""

from __future__ import annotations

from warranty.core import money
from warranty.core.tax import TaxPolicy
from warranty.orders.models import OrderLine


def apply(lines: list[OrderLine], policy: TaxPolicy, *, by_stripe: bool = False) -> None:
    """Set gross, tax and net of every line of one order: the plan lines share the order's
    tax at the store's rate, rounded once (per order and rate) and allocated by the largest
    remainder; product lines carry none.

    ``by_stripe``: Stripe Tax will work the tax out on the Checkout Session, so the lines
    carry none yet (gross = net = amount); ``apply_stripe_tax`` stores what Stripe computed
    when the order is paid.
    """
    if by_stripe:
        for line in lines:
            line.gross, line.tax, line.net = line.amount, 0, line.amount
        return
    plans = [line for line in lines if line.kind == "plan"]
    for line, (gross, tax, net) in zip(plans, policy.split([p.amount for p in plans]),
                                       strict=True):
        line.gross, line.tax, line.net = gross, tax, net
    for line in lines:
        if line.kind != "plan":
            line.gross, line.tax, line.net = line.amount, 0, line.amount


def apply_stripe_tax(lines: list[OrderLine], taxes: list[int]) -> None:
    """Store the tax Stripe Tax computed on each line (its Checkout line item's
    ``amount_tax``, added on top of the line's amount): gross = amount + tax, net = amount."""
    for line, tax in zip(lines, taxes, strict=True):
        if tax < 0:
            raise money.MoneyError("a line's tax is never negative")
        line.gross, line.tax, line.net = line.amount + tax, tax, line.amount


def unit_shares(line: OrderLine, currency: str) -> list[tuple[int, int]]:
    """(gross, tax) of each unit of a line, in unit order: the line's tax split equally by
    the largest remainder (in Stripe's step where the tax was charged on top, so that each
    unit's full refund is one Stripe takes), each unit's gross its shown price plus
    (exclusive) its tax. They sum to the line's gross and tax."""
    added = line.gross - line.amount  # the tax added on top (exclusive), else 0
    step = money.stripe_step(currency) if added else 1
    if line.tax % step:
        step = 1
    taxes = money.allocate(line.tax, [1] * line.quantity, step)
    if added:
        return [(line.unit_price + tax, tax) for tax in taxes]
    return [(line.unit_price, tax) for tax in taxes]


def rates_summary(lines: list[OrderLine], policy: TaxPolicy) -> list[dict]:
    """Per rate (the store has one): the plan lines' gross, tax and net, for qualified
    invoices and order confirmations."""
    plans = [line for line in lines if line.kind == "plan"]
    if not plans:
        return []
    return [{"rate": str(policy.rate), "percent": policy.percent, "mode": policy.mode,
             "gross": sum(p.gross for p in plans), "tax": sum(p.tax for p in plans),
             "net": sum(p.net for p in plans)}]
