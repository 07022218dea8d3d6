"""Warranty revenue: sales, refunds, earned and deferred revenue, claims paid.

The rules (PRODUCT.md "Revenue"):
- gross sales are booked on the plan's sale date (``contract.plan_sold_on``, the store-local
  date of payment);
- earned revenue accrues in equal daily parts over the plan's span, from ``plan_sold_on``
  to ``term_end``, both included (``warranty.dates.plan_span``, the span the pro-rata refund
  uses too): earned by the end of date d is
  ``pro_rata(price, span_days_elapsed(plan_sold_on, term_end, d), plan_span(...))``;
- a cancellation (its Refund row, ``cancel_date``) takes the refund out of deferred revenue and
  earns the rest of it at once, so from the cancel date on a contract has earned
  ``price - refund`` and defers nothing;
- so at every date: gross - refunds = earned + deferred (cumulative).

A full refund inside the free-look window (or for a returned product) can exceed what is
still deferred; the excess then reverses revenue already earned on the cancel date (earned in
that month can be negative, and the journal books it as "Dr earned revenue / Cr cash").
Deferred revenue is never negative.

Everything is aggregated in the database (GROUP BY month and category); :class:`PlanHistory`
is the same rule in Python for tests and single contracts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session

from warranty.dates import plan_span, span_days_elapsed
from warranty.models import Contract, Payout, Refund, UTCDateTime
from warranty.money import pro_rata, pro_rata_sql
from warranty.reports.period import Period
from warranty.reports.sql import date_table, days_between, month_of

ALL = "all"
FLOWS = ("plans_sold", "gross_sales", "cancellations", "refunds", "earned_revenue",
         "payouts", "claims_paid")
MONEY = ("gross_sales", "refunds", "net_sales", "earned_revenue", "deferred_opening",
         "deferred_revenue", "claims_paid")


@dataclass(frozen=True)
class PlanHistory:
    """One contract's revenue facts: the rule above, in Python."""

    price: int
    sold_on: date
    term_end: date
    cancel_date: date | None = None
    refund: int = 0

    @property
    def period_days(self) -> int:
        """Days of the plan's span (sale date to term end), both ends included."""
        return plan_span(self.sold_on, self.term_end)

    def cancelled_by(self, day: date) -> bool:
        """True once the cancel date has come."""
        return self.cancel_date is not None and day >= self.cancel_date

    def sold_by(self, day: date) -> int:
        """Gross sales booked by the end of ``day``."""
        return self.price if day >= self.sold_on else 0

    def refunded_by(self, day: date) -> int:
        """Refunds booked by the end of ``day``."""
        return self.refund if self.cancelled_by(day) else 0

    def earned_by(self, day: date) -> int:
        """Revenue earned by the end of ``day``."""
        if self.cancelled_by(day):
            return self.price - self.refund
        elapsed = span_days_elapsed(self.sold_on, self.term_end, day)
        return pro_rata(self.price, elapsed, self.period_days)

    def deferred_at(self, day: date) -> int:
        """Deferred revenue at the end of ``day``."""
        return self.sold_by(day) - self.refunded_by(day) - self.earned_by(day)


# --- SQL ----------------------------------------------------------------------------------

_c = Contract.__table__
_r = Refund.__table__
_p = Payout.__table__


def _earned_sql(day):
    """SQL: a contract's earned revenue by the end of ``day`` (needs the refund outer join).

    The same numbers as :meth:`PlanHistory.earned_by`: ``plan_span`` and ``span_days_elapsed``
    of warranty.dates written as SQL.
    """
    period = days_between(_c.c.term_end, _c.c.plan_sold_on) + 1
    elapsed = days_between(day, _c.c.plan_sold_on) + 1
    clamped = sa.case((elapsed <= 0, 0), (elapsed > period, period), else_=elapsed)
    return sa.case((sa.and_(_r.c.cancel_date.is_not(None), day >= _r.c.cancel_date),
                    _c.c.price - _r.c.amount),
                   else_=pro_rata_sql(_c.c.price, clamped, period))


def _deferred_sql(day):
    """SQL: a contract's deferred revenue at the end of ``day``."""
    return sa.case((_c.c.plan_sold_on > day, 0),
                   (sa.and_(_r.c.cancel_date.is_not(None), day >= _r.c.cancel_date), 0),
                   else_=_c.c.price - _earned_sql(day))


EPOCH = date(1970, 1, 1)  # dates become whole day numbers from here in the accrual grid


def _boundaries(period: Period) -> list[tuple[str, date]]:
    """The day before the period (the opening balance), then each month's last day."""
    return [("opening", period.start - timedelta(days=1)),
            *((m.key, m.last) for m in period.months())]


