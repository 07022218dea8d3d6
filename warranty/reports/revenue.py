"""Warranty revenue: sales, refunds, earned and deferred revenue, claims paid.

The rules (docs/domain/revenue.md):
- gross sales are booked on the sale's booking date (``contract.booked_on``: the plan's sale
  date ``plan_sold_on``, the store-local date of payment, unless that month was already
  closed when the sale was recorded; then the first open day, see warranty.periods);
- earned revenue accrues in equal daily parts over the plan's span, from ``plan_sold_on``
  to ``term_end``, both included (``warranty.coverage.span.plan_span``, the span the pro-rata
  refund uses too): earned by the end of date d is
  ``pro_rata(price, span_days_elapsed(plan_sold_on, term_end, d), plan_span(...))``, and the
  books hold it from the sale's booking date on (a sale booked late brings the revenue of
  the closed days with it, on its booking date);
- a cancellation (its Refund row) takes the refund out of deferred revenue and earns the rest
  of it at once on the refund's booking date (``refund.booked_on``: the cancel date, or the
  first open day for a cancellation dated in a closed month), so from then on a contract
  has earned ``price - refund`` and defers nothing;
- claims paid are booked on the payout's booking date (the day it was paid);
- so at every date: gross - refunds = earned + deferred (cumulative), on the figures as
  reported, and a closed month's figures never move (nothing is booked in it any more).

A fact booked later than its effective date is an *adjustment*: ``adjustments`` lists those
booked in a period with the date they concern and their effect on earned revenue.

A full refund inside the free-look window (or for a returned product) can exceed what is
still deferred; the excess then reverses revenue already earned on the cancel date (earned in
that month can be negative, and the journal books it as "Dr earned revenue / Cr cash").
Deferred revenue is never negative.

Tax (docs/domain/tax.md): a plan's price includes its tax (``contract.tax``) and a refund's
amount the tax it gives back (``refund.tax``). The rule runs twice, on the net part
(``price − tax``, ``refund − refund tax``) and on the tax part: ``earned_revenue`` and
``deferred_revenue`` are net of tax, ``earned_tax`` and ``deferred_tax`` the tax that goes
with them, and the identity holds on each part separately (gross = net + tax).

Everything is aggregated in the database (GROUP BY month and category); :class:`PlanHistory`
is the same rule in Python for tests and single contracts.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session

from warranty.claims.models import Payout
from warranty.contracts.models import Contract
from warranty.core.dates import month_end
from warranty.core.money import pro_rata
from warranty.coverage.span import plan_span, span_days_elapsed
from warranty.db.sql import days_between, month_of, pro_rata_sql
from warranty.orders.models import Refund
from warranty.reports.period import Period
from warranty.reports.registry import Context, Result, report
from warranty.rollups.models import DeferredRollup

ALL = "all"
FLOWS = ("plans_sold", "gross_sales", "sales_tax", "cancellations", "refunds", "refunds_tax",
         "earned_revenue", "earned_tax", "payouts", "claims_paid")
MONEY = ("gross_sales", "sales_tax", "sales_net", "refunds", "refunds_tax", "refunds_net",
         "net_sales", "earned_revenue", "earned_tax", "deferred_opening",
         "deferred_opening_tax", "deferred_revenue", "deferred_tax", "claims_paid")
# The two parts the revenue rule runs on: (part, earned key, deferred key, opening key).
PARTS = (("net", "earned_revenue", "deferred_revenue", "deferred_opening"),
         ("tax", "earned_tax", "deferred_tax", "deferred_opening_tax"))


@dataclass(frozen=True)
class PlanHistory:
    """One contract's revenue facts: the rule above, in Python.

    ``booked_on`` and ``refund_booked_on`` default to the sale and cancel dates (nothing
    closed in between); later ones make the sale or the refund an adjustment.
    """

    price: int
    sold_on: date
    term_end: date
    cancel_date: date | None = None
    refund: int = 0
    booked_on: date | None = None
    refund_booked_on: date | None = None
    tax: int = 0  # the tax in price
    refund_tax: int = 0  # the tax in refund

    def part(self, which: str) -> PlanHistory:
        """The same history on one part of the money: ``net`` (price and refund less their
        tax) or ``tax`` (the tax alone); ``gross`` is the history itself."""
        if which == "gross":
            return self
        if which == "net":
            return replace(self, price=self.price - self.tax,
                           refund=self.refund - self.refund_tax, tax=0, refund_tax=0)
        return replace(self, price=self.tax, refund=self.refund_tax, tax=0, refund_tax=0)

    @property
    def period_days(self) -> int:
        """Days of the plan's span (sale date to term end), both ends included."""
        return plan_span(self.sold_on, self.term_end)

    @property
    def sale_booked_on(self) -> date:
        """The date the sale is booked on."""
        return self.booked_on or self.sold_on

    @property
    def cancel_booked_on(self) -> date | None:
        """The date the refund is booked on (None: not cancelled)."""
        if self.cancel_date is None:
            return None
        return self.refund_booked_on or self.cancel_date

    def cancelled_by(self, day: date) -> bool:
        """True once the refund is in the books."""
        booked = self.cancel_booked_on
        return booked is not None and day >= booked

    def sold_by(self, day: date) -> int:
        """Gross sales booked by the end of ``day``."""
        return self.price if day >= self.sale_booked_on else 0

    def refunded_by(self, day: date) -> int:
        """Refunds booked by the end of ``day``."""
        return self.refund if self.cancelled_by(day) else 0

    def accrued_by(self, day: date) -> int:
        """Revenue the daily accrual gives by the end of ``day``, ignoring any cancellation."""
        elapsed = span_days_elapsed(self.sold_on, self.term_end, day)
        return pro_rata(self.price, elapsed, self.period_days)

    def earned_by(self, day: date) -> int:
        """Revenue earned in the books by the end of ``day``."""
        if day < self.sale_booked_on:
            return 0
        if self.cancelled_by(day):
            return self.price - self.refund
        return self.accrued_by(day)

    def deferred_at(self, day: date) -> int:
        """Deferred revenue at the end of ``day``."""
        return self.sold_by(day) - self.refunded_by(day) - self.earned_by(day)


