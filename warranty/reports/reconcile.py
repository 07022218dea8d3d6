"""Reconciliation: what Stripe says was charged and refunded, against the ledger, per order.

Stripe's side lists PaymentIntents and refunds through the SDK (created in the period, in the
store's time zone); the ledger's side is the orders paid through Stripe booked in the period
(warranty.periods: a payment recorded after its month was closed is booked in the first open
month, and its row says so) and the refunds that completed in it: plan refunds, plans refunded
automatically because every unit already had one (money moved, though no contract was ever
sold), and refunds made outside the service in Stripe's dashboard (recorded from Stripe's
events). A plan refund that another refund already paid (a full refund made in the dashboard)
moved no money of its own and is not counted twice. Every order where the two sides differ is
listed with the reason, and so is every order with a refund made outside the service or an
automatic plan refund, with a note naming them. Stripe's side is Stripe's live data, so unlike
the other reports this one can change for a closed month; its ledger side cannot.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

import sqlalchemy as sa

from warranty.core.money import format_amount
from warranty.orders.models import PURCHASE_STATUSES, Order, Refund
from warranty.payments.listings import stripe_side
from warranty.reports.registry import Context, Result, report
from warranty.reports.revenue import period_bounds

COLUMNS = ["order", "stripe_payment_intent_id", "charged_stripe", "charged_ledger",
           "refunded_stripe", "refunded_ledger", "refunded_outside", "difference", "issue",
           "note"]


def _ledger_side(ctx: Context, start: datetime, end: datetime) -> tuple[dict, ...]:
    """Orders paid through Stripe booked in the period, refunds completed in it, those refunds
    that were no plan's (per PaymentIntent, (kind, amount, Stripe refund id) of each), and the
    purchase dates of orders booked later than paid (adjustments)."""
    o, r = Order.__table__, Refund.__table__
    orders = ctx.session.execute(
        sa.select(o.c.stripe_payment_intent_id, o.c.public_id, o.c.total_amount,
                  o.c.purchase_date, o.c.booked_on)
        .where(o.c.stripe_payment_intent_id.is_not(None),
               o.c.booked_on.between(ctx.period.start, ctx.period.end),
               o.c.status.in_(PURCHASE_STATUSES))).all()
    moved = ctx.session.execute(
        sa.select(o.c.stripe_payment_intent_id, o.c.public_id, r.c.amount, r.c.kind,
                  r.c.stripe_refund_id)
        .select_from(r.join(o, o.c.id == r.c.order_id))
        .where(r.c.status == "succeeded", r.c.covered_by_id.is_(None),
               r.c.completed_at >= start, r.c.completed_at < end)
        .order_by(r.c.id)).all()
    refunded: dict[str, int] = defaultdict(int)
    other: dict[str, list] = defaultdict(list)
    for pi, _, amount, kind, stripe_id in moved:
        refunded[pi] += amount
        if kind != "plan":
            other[pi].append((kind, amount, stripe_id))
    names = {row[0]: row[1] for row in [*orders, *moved]}
    late = {pi: (paid, booked) for pi, _, _, paid, booked in orders if booked > paid}
    return ({pi: total for pi, _, total, _, _ in orders}, dict(refunded), names, dict(other),
            late)


def _note(refunds: list, currency: str) -> str | None:
    """What the ledger's refunds of an order that belonged to no plan were."""
    parts = []
    for kind, amount, stripe_id in refunds:
        text = format_amount(amount, currency)
        if kind == "external":
            parts.append(f"{text} refunded outside the service (Stripe dashboard, {stripe_id})")
        else:
            parts.append(f"{text} plan refunded automatically: every unit already had a plan")
    return "; ".join(parts) or None


@report("reconciliation")
def reconciliation(ctx: Context) -> Result:
    """Per order: charged and refunded by Stripe and by the ledger, and what differs."""
    start, end = period_bounds(ctx.period, ctx.settings.timezone)
    if ctx.stripe_client is None:
        raise ValueError("the reconciliation report needs a Stripe client")
    stripe_charged, stripe_refunded = stripe_side(ctx.stripe_client, start, end)
    ledger_charged, ledger_refunded, names, not_plans, late = _ledger_side(ctx, start, end)
    # Stripe's side may name orders the ledger has outside the period: find their names.
    missing = (set(stripe_charged) | set(stripe_refunded)) - set(names)
    if missing:
        o = Order.__table__
        for pi, name in ctx.session.execute(
                sa.select(o.c.stripe_payment_intent_id, o.c.public_id)
                .where(o.c.stripe_payment_intent_id.in_(sorted(missing)))).all():
            names[pi] = name
    rows, totals = [], defaultdict(int)
    for pi in sorted(set(stripe_charged) | set(ledger_charged) | set(stripe_refunded)
                     | set(ledger_refunded)):
        row = {"order": names.get(pi), "stripe_payment_intent_id": pi,
               "charged_stripe": stripe_charged.get(pi, 0),
               "charged_ledger": ledger_charged.get(pi, 0),
               "refunded_stripe": stripe_refunded.get(pi, 0),
               "refunded_ledger": ledger_refunded.get(pi, 0),
               "refunded_outside": sum(amount for kind, amount, _ in not_plans.get(pi, [])
                                       if kind == "external"),
               "note": _note(not_plans.get(pi, []), ctx.settings.currency)}
        for key in ("charged_stripe", "charged_ledger", "refunded_stripe", "refunded_ledger",
                    "refunded_outside"):
            totals[key] += row[key]
        row["difference"] = ((row["charged_stripe"] - row["refunded_stripe"])
                             - (row["charged_ledger"] - row["refunded_ledger"]))
        issues = []
        if pi in stripe_charged and pi not in ledger_charged:
            issues.append("charge not in the ledger" if row["order"] is None
                          else "charged by Stripe, not paid in the ledger in this period")
        if pi in ledger_charged and pi not in stripe_charged:
            if pi in late:
                paid, booked = late[pi]
                issues.append(f"paid {paid}, in a closed month: booked {booked} as an "
                              "adjustment, no charge at Stripe in this period")
            else:
                issues.append("paid in the ledger, no charge at Stripe in this period")
        if pi in stripe_charged and pi in ledger_charged and \
                row["charged_stripe"] != row["charged_ledger"]:
            issues.append("charged amount differs")
        if row["refunded_stripe"] != row["refunded_ledger"]:
            issues.append("refunded amount differs")
        row["issue"] = "; ".join(issues) or None
        totals["orders_with_differences"] += bool(issues)
        totals["orders_refunded_outside"] += bool(row["refunded_outside"])
        if issues or row["note"]:
            rows.append(row)
    totals["orders_checked"] = len(set(stripe_charged) | set(ledger_charged))
    for key in ("orders_with_differences", "orders_refunded_outside"):
        totals.setdefault(key, 0)
    return Result("reconciliation", ctx.period, ctx.settings.currency, COLUMNS, rows,
                  money={"charged_stripe", "charged_ledger", "refunded_stripe",
                         "refunded_ledger", "refunded_outside", "difference"},
                  extra={"totals": dict(totals)})
