"""Retention: repeat purchases, monthly cohorts and LTV, for customers with and without a plan.

Definitions (documented in the README):
- a customer is an email; a purchase is a paid (or later refunded) order, external ones
  included; post-purchase plan orders are part of the purchase they cover, not new purchases;
- the cohort is the month of a customer's first purchase; the report's period selects the
  customers whose first purchase falls in it; their later orders are followed up to the last
  purchase date in the database (the observation end);
- a customer "with a plan" bought at least one plan for their first purchase (with it, or
  through the post-purchase link);
- repeat-purchase rate at N days: among customers observed for N days after their first
  purchase, the share who bought again on a later day within N days;
- cohort retention at month k: share of the cohort who bought in calendar month cohort + k;
- LTV = average order value × gross margin × purchases per year × years retained, where
  purchases per year is the mean number of purchases in the first 365 days (customers observed
  for a year), and years retained = 1 / (1 - r) with r the 365-day repeat-purchase rate: each
  year a customer comes back with probability r, so the expected number of years they buy in is
  the geometric sum 1 + r + r² + ... (capped at 10 years; 1 year when nobody came back).
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import sqlalchemy as sa

from warranty.models import Contract, Order, VisitorEvent
from warranty.money import pro_rata
from warranty.reports import Context, Result, report
from warranty.reports.revenue import ratio
from warranty.reports.sql import days_between, month_index, month_of

WINDOWS = (90, 180, 365)
COHORT_MONTHS = 12
MAX_YEARS = 10
PURCHASE_STATUSES = ("paid", "refunded")
_o, _c = Order.__table__, Contract.__table__


def _purchases():
    """Orders that count as purchases."""
    return sa.and_(_o.c.status.in_(PURCHASE_STATUSES), _o.c.channel != "post_purchase",
                   _o.c.purchase_date.is_not(None))


def _firsts():
    """Per customer: first purchase date, and whether a plan was bought for it."""
    first = (sa.select(_o.c.customer_email.label("email"),
                       sa.func.min(_o.c.purchase_date).label("first"))
             .where(_purchases()).group_by(_o.c.customer_email).subquery("first_purchase"))
    plans = (sa.select(_o.c.customer_email.label("email"),
                       sa.func.min(_c.c.purchase_date).label("first_plan"))
             .select_from(_c.join(_o, _o.c.id == _c.c.order_id))
             .group_by(_o.c.customer_email).subquery("first_plan"))
    return first, plans


def _arms():
    """Per customer: the holdout arm of the embed visitor behind their orders, if any."""
    ve = VisitorEvent.__table__
    visitor_arm = (sa.select(ve.c.visitor_id, sa.func.min(ve.c.arm).label("arm"))
                   .group_by(ve.c.visitor_id).subquery("visitor_arm"))
    return (sa.select(_o.c.customer_email.label("email"),
                      sa.func.min(visitor_arm.c.arm).label("arm"))
            .select_from(_o.join(visitor_arm, visitor_arm.c.visitor_id == _o.c.visitor_id))
            .group_by(_o.c.customer_email).subquery("arms"))


@report("retention")
def retention(ctx: Context) -> Result:
    """Repeat-purchase rates, cohort retention and LTV: with and without a plan, and per
    holdout arm (customers whose orders carry an embed visitor id; the rest are "no_visitor")."""
    observed_to = ctx.session.execute(sa.select(sa.func.max(_o.c.purchase_date))
                                      .where(_purchases())).scalar() or ctx.period.end
    first, plans = _firsts()
    with_plan = sa.case((plans.c.first_plan == first.c.first, "with_plan"),
                        else_="without_plan")
    rows, groups = _grouped(
        ctx, observed_to, first, with_plan, first.outerjoin(plans, plans.c.email == first.c.email),
        ("with_plan", "without_plan"))
    arms = _arms()
    arm = sa.func.coalesce(arms.c.arm, "no_visitor")
    arm_rows, arm_groups = _grouped(
        ctx, observed_to, first, arm, first.outerjoin(arms, arms.c.email == first.c.email),
        ("treatment", "holdout", "no_visitor"))
    columns = ["group", "cohort", "customers", "orders", "average_order_value",
               *[f"repeat_{d}_rate" for d in WINDOWS],
               *[f"retention_m{m}" for m in range(1, COHORT_MONTHS + 1)]]
    return Result("retention", ctx.period, ctx.settings.currency, columns,
                  [*rows, *arm_rows], money={"average_order_value"},
                  extra={"observed_to": observed_to.isoformat(),
                         "ltv": {**groups, **arm_groups},
                         "gross_margin": str(ctx.settings.gross_margin)})


def _grouped(ctx: Context, observed_to, first, grp_expr, joined, group_names):
    """The retention table for customers split by ``grp_expr`` over ``joined``."""
    session, period = ctx.session, ctx.period
    cohort = (sa.select(first.c.email, first.c.first, grp_expr.label("grp"),
                        month_of(first.c.first).label("cohort"),
                        month_index(first.c.first).label("cohort_index"))
              .select_from(joined)
              .where(first.c.first.between(period.start, period.end))
              .subquery("cohort"))
    gap = days_between(_o.c.purchase_date, cohort.c.first)
    # Per customer: the day of their next purchase, orders, value, purchases in year one.
    per_customer = (
        sa.select(cohort.c.email, cohort.c.grp, cohort.c.cohort, cohort.c.first,
                  sa.func.min(sa.case((gap > 0, gap))).label("next_gap"),
                  sa.func.count().label("orders"),
                  sa.func.sum(_o.c.total_amount).label("value"),
                  sa.func.sum(sa.case((gap < 365, 1), else_=0)).label("year_one"))
        .select_from(cohort.join(_o, _o.c.customer_email == cohort.c.email))
        .where(_purchases())
        .group_by(cohort.c.email, cohort.c.grp, cohort.c.cohort, cohort.c.first)
        .subquery("per_customer"))
    observed = days_between(sa.literal(observed_to, sa.Date()), per_customer.c.first)
    measures = [sa.func.count().label("customers"),
                sa.func.sum(per_customer.c.orders).label("orders"),
                sa.func.sum(per_customer.c.value).label("value"),
                sa.func.sum(sa.case((observed >= 365, per_customer.c.year_one), else_=0))
                .label("year_one_orders")]
    for days in WINDOWS:
        measures.append(sa.func.sum(sa.case((observed >= days, 1), else_=0))
                        .label(f"eligible_{days}"))
        measures.append(sa.func.sum(sa.case((sa.and_(observed >= days,
                                                     per_customer.c.next_gap <= days), 1),
                                            else_=0)).label(f"repeat_{days}"))
    stmt = (sa.select(per_customer.c.grp, per_customer.c.cohort, *measures)
            .group_by(per_customer.c.grp, per_customer.c.cohort))
    cells = {(r.grp, r.cohort): dict(r._mapping) for r in session.execute(stmt)}
    # Cohort retention: distinct customers buying in each month after their first.
    k = month_index(_o.c.purchase_date) - cohort.c.cohort_index
    active = (sa.select(cohort.c.grp, cohort.c.cohort, k.label("k"),
                        sa.func.count(sa.distinct(cohort.c.email)))
              .select_from(cohort.join(_o, _o.c.customer_email == cohort.c.email))
              .where(_purchases(), k.between(1, COHORT_MONTHS))
              .group_by(cohort.c.grp, cohort.c.cohort, k))
    for grp, key, month, count in session.execute(active):
        cells.setdefault((grp, key), {})[f"m{month}"] = count
    rows, groups = [], {}
    for grp in group_names:
        mine = [dict(cells[key], grp=grp, cohort=key[1]) for key in sorted(cells)
                if key[0] == grp]
        total = {"grp": grp, "cohort": "all"}
        for name in ("customers", "orders", "value", "year_one_orders",
                     *[f"{p}_{d}" for d in WINDOWS for p in ("eligible", "repeat")],
                     *[f"m{m}" for m in range(1, COHORT_MONTHS + 1)]):
            total[name] = sum(int(c.get(name) or 0) for c in mine)
        for row in [*mine, total]:
            rows.append(_row(row))
        groups[grp] = _ltv(total, ctx.settings.gross_margin)
    return rows, groups


def _row(cell: dict) -> dict:
    """A table row from summed counts."""
    customers = int(cell.get("customers") or 0)
    orders = int(cell.get("orders") or 0)
    row = {"group": cell["grp"], "cohort": cell["cohort"], "customers": customers,
           "orders": orders,
           "average_order_value": pro_rata(int(cell.get("value") or 0), 1, orders)
           if orders else None}
    for days in WINDOWS:
        row[f"repeat_{days}_rate"] = ratio(int(cell.get(f"repeat_{days}") or 0),
                                           int(cell.get(f"eligible_{days}") or 0))
    for month in range(1, COHORT_MONTHS + 1):
        row[f"retention_m{month}"] = ratio(int(cell.get(f"m{month}") or 0), customers)
    return row


def _ltv(total: dict, margin: Decimal) -> dict:
    """LTV and its parts for one group (exact fractions; money rounded down once)."""
    orders, value = total["orders"], total["value"]
    eligible, repeat = total["eligible_365"], total["repeat_365"]
    if not orders or not eligible:
        return {"average_order_value": pro_rata(value, 1, orders) if orders else None,
                "purchases_per_year": None, "years_retained": None, "ltv": None,
                "customers_observed_a_year": eligible}
    aov = pro_rata(value, 1, orders)
    per_year = Fraction(total["year_one_orders"], eligible)
    r = Fraction(repeat, eligible)
    years = min(Fraction(MAX_YEARS), 1 / (1 - r)) if r < 1 else Fraction(MAX_YEARS)
    factor = Fraction(margin) * per_year * years
    return {"average_order_value": aov, "purchases_per_year": round(float(per_year), 4),
            "years_retained": round(float(years), 4), "repeat_365_rate": round(float(r), 4),
            "ltv": pro_rata(aov, factor.numerator, factor.denominator),
            "customers_observed_a_year": eligible}