# --- SQL ----------------------------------------------------------------------------------

_c = Contract.__table__
_r = Refund.__table__
_p = Payout.__table__
_d = DeferredRollup.__table__


def _amounts(part: str = "gross"):
    """SQL: (a contract's price, its refund) on one part: gross, net of tax, or the tax."""
    if part == "net":
        return _c.c.price - _c.c.tax, _r.c.amount - _r.c.tax
    if part == "tax":
        return _c.c.tax, _r.c.tax
    return _c.c.price, _r.c.amount


def earned_sql(day, part: str = "gross"):
    """SQL: a contract's earned revenue in the books by the end of ``day`` (needs the refund
    outer join), on ``part`` of the money (gross, net or tax).

    The same numbers as :meth:`PlanHistory.earned_by`: ``plan_span`` and ``span_days_elapsed``
    of warranty.core.dates written as SQL.
    """
    price, refund = _amounts(part)
    period = days_between(_c.c.term_end, _c.c.plan_sold_on) + 1
    elapsed = days_between(day, _c.c.plan_sold_on) + 1
    clamped = sa.case((elapsed <= 0, 0), (elapsed > period, period), else_=elapsed)
    return sa.case((_c.c.booked_on > day, 0),
                   (sa.and_(_r.c.booked_on.is_not(None), day >= _r.c.booked_on),
                    price - refund),
                   else_=pro_rata_sql(price, clamped, period))


def deferred_sql(day, part: str = "gross"):
    """SQL: a contract's deferred revenue in the books at the end of ``day`` (on ``part``)."""
    price, _ = _amounts(part)
    return sa.case((_c.c.booked_on > day, 0),
                   (sa.and_(_r.c.booked_on.is_not(None), day >= _r.c.booked_on), 0),
                   else_=price - earned_sql(day, part))