def _accrual_grid(session: Session, period: Period) -> dict[tuple[str, str], dict]:
    """Earned revenue per month and category, and the deferred balance at each month end.

    A contract's earned revenue E(d) (:meth:`PlanHistory.earned_by`) is evaluated once per
    boundary b_i (the opening day, then each month end) for the boundaries it is live at:
    sold by b_i, and its last change (cancellation or term end, after which E is constant)
    after b_(i-1). Per boundary and category the database sums

      T = Σ E(b_i),  S = Σ price,  C = Σ refund of those cancelled by b_i,
      X = Σ E after the last change (price − refund) of those whose last change is by b_i,

    and then month i earned T_i − T_(i−1) + X_(i−1) (a contract not live at b_i any more kept
    E(b_(i−1)); one sold after b_(i−1) had earned 0 by then), with deferred S_i − T_i − C_i
    at its end. Days are whole numbers from EPOCH, computed once per contract, and the
    contracts (with their refunds) are read once into a narrow table: the join with the
    boundaries then costs little per (contract, boundary) pair.
    """
    bounds = _boundaries(period)
    days = [(b - EPOCH).days for _, b in bounds]
    table = date_table("bounds", [(i, day, days[i - 1] if i else day - 1)
                                  for i, day in enumerate(days)],
                       ("i", sa.Integer()), ("day", sa.Integer()), ("prev", sa.Integer()))
    epoch = sa.literal(EPOCH, sa.Date())
    sold = days_between(_c.c.plan_sold_on, epoch)
    end = days_between(_c.c.term_end, epoch)
    cancel = days_between(_r.c.cancel_date, epoch)
    base = (sa.select(_c.c.warranty_category.label("category"), _c.c.price,
                      sold.label("sold"), end.label("end"), (end - sold + 1).label("span"),
                      cancel.label("cancel"), _r.c.amount.label("refund"),
                      sa.func.coalesce(cancel, end).label("last_change"))
            .select_from(_c.outerjoin(_r, _r.c.contract_id == _c.c.id))
            .where(_c.c.plan_sold_on <= period.end,
                   sa.func.coalesce(_r.c.cancel_date, _c.c.term_end) >= bounds[0][1])
            .cte("accruing").prefix_with("MATERIALIZED"))
    cancelled = base.c.cancel <= table.c.day
    earned = sa.case((cancelled, base.c.price - base.c.refund),
                     (table.c.day >= base.c.end, base.c.price),
                     else_=pro_rata_sql(base.c.price, table.c.day - base.c.sold + 1,
                                        base.c.span))
    stmt = (sa.select(table.c.i, base.c.category, sa.func.sum(earned),
                      sa.func.sum(base.c.price),
                      sa.func.sum(sa.case((cancelled, base.c.refund), else_=0)),
                      sa.func.sum(sa.case((base.c.last_change <= table.c.day,
                                           base.c.price - sa.func.coalesce(base.c.refund, 0)),
                                          else_=0)))
            .select_from(base.join(table, sa.and_(base.c.sold <= table.c.day,
                                                  base.c.last_change > table.c.prev)))
            .group_by(table.c.i, base.c.category))
    sums = {(i, category): tuple(int(v or 0) for v in values)
            for i, category, *values in session.execute(stmt)}
    grid: dict[tuple[str, str], dict] = {}
    for (i, category), (total, prices, refunds, _) in sums.items():
        cell = grid[(bounds[i][0], category)] = {"deferred_revenue": prices - total - refunds}
        if i:
            before, _, _, settled = sums.get((i - 1, category), (0, 0, 0, 0))
            cell["earned_revenue"] = total - before + settled
    return grid


def _sales_grid(session: Session, period: Period) -> list[tuple]:
    """Plans sold and gross sales per month and category (by plan sale date)."""
    month = month_of(_c.c.plan_sold_on)
    stmt = (sa.select(month, _c.c.warranty_category, sa.func.count(), sa.func.sum(_c.c.price))
            .where(_c.c.plan_sold_on.between(period.start, period.end))
            .group_by(month, _c.c.warranty_category))
    return [(m, cat, {"plans_sold": n, "gross_sales": int(total or 0)})
            for m, cat, n, total in session.execute(stmt)]


def _refund_grid(session: Session, period: Period) -> list[tuple]:
    """Cancellations and refunds per month and category (by cancel date)."""
    month = month_of(_r.c.cancel_date)
    stmt = (sa.select(month, _c.c.warranty_category, sa.func.count(), sa.func.sum(_r.c.amount))
            .select_from(_r.join(_c, _c.c.id == _r.c.contract_id))
            .where(_r.c.cancel_date.between(period.start, period.end))
            .group_by(month, _c.c.warranty_category))
    return [(m, cat, {"cancellations": n, "refunds": int(total or 0)})
            for m, cat, n, total in session.execute(stmt)]


def local_day_bounds(day: date, timezone: str) -> datetime:
    """The UTC instant at which ``day`` starts in the store's time zone."""
    return datetime.combine(day, time(), tzinfo=ZoneInfo(timezone)).astimezone(UTC)


