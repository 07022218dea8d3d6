"""Conversion: the holdout experiment per arm, attach rates, and NPS by claim outcome.

Definitions (README "Reports and exports"):
- a visitor is an anonymous embed id with at least one event in the period (the embed sends
  an ``exposure`` event from both arms, so holdout visitors are counted too); the arm is the
  one the server assigned (a pure function of the id);
- a converting visitor has a paid order carrying their visitor id, purchased in the period;
- order value is the mean total of those orders; revenue per visitor is their total over all
  visitors of the arm (zeros included);
- events sent with a visitor id this service did not sign are refused and counted, not
  stored; checkouts with one are sold without attribution and counted
  (``refused_visitor_ids``: totals and per day);
- treatment − holdout differences come with 95% confidence intervals (normal approximation:
  unpooled standard error for the CI, a pooled two-proportion z-test for the conversion
  p-value, Welch's z for revenue per visitor), and the relative lift with a CI by the delta
  method on the log ratio;
- attach rate by units = plan units sold / product units sold, by revenue = plan revenue /
  product revenue, over paid orders of the period (post-purchase plans included), per
  placement of the plan, warranty category and price band of the product.
"""

from __future__ import annotations

import math

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from warranty.catalog.models import Product
from warranty.claims.models import Claim, NpsAnswer
from warranty.experiment import arms as experiment_arms
from warranty.experiment.arms import HOLDOUT, TREATMENT
from warranty.experiment.models import VisitorEvent
from warranty.orders.models import PURCHASE_STATUSES, Order, OrderLine
from warranty.pricing import rules as pricing_rules
from warranty.reports.registry import Context, Result, report
from warranty.reports.revenue import period_bounds, ratio

Z95 = 1.959963984540054
_o, _l, _v = Order.__table__, OrderLine.__table__, VisitorEvent.__table__


def _p_two_sided(z: float) -> float:
    """Two-sided p-value of a standard normal statistic."""
    return math.erfc(abs(z) / math.sqrt(2))


def compare_proportions(x1: int, n1: int, x2: int, n2: int) -> dict:
    """Arm 1 minus arm 2 of a rate: difference, its 95% CI, relative lift and its CI, p-value."""
    if not n1 or not n2:
        return {"difference": None, "ci_low": None, "ci_high": None, "relative_lift": None,
                "lift_ci_low": None, "lift_ci_high": None, "p_value": None}
    p1, p2 = x1 / n1, x2 / n2
    diff = p1 - p2
    se = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    pooled = (x1 + x2) / (n1 + n2)
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    p_value = _p_two_sided(diff / se0) if se0 > 0 else None
    out = {"difference": round(diff, 6), "ci_low": round(diff - Z95 * se, 6),
           "ci_high": round(diff + Z95 * se, 6), "p_value": _round(p_value),
           "relative_lift": None, "lift_ci_low": None, "lift_ci_high": None}
    if p1 > 0 and p2 > 0:
        log_ratio = math.log(p1 / p2)
        se_log = math.sqrt((1 - p1) / (n1 * p1) + (1 - p2) / (n2 * p2))
        out.update(relative_lift=round(p1 / p2 - 1, 6),
                   lift_ci_low=round(math.exp(log_ratio - Z95 * se_log) - 1, 6),
                   lift_ci_high=round(math.exp(log_ratio + Z95 * se_log) - 1, 6))
    return out


def compare_means(n1: int, s1: int, q1: int, n2: int, s2: int, q2: int) -> dict:
    """Arm 1 minus arm 2 of a mean from counts, sums and sums of squares (Welch, normal)."""
    if n1 < 2 or n2 < 2:
        return {"difference": None, "ci_low": None, "ci_high": None, "relative_lift": None,
                "p_value": None}
    m1, m2 = s1 / n1, s2 / n2
    v1 = max(0.0, (q1 - n1 * m1 * m1) / (n1 - 1))
    v2 = max(0.0, (q2 - n2 * m2 * m2) / (n2 - 1))
    se = math.sqrt(v1 / n1 + v2 / n2)
    diff = m1 - m2
    return {"difference": round(diff, 4), "ci_low": round(diff - Z95 * se, 4),
            "ci_high": round(diff + Z95 * se, 4),
            "relative_lift": round(m1 / m2 - 1, 6) if m2 else None,
            "p_value": _round(_p_two_sided(diff / se)) if se > 0 else None}