def _boundaries(period: Period) -> list[tuple[str, date]]:
    """The day before the period (the opening balance), then each month's last day."""
    return [("opening", period.start - timedelta(days=1)),
            *((m.key, m.last) for m in period.months())]


def _windows(period: Period) -> list[tuple[str, date, date, bool]]:
    """Per boundary b_i (the opening day, then each month's last day in the period): its
    key, b_i, the day before its window (b_(i-1); for the opening, the day before it) and
    whether the rollup holds it: b_i is a calendar month end and its window the whole month
    (the opening: b_0 is a month end)."""
    out = []
    for i, (key, day) in enumerate(_boundaries(period)):
        prev = day - timedelta(days=1) if i == 0 else out[-1][1]
        whole = month_end(day) == day and (
            i == 0 or prev == day.replace(day=1) - timedelta(days=1))
        out.append((key, day, prev, whole))
    return out


def _from_rollup(session: Session, days: list[date]) -> dict[tuple[date, str], tuple]:
    """(net, tax, touching, at_end) per (month end, category) from the rollup
    (warranty.rollups.deferred): its rows summed, compacted or not."""
    if not days:
        return {}
    stmt = (sa.select(_d.c.month_end, _d.c.warranty_category, sa.func.sum(_d.c.net),
                      sa.func.sum(_d.c.tax), sa.func.sum(_d.c.touching),
                      sa.func.sum(_d.c.at_end))
            .where(_d.c.month_end.in_(days))
            .group_by(_d.c.month_end, _d.c.warranty_category))
    return {(day, category): tuple(int(v or 0) for v in values)
            for day, category, *values in session.execute(stmt)}


def _from_contracts(session: Session, windows: list[tuple[int, date, date]]
                    ) -> dict[tuple[int, str], tuple]:
    """(net, tax, contracts) per (window, category) read from the contracts, for windows
    the rollup does not hold (a period's ends that are no month end): the deferred balance
    at the window's last day b on each part, and the contracts booked by b whose last
    change is after the day before the window. One pass over the contracts per window (a
    period has at most three such windows)."""
    # After this a contract's books no longer change: the refund's booking, else the term's
    # end (or the sale's booking, for a sale booked after its term ended).
    settled_on = sa.func.coalesce(_r.c.booked_on, sa.case(
        (_c.c.booked_on > _c.c.term_end, _c.c.booked_on), else_=_c.c.term_end))
    out = {}
    for i, day, prev in windows:
        b = sa.literal(day, sa.Date())
        live = sa.and_(sa.or_(_r.c.booked_on.is_(None), _r.c.booked_on > b),
                       _c.c.term_end > b)
        span = days_between(_c.c.term_end, _c.c.plan_sold_on) + 1
        elapsed = days_between(b, _c.c.plan_sold_on) + 1

        net, tax = (sa.func.sum(sa.case((live, amount - pro_rata_sql(amount, elapsed, span)),
                                        else_=0))
                    for amount in (_c.c.price - _c.c.tax, _c.c.tax))
        stmt = (sa.select(_c.c.warranty_category, net, tax, sa.func.count())
                .select_from(_c.outerjoin(_r, _r.c.contract_id == _c.c.id))
                .where(_c.c.booked_on <= day, settled_on > prev)
                .group_by(_c.c.warranty_category))
        for category, *values in session.execute(stmt):
            out[(i, category)] = tuple(int(v or 0) for v in values)
    return out