def period_bounds(period: Period, timezone: str) -> tuple[datetime, datetime]:
    """The period as UTC instants: store-local midnight of its first day to after its last."""
    return (local_day_bounds(period.start, timezone),
            local_day_bounds(period.end + timedelta(days=1), timezone))


def _claims_grid(session: Session, period: Period, timezone: str) -> list[tuple]:
    """Claims paid per month and category, by the payout's store-local date.

    Months are turned into UTC instants here, so both backends compare plain timestamps
    (SQLite knows no time zones).
    """
    bounds = [(m.key, local_day_bounds(m.first, timezone),
               local_day_bounds(m.last + timedelta(days=1), timezone))
              for m in period.months()]
    months = date_table("payout_months", bounds, ("key", sa.String()), ("lo", UTCDateTime()),
                        ("hi", UTCDateTime()))
    stmt = (sa.select(months.c.key, _c.c.warranty_category, sa.func.count(),
                      sa.func.sum(_p.c.amount))
            .select_from(_p.join(_c, _c.c.id == _p.c.contract_id))
            .join(months, sa.and_(_p.c.created_at >= months.c.lo, _p.c.created_at < months.c.hi))
            .group_by(months.c.key, _c.c.warranty_category))
    return [(m, cat, {"claims_paid": int(total or 0), "payouts": n})
            for m, cat, n, total in session.execute(stmt)]


def ratio(numerator: int, denominator: int) -> float | None:
    """A rate rounded to 4 places, or None when the base is not positive."""
    return round(numerator / denominator, 4) if denominator > 0 else None


def _finish(row: dict) -> dict:
    """Derived figures of one row."""
    for name in FLOWS:
        row.setdefault(name, 0)
    row.setdefault("deferred_opening", 0)
    row.setdefault("deferred_revenue", 0)
    row["net_sales"] = row["gross_sales"] - row["refunds"]
    row["loss_ratio"] = ratio(row["claims_paid"], row["earned_revenue"])
    row["cancellation_rate"] = ratio(row["cancellations"], row["plans_sold"])
    return row


COLUMNS = ("month", "category", "plans_sold", "gross_sales", "cancellations", "refunds",
           "net_sales", "earned_revenue", "deferred_opening", "deferred_revenue", "payouts",
           "claims_paid", "loss_ratio", "cancellation_rate")


def finance(*, session: Session, period: Period, timezone: str) -> dict:
    """The finance report: rows per month × category, per month, per category, and total.

    Flows (sales, refunds, earned, claims) add up across months and categories; the deferred
    balance is the one at the end of each month (and of the period for category totals), with
    the opening balance the day before.
    """
    months = [m.key for m in period.months()]
    accrual = _accrual_grid(session, period)
    cells: dict[tuple[str, str], dict] = {}
    for (key, category), values in accrual.items():
        if key != "opening":
            cells.setdefault((key, category), {}).update(values)
    for grid in (_sales_grid(session, period), _refund_grid(session, period),
                 _claims_grid(session, period, timezone)):
        for key, category, values in grid:
            cell = cells.setdefault((key, category), {})
            for name, value in values.items():
                cell[name] = cell.get(name, 0) + value
    categories = sorted({cat for _, cat in cells} | {cat for _, cat in accrual})
    # Opening balance of each month = closing balance of the month before.
    for cat in categories:
        balance = accrual.get(("opening", cat), {}).get("deferred_revenue", 0)
        for key in months:
            cell = cells.get((key, cat))
            if cell is None:
                if not balance:
                    continue
                cell = cells[(key, cat)] = {}
            cell["deferred_opening"] = balance
            balance = cell.get("deferred_revenue", 0)
    detail = [_finish({"month": key, "category": cat, **cells[(key, cat)]})
              for key in months for cat in categories if (key, cat) in cells]

    def total(rows: list[dict], month: str, category: str, opening: int, closing: int) -> dict:
        out = {"month": month, "category": category}
        for name in FLOWS:
            out[name] = sum(r[name] for r in rows)
        out["deferred_opening"], out["deferred_revenue"] = opening, closing
        return _finish(out)

    by_month = []
    for key in months:
        rows = [r for r in detail if r["month"] == key]
        by_month.append(total(rows, key, ALL, sum(r["deferred_opening"] for r in rows),
                              sum(r["deferred_revenue"] for r in rows)))
    by_category = []
    for cat in categories:
        rows = [r for r in detail if r["category"] == cat]
        opening = accrual.get(("opening", cat), {}).get("deferred_revenue", 0)
        closing = cells.get((months[-1], cat), {}).get("deferred_revenue", 0)
        by_category.append(total(rows, ALL, cat, opening, closing))
    grand = total(detail, ALL, ALL, sum(r["deferred_opening"] for r in by_category),
                  sum(r["deferred_revenue"] for r in by_category))
    return {"columns": list(COLUMNS), "money": list(MONEY), "rows": detail,
            "by_month": by_month, "by_category": by_category, "total": grand}