def _round(value: float | None) -> float | None:
    """Six places, keeping None."""
    return None if value is None else round(value, 6)


def arms(ctx: Context) -> dict[str, dict]:
    """Per arm: visitors, converting visitors, orders, revenue and its sum of squares."""
    start, end = period_bounds(ctx.period, ctx.settings.timezone)
    visitors = (sa.select(_v.c.visitor_id, sa.func.min(_v.c.arm).label("arm"))
                .where(_v.c.occurred_at >= start, _v.c.occurred_at < end)
                .group_by(_v.c.visitor_id).subquery("visitors"))
    spend = (sa.select(_o.c.visitor_id, sa.func.count().label("orders"),
                       sa.func.sum(_o.c.total_amount).label("revenue"))
             .where(_o.c.status.in_(PURCHASE_STATUSES), _o.c.visitor_id.is_not(None),
                    _o.c.purchase_date.between(ctx.period.start, ctx.period.end))
             .group_by(_o.c.visitor_id).subquery("spend"))
    revenue = sa.func.coalesce(spend.c.revenue, 0)
    stmt = (sa.select(visitors.c.arm, sa.func.count().label("visitors"),
                      sa.func.count(spend.c.visitor_id).label("converting"),
                      sa.func.coalesce(sa.func.sum(spend.c.orders), 0).label("orders"),
                      sa.func.coalesce(sa.func.sum(revenue), 0).label("revenue"),
                      sa.func.coalesce(sa.func.sum(revenue * revenue), 0).label("squares"))
            .select_from(visitors.outerjoin(spend, spend.c.visitor_id == visitors.c.visitor_id))
            .group_by(visitors.c.arm))
    found = {row.arm: dict(row._mapping) for row in ctx.session.execute(stmt)}
    return {arm: found.get(arm, {"arm": arm, "visitors": 0, "converting": 0, "orders": 0,
                                 "revenue": 0, "squares": 0}) for arm in (TREATMENT, HOLDOUT)}