def _accrual_grid(session: Session, period: Period, flows: dict[tuple[str, str], dict]
                  ) -> dict[tuple[str, str], dict]:
    """Earned revenue per month and category, and the deferred balance at each month end,
    on each part of the money (net of tax, and the tax): the cells of the months and
    categories that had a contract in the books, and the opening balance.

    The deferred balance D at a boundary (the opening day, then each month's last day) is
    the rollup's at a calendar month end (warranty.rollups.deferred) and read from the
    contracts on other days (the period's ends). Earned revenue follows from the identity
    every contract keeps (gross − refunds = earned + deferred): a month earned its sales less
    its refunds less the growth of the deferred balance, on each part; ``flows`` holds the
    month's sales and refunds (by booking date, as the report shows them).
    """
    windows = _windows(period)
    rolled = _from_rollup(session, [day for _, day, _, whole in windows if whole])
    read = _from_contracts(session, [(i, day, prev) for i, (_, day, prev, whole)
                                     in enumerate(windows) if not whole])
    balances: list[dict[str, tuple[int, int, int]]] = []
    for i, (_, day, _, whole) in enumerate(windows):
        here: dict[str, tuple[int, int, int]] = {}
        if whole:
            for (month_day, category), (net, tax, touching, at_end) in rolled.items():
                if month_day == day and (at_end if i == 0 else touching):
                    here[category] = (net, tax, at_end if i == 0 else touching)
        else:
            for (index, category), values in read.items():
                if index == i and values[2]:
                    here[category] = values
        balances.append(here)
    grid: dict[tuple[str, str], dict] = {}
    for i, (key, _, _, _) in enumerate(windows):
        for category, (net, tax, _) in balances[i].items():
            cell = grid[(key, category)] = {"deferred_revenue": net, "deferred_tax": tax}
            if not i:
                continue
            before = balances[i - 1].get(category, (0, 0, 0))
            flow = flows.get((key, category), {})
            sold_net = flow.get("gross_sales", 0) - flow.get("sales_tax", 0)
            back_net = flow.get("refunds", 0) - flow.get("refunds_tax", 0)
            cell["earned_revenue"] = sold_net - back_net - net + before[0]
            cell["earned_tax"] = (flow.get("sales_tax", 0) - flow.get("refunds_tax", 0)
                                  - tax + before[1])
    return grid


def _sales_grid(session: Session, period: Period) -> list[tuple]:
    """Plans sold and gross sales per month and category (by the sale's booking date)."""
    month = month_of(_c.c.booked_on)
    stmt = (sa.select(month, _c.c.warranty_category, sa.func.count(), sa.func.sum(_c.c.price),
                      sa.func.sum(_c.c.tax))
            .where(_c.c.booked_on.between(period.start, period.end))
            .group_by(month, _c.c.warranty_category))
    return [(m, cat, {"plans_sold": n, "gross_sales": int(total or 0),
                      "sales_tax": int(tax or 0)})
            for m, cat, n, total, tax in session.execute(stmt)]


def _refund_grid(session: Session, period: Period) -> list[tuple]:
    """Cancellations and refunds per month and category (by the refund's booking date)."""
    month = month_of(_r.c.booked_on)
    stmt = (sa.select(month, _c.c.warranty_category, sa.func.count(), sa.func.sum(_r.c.amount),
                      sa.func.sum(_r.c.tax))
            .select_from(_r.join(_c, _c.c.id == _r.c.contract_id))
            .where(_r.c.booked_on.between(period.start, period.end))
            .group_by(month, _c.c.warranty_category))
    return [(m, cat, {"cancellations": n, "refunds": int(total or 0),
                      "refunds_tax": int(tax or 0)})
            for m, cat, n, total, tax in session.execute(stmt)]


def local_day_bounds(day: date, timezone: str) -> datetime:
    """The UTC instant at which ``day`` starts in the store's time zone."""
    return datetime.combine(day, time(), tzinfo=ZoneInfo(timezone)).astimezone(UTC)


def period_bounds(period: Period, timezone: str) -> tuple[datetime, datetime]:
    """The period as UTC instants: store-local midnight of its first day to after its last."""
    return (local_day_bounds(period.start, timezone),
            local_day_bounds(period.end + timedelta(days=1), timezone))


def _claims_grid(session: Session, period: Period) -> list[tuple]:
    """Claims paid per month and category, by the payout's booking date (its store-local
    day)."""
    month = month_of(_p.c.booked_on)
    stmt = (sa.select(month, _c.c.warranty_category, sa.func.count(), sa.func.sum(_p.c.amount))
            .select_from(_p.join(_c, _c.c.id == _p.c.contract_id))
            .where(_p.c.booked_on.between(period.start, period.end))
            .group_by(month, _c.c.warranty_category))
    return [(m, cat, {"claims_paid": int(total or 0), "payouts": n})
            for m, cat, n, total in session.execute(stmt)]


ADJUSTMENT_FIELDS = ("booked_on", "effective_date", "type", "contract", "category", "amount",
                     "tax", "earned_revenue", "earned_tax")


def adjustments(session: Session, period: Period) -> list[dict]:
    """Facts booked in the period later than the date they concern (a month was closed).

    Each names its type (``sale`` or ``refund``), the date it is booked on, the date it
    concerns (``effective_date``: the plan's sale date, the cancellation date), its amount,
    and the earned revenue it moves onto its booking date: for a sale, what the days before
    it accrued; for a refund, the rest of the price earned at once (``price - refund``) less
    what the days before it had accrued (negative: revenue reversed). The booking day's own
    accrual is not part of it. ``tax`` is the tax in the amount; ``earned_revenue`` is net of
    tax and ``earned_tax`` the tax that moves with it (the rule on each part).
    """
    sales = session.execute(
        sa.select(_c.c.booked_on, _c.c.plan_sold_on, _c.c.public_id, _c.c.warranty_category,
                  _c.c.price, _c.c.term_end, _c.c.tax)
        .where(_c.c.booked_on.between(period.start, period.end),
               _c.c.booked_on > _c.c.plan_sold_on))
    refunds = session.execute(
        sa.select(_r.c.booked_on, _r.c.cancel_date, _c.c.public_id, _c.c.warranty_category,
                  _c.c.price, _c.c.term_end, _c.c.plan_sold_on, _r.c.amount, _c.c.tax,
                  _r.c.tax)
        .select_from(_r.join(_c, _c.c.id == _r.c.contract_id))
        .where(_r.c.booked_on.between(period.start, period.end),
               _r.c.booked_on > _r.c.cancel_date))
    out = []
    for booked, sold, contract, category, price, end, tax in sales:
        plan = PlanHistory(price=price, sold_on=sold, term_end=end, tax=tax)
        before = booked - timedelta(days=1)
        out.append({"booked_on": booked, "effective_date": sold, "type": "sale",
                    "contract": contract, "category": category, "amount": price, "tax": tax,
                    "earned_revenue": plan.part("net").accrued_by(before),
                    "earned_tax": plan.part("tax").accrued_by(before)})
    for booked, cancel, contract, category, price, end, sold, refund, tax, refund_tax in refunds:
        plan = PlanHistory(price=price, sold_on=sold, term_end=end, tax=tax, refund=refund,
                           refund_tax=refund_tax)
        before = booked - timedelta(days=1)
        moved = {f"earned_{key}": p.price - p.refund - p.accrued_by(before)
                 for key, p in (("revenue", plan.part("net")), ("tax", plan.part("tax")))}
        out.append({"booked_on": booked, "effective_date": cancel, "type": "refund",
                    "contract": contract, "category": category, "amount": refund,
                    "tax": refund_tax, **moved})
    return sorted(out, key=lambda a: (a["booked_on"], a["type"], a["contract"]))


def ratio(numerator: int, denominator: int) -> float | None:
    """A rate rounded to 4 places, or None when the base is not positive."""
    return round(numerator / denominator, 4) if denominator > 0 else None


def _finish(row: dict) -> dict:
    """Derived figures of one row."""
    for name in FLOWS:
        row.setdefault(name, 0)
    for _, _, deferred, opening in PARTS:
        row.setdefault(opening, 0)
        row.setdefault(deferred, 0)
    row["sales_net"] = row["gross_sales"] - row["sales_tax"]
    row["refunds_net"] = row["refunds"] - row["refunds_tax"]
    row["net_sales"] = row["gross_sales"] - row["refunds"]
    row["loss_ratio"] = ratio(row["claims_paid"], row["earned_revenue"])
    row["cancellation_rate"] = ratio(row["cancellations"], row["plans_sold"])
    return row