@report("conversion")
def conversion(ctx: Context) -> Result:
    """Per arm: visitors, conversion, order value, revenue per visitor; lift with 95% CIs."""
    cells = arms(ctx)
    rows = []
    for arm in (TREATMENT, HOLDOUT):
        c = cells[arm]
        visitors, orders = int(c["visitors"]), int(c["orders"])
        rows.append({"arm": arm, "visitors": visitors, "converting_visitors": int(c["converting"]),
                     "conversion_rate": ratio(int(c["converting"]), visitors),
                     "orders": orders, "revenue": int(c["revenue"]),
                     "average_order_value": int(c["revenue"]) // orders if orders else None,
                     "revenue_per_visitor": int(c["revenue"]) // visitors if visitors else None})
    t, h = cells[TREATMENT], cells[HOLDOUT]
    tests = {
        "conversion_rate": compare_proportions(int(t["converting"]), int(t["visitors"]),
                                               int(h["converting"]), int(h["visitors"])),
        # Minor units per visitor (zeros included for visitors who bought nothing).
        "revenue_per_visitor": compare_means(int(t["visitors"]), int(t["revenue"]),
                                             int(t["squares"]), int(h["visitors"]),
                                             int(h["revenue"]), int(h["squares"])),
    }
    columns = ["arm", "visitors", "converting_visitors", "conversion_rate", "orders", "revenue",
               "average_order_value", "revenue_per_visitor"]
    # CSV/XLSX: the tests as rows under the arms (JSON has them whole in ``tests``).
    table_extra = [{"arm": f"treatment − holdout: {field}",
                    "conversion_rate": tests["conversion_rate"][field],
                    "revenue_per_visitor": tests["revenue_per_visitor"][field]}
                   for field in ("difference", "ci_low", "ci_high", "p_value")]
    refused = refused_visitor_ids(ctx)
    table_extra.append({"arm": "events refused (unsigned or foreign visitor ids)",
                        "visitors": refused["events"]})
    return Result("conversion", ctx.period, ctx.settings.currency, columns, rows,
                  money={"revenue", "average_order_value", "revenue_per_visitor"},
                  extra={"tests": tests, "confidence": 0.95, "refused_visitor_ids": refused},
                  table_extra=table_extra)


def refused_visitor_ids(ctx: Context) -> dict:
    """What was refused in the period for a visitor id this service did not sign: events
    (not stored, so not in the figures above) and checkouts (sold, but not attributed)."""
    by_day = experiment_arms.refused_counts(ctx.session, ctx.period.start, ctx.period.end)
    return {"events": sum(r["count"] for r in by_day if r["source"] == "events"),
            "checkouts": sum(r["count"] for r in by_day if r["source"] == "checkout"),
            "by_day": by_day}


def _band_label(rules: pricing_rules.RuleDocument, category: str | None, price: int | None) -> str:
    """The rule band a product price falls in, as ``min–max`` of its category."""
    cat = rules.categories.get(category) if rules and category else None
    band = next((b for b in cat.bands if b.contains(price)), None) \
        if cat and price is not None else None
    if band is None:
        return "no band"
    return f"{band.min}–{band.max}" if band.max is not None else f"{band.min}+"


def _price_slot(price, rules: pricing_rules.RuleDocument | None,
                dialect: str = "sqlite") -> tuple[sa.ColumnElement, list]:
    """SQL numbering the stretches between consecutive band limits of every category, and
    the lowest price of each stretch (None below the lowest limit).

    No limit falls inside a stretch, so every price in it is in the same band of each
    category as the stretch's lowest price: the database groups a year of lines into a few
    stretches instead of one row per distinct price.
    """
    limits = sorted({limit for cat in (rules.categories.values() if rules else ())
                     for band in cat.bands for limit in (band.min, band.max)
                     if limit is not None})
    if not limits:
        return sa.literal(0), [None]
    if dialect == "postgresql":
        # The number of limits at or below the price: a binary search per line, where the
        # CASE below tests every limit in turn.
        bucket = sa.func.width_bucket(price, postgresql.array(
            [sa.literal(limit, sa.BigInteger()) for limit in limits]), type_=sa.Integer())
        return sa.func.coalesce(bucket, 0), [None, *limits]
    slot = sa.case(*[(price >= limit, number) for number, limit
                     in reversed(list(enumerate(limits, start=1)))], else_=0)
    return slot, [None, *limits]


@report("attach")
def attach(ctx: Context) -> Result:
    """Attach rate by units and by revenue per placement, category and price band."""
    session, period = ctx.session, ctx.period
    version = pricing_rules.latest_version(session)
    rules = pricing_rules.get_version(session, version) if version else None
    paid = sa.and_(_o.c.status.in_(PURCHASE_STATUSES),
                   _o.c.purchase_date.between(period.start, period.end))
    catalog = Product.__table__
    dialect = session.get_bind().dialect.name
    slot, lowest = _price_slot(_l.c.unit_price, rules, dialect)
    products = (sa.select(_l.c.warranty_category, slot, catalog.c.store_category,
                          sa.func.sum(_l.c.quantity), sa.func.sum(_l.c.amount))
                .select_from(_l.join(_o, _o.c.id == _l.c.order_id).outerjoin(
                    catalog, catalog.c.sku == _l.c.sku))
                .where(paid, _l.c.kind == "product")
                .group_by(_l.c.warranty_category, slot, catalog.c.store_category))
    covered = _l.alias("covered")
    covered_slot, _ = _price_slot(covered.c.unit_price, rules, dialect)
    plans = (sa.select(_l.c.placement, _l.c.warranty_category, covered_slot,
                       catalog.c.store_category,
                       sa.func.sum(_l.c.quantity), sa.func.sum(_l.c.amount))
             .select_from(_l.join(_o, _o.c.id == _l.c.order_id)
                          .join(covered, covered.c.id == _l.c.covers_line_id)
                          .outerjoin(catalog, catalog.c.sku == covered.c.sku))
             .where(paid, _l.c.kind == "plan")
             .group_by(_l.c.placement, _l.c.warranty_category, covered_slot,
                       catalog.c.store_category))
    cells: dict[tuple[str, str], dict] = {}

    def cell(dimension: str, key: str) -> dict:
        return cells.setdefault((dimension, key), {"product_units": 0, "product_revenue": 0,
                                                   "plan_units": 0, "plan_revenue": 0})

    def category_of(line_category: str | None, store_category: str | None) -> str:
        # The category the line was sold under, else the catalog's category mapped now.
        if line_category:
            return line_category
        mapped = rules.warranty_category(store_category) if rules and store_category else None
        return mapped or "unmapped"

    for line_category, number, store_category, units, amount in session.execute(products):
        category = category_of(line_category, store_category)
        for key in (("all", "all"), ("category", category),
                    ("price_band", f"{category} {_band_label(rules, category, lowest[number])}")):
            target = cell(*key)
            target["product_units"] += int(units)
            target["product_revenue"] += int(amount)
    for placement, line_category, number, store_category, units, amount in session.execute(plans):
        category = category_of(line_category, store_category)
        for key in (("all", "all"), ("category", category),
                    ("price_band", f"{category} {_band_label(rules, category, lowest[number])}"),
                    ("placement", placement or "api")):
            target = cell(*key)
            target["plan_units"] += int(units)
            target["plan_revenue"] += int(amount)
    base = cell("all", "all")
    for (dimension, _), target in cells.items():  # per placement: over every product sold
        if dimension == "placement":
            target["product_units"] = base["product_units"]
            target["product_revenue"] = base["product_revenue"]
    rows = []
    for (dimension, key), c in sorted(cells.items()):
        rows.append({"dimension": dimension, "key": key, **c,
                     "attach_rate_units": ratio(c["plan_units"], c["product_units"]),
                     "attach_rate_revenue": ratio(c["plan_revenue"], c["product_revenue"])})
    columns = ["dimension", "key", "product_units", "plan_units", "attach_rate_units",
               "product_revenue", "plan_revenue", "attach_rate_revenue"]
    return Result("attach", period, ctx.settings.currency, columns, rows,
                  money={"product_revenue", "plan_revenue"})


@report("nps")
def nps(ctx: Context) -> Result:
    """NPS (promoters 9–10 minus detractors 0–6, in points) by claim outcome."""
    c, a = Claim.__table__, NpsAnswer.__table__
    start, end = period_bounds(ctx.period, ctx.settings.timezone)
    outcome = sa.func.coalesce(c.c.decision, c.c.status)
    stmt = (sa.select(c.c.status, outcome.label("outcome"), sa.func.count(),
                      sa.func.sum(sa.case((a.c.score >= 9, 1), else_=0)),
                      sa.func.sum(sa.case((a.c.score <= 6, 1), else_=0)))
            .select_from(a.join(c, c.c.id == a.c.claim_id))
            .where(a.c.created_at >= start, a.c.created_at < end)
            .group_by(c.c.status, outcome))
    rows, totals = [], [0, 0, 0]
    for status, out, answers, promoters, detractors in ctx.session.execute(stmt):
        answers, promoters, detractors = int(answers), int(promoters), int(detractors)
        totals = [totals[0] + answers, totals[1] + promoters, totals[2] + detractors]
        rows.append(_nps_row(status, out, answers, promoters, detractors))
    rows.append(_nps_row("all", "all", *totals))
    columns = ["status", "outcome", "answers", "promoters", "detractors", "nps"]
    return Result("nps", ctx.period, ctx.settings.currency, columns, rows)


def _nps_row(status: str, outcome: str, answers: int, promoters: int, detractors: int) -> dict:
    """One NPS row; the score is in points from −100 to 100."""
    score = round(100 * (promoters - detractors) / answers, 1) if answers else None
    return {"status": status, "outcome": outcome, "answers": answers, "promoters": promoters,
            "detractors": detractors, "nps": score}