COLUMNS = ("month", "category", "plans_sold", "gross_sales", "sales_tax", "sales_net",
           "cancellations", "refunds", "refunds_tax", "refunds_net", "net_sales",
           "earned_revenue", "earned_tax", "deferred_opening", "deferred_opening_tax",
           "deferred_revenue", "deferred_tax", "payouts", "claims_paid", "loss_ratio",
           "cancellation_rate")


def finance(*, session: Session, period: Period, timezone: str) -> dict:
    """The finance report: rows per month × category, per month, per category, and total.

    Flows (sales, refunds, earned, claims) add up across months and categories; the deferred
    balance is the one at the end of each month (and of the period for category totals), with
    the opening balance the day before. Everything is by booking date (``timezone`` is kept
    for callers: payouts carry their store-local booking date). ``adjustments`` lists the
    facts booked in the period for dates in months closed before.
    """
    months = [m.key for m in period.months()]
    flows: dict[tuple[str, str], dict] = {}
    for grid in (_sales_grid(session, period), _refund_grid(session, period),
                 _claims_grid(session, period)):
        for key, category, values in grid:
            cell = flows.setdefault((key, category), {})
            for name, value in values.items():
                cell[name] = cell.get(name, 0) + value
    accrual = _accrual_grid(session, period, flows)
    cells: dict[tuple[str, str], dict] = {}
    for (key, category), values in accrual.items():
        if key != "opening":
            cells.setdefault((key, category), {}).update(values)
    for (key, category), values in flows.items():
        cells.setdefault((key, category), {}).update(values)
    categories = sorted({cat for _, cat in cells} | {cat for _, cat in accrual})
    # Opening balance of each month = closing balance of the month before.
    for cat in categories:
        balances = {deferred: accrual.get(("opening", cat), {}).get(deferred, 0)
                    for _, _, deferred, _ in PARTS}
        for key in months:
            cell = cells.get((key, cat))
            if cell is None:
                if not any(balances.values()):
                    continue
                cell = cells[(key, cat)] = {}
            for _, _, deferred, opening in PARTS:
                cell[opening] = balances[deferred]
                balances[deferred] = cell.get(deferred, 0)
    detail = [_finish({"month": key, "category": cat, **cells[(key, cat)]})
              for key in months for cat in categories if (key, cat) in cells]

    def total(rows: list[dict], month: str, category: str, balances: dict) -> dict:
        out = {"month": month, "category": category}
        for name in FLOWS:
            out[name] = sum(r[name] for r in rows)
        out.update(balances)
        return _finish(out)

    def summed(rows: list[dict]) -> dict:
        return {name: sum(r[name] for r in rows)
                for _, _, deferred, opening in PARTS for name in (opening, deferred)}

    by_month = []
    for key in months:
        rows = [r for r in detail if r["month"] == key]
        by_month.append(total(rows, key, ALL, summed(rows)))
    by_category = []
    for cat in categories:
        rows = [r for r in detail if r["category"] == cat]
        balances = {}
        for _, _, deferred, opening in PARTS:
            balances[opening] = accrual.get(("opening", cat), {}).get(deferred, 0)
            balances[deferred] = cells.get((months[-1], cat), {}).get(deferred, 0)
        by_category.append(total(rows, ALL, cat, balances))
    grand = total(detail, ALL, ALL, summed(by_category))
    return {"columns": list(COLUMNS), "money": list(MONEY), "rows": detail,
            "by_month": by_month, "by_category": by_category, "total": grand,
            "adjustments": adjustments(session, period)}


@report("finance")
def finance_report(ctx: Context) -> Result:
    """Plans sold, sales, refunds, earned and deferred revenue, claims, by month × category."""
    data = finance(session=ctx.session, period=ctx.period, timezone=ctx.settings.timezone)
    return Result("finance", ctx.period, ctx.settings.currency, data["columns"], data["rows"],
                  money=set(data["money"]),
                  extra={"by_month": data["by_month"], "by_category": data["by_category"],
                         "total": data["total"], "adjustments": data["adjustments"]},
                  table_extra=[*data["by_month"], *data["by_category"], data["total"]])
