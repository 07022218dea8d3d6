"""The finance dashboard's figures: each a chart and the table of its numbers, in the page's
language, built from the reports' own results (the same numbers as ``/api/v1/reports``).

Nothing here computes a figure: it picks the reports' rows and fields, formats them (money
through warranty.core.money, rates as percentages) and draws them (warranty.reports.charts).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

from markupsafe import Markup

from warranty import reports
from warranty.core import i18n, money
from warranty.reports import charts


@dataclass
class Cell:
    """A table cell: its text and, for the figures tests and links name, an id."""

    text: str
    id: str | None = None


@dataclass
class Figure:
    """One chart with its title, an optional note and the table of its figures."""

    id: str
    title: str
    chart: Markup
    head: list[str]
    rows: list[list[Cell]]
    note: str | None = None


@dataclass
class Section:
    """A heading and its figures."""

    id: str
    title: str
    figures: list[Figure] = field(default_factory=list)
    intro: str | None = None


def percent(rate: float | None, places: int = 1) -> str:
    """0.1234 → 12.3% ("—" when there is no base)."""
    return "—" if rate is None else f"{rate * 100:.{places}f}%"


def _cells(*values: str | Cell) -> list[Cell]:
    """A row of cells from texts (or cells)."""
    return [v if isinstance(v, Cell) else Cell(str(v)) for v in values]


class Builder:
    """Builds the dashboard's sections for one language and currency."""

    def __init__(self, lang: str, currency: str):
        self.t = partial(i18n.t, lang)
        self.currency = currency

    def money(self, amount: int | None) -> str:
        """An amount in minor units as text."""
        return "—" if amount is None else money.format_amount(int(amount), self.currency)

    def points(self, difference: float | None) -> str:
        """A difference of two rates in percentage points, signed."""
        if difference is None:
            return "—"
        return self.t("reports.points", value=f"{difference * 100:+.2f}")

    def statistic(self, value: float | None, signed: bool = False) -> str:
        """A statistic in minor units (a difference of means, an interval's end)."""
        if value is None:
            return "—"
        return money.format_statistic(value, self.currency, signed=signed)

    def label(self, group: str, code: str) -> str:
        """A report's code (arm, placement, category, outcome) as a label."""
        key = f"reports.{group}.{code}"
        return self.t(key) if i18n.has(key) else code.replace("_", " ")

    # --- sections ------------------------------------------------------------------------

    def conversion(self, result: reports.Result) -> Section:
        """Conversion per arm, order value and revenue per visitor, and the differences with
        their 95% intervals."""
        t = self.t
        rows = {r["arm"]: r for r in result.rows}
        arms = [a for a in ("treatment", "holdout") if a in rows]
        tests = result.extra["tests"]
        conv, rpv = tests["conversion_rate"], tests["revenue_per_visitor"]
        per_arm = Figure(
            "fig-conversion", t("reports.conversion.per_arm"),
            charts.hbar_chart([(self.label("arm", a), rows[a]["conversion_rate"])
                               for a in arms], fmt=lambda v: percent(v, 2)),
            [t("reports.col.arm"), t("reports.col.visitors"), t("reports.col.converting"),
             t("reports.col.conversion_rate"), t("reports.col.orders"),
             t("reports.col.order_value"), t("reports.col.revenue_per_visitor")],
            [_cells(self.label("arm", a), f"{rows[a]['visitors']:,}",
                    f"{rows[a]['converting_visitors']:,}",
                    Cell(percent(rows[a]["conversion_rate"], 2), f"conv-rate-{a}"),
                    f"{rows[a]['orders']:,}",
                    Cell(self.money(rows[a]["average_order_value"]), f"aov-{a}"),
                    Cell(self.money(rows[a]["revenue_per_visitor"]), f"rpv-{a}"))
             for a in arms])
        lift = Figure(
            "fig-conversion-difference", t("reports.conversion.difference"),
            charts.interval_chart([(t("reports.conversion.rate_difference"),
                                    conv["difference"], conv["ci_low"], conv["ci_high"])],
                                  fmt=self.points, interval_label=t("reports.interval")),
            [t("reports.col.measure"), t("reports.col.difference"), t("reports.col.ci"),
             t("reports.col.relative_lift"), t("reports.col.p_value")],
            [_cells(t("reports.col.conversion_rate"),
                    Cell(self.points(conv["difference"]), "conv-diff"),
                    Cell(f"{self.points(conv['ci_low'])} – {self.points(conv['ci_high'])}",
                         "conv-ci"),
                    percent(conv["relative_lift"]) if conv["relative_lift"] is not None
                    else "—",
                    "—" if conv["p_value"] is None else f"{conv['p_value']:.4f}")],
            note=t("reports.conversion.how"))
        rpv_figure = Figure(
            "fig-rpv-difference", t("reports.conversion.rpv_difference"),
            charts.interval_chart([(t("reports.col.revenue_per_visitor"), rpv["difference"],
                                    rpv["ci_low"], rpv["ci_high"])],
                                  fmt=lambda v: self.statistic(v, signed=True),
                                  interval_label=t("reports.interval")),
            [t("reports.col.measure"), t("reports.col.difference"), t("reports.col.ci"),
             t("reports.col.relative_lift"), t("reports.col.p_value")],
            [_cells(t("reports.col.revenue_per_visitor"),
                    Cell(self.statistic(rpv["difference"], signed=True), "rpv-diff"),
                    Cell(f"{self.statistic(rpv['ci_low'], True)} – "
                         f"{self.statistic(rpv['ci_high'], True)}", "rpv-ci"),
                    percent(rpv["relative_lift"]) if rpv["relative_lift"] is not None
                    else "—",
                    "—" if rpv["p_value"] is None else f"{rpv['p_value']:.4f}")])
        return Section("conversion", t("reports.conversion.title"),
                       [per_arm, lift, rpv_figure], intro=t("reports.conversion.intro"))

    def attach(self, result: reports.Result) -> Section:
        """Attach rate by units and by revenue, per placement and per warranty category."""
        t = self.t
        rows = list(result.rows)
        overall = next((r for r in rows if r["dimension"] == "all"), None)
        figures = []
        for dimension in ("placement", "category"):
            mine = sorted((r for r in rows if r["dimension"] == dimension),
                          key=lambda r: -(r["attach_rate_units"] or 0))
            figures.append(Figure(
                f"fig-attach-{dimension}", t(f"reports.attach.by_{dimension}"),
                charts.hbar_chart([(self.label(dimension, r["key"]), None) for r in mine],
                                  series=[t("reports.attach.units"),
                                          t("reports.attach.revenue")],
                                  values=[[r["attach_rate_units"], r["attach_rate_revenue"]]
                                          for r in mine], fmt=percent),
                [t(f"reports.col.{dimension}"), t("reports.col.product_units"),
                 t("reports.col.plan_units"), t("reports.attach.units"),
                 t("reports.col.product_revenue"), t("reports.col.plan_revenue"),
                 t("reports.attach.revenue")],
                [_cells(self.label(dimension, r["key"]), f"{r['product_units']:,}",
                        f"{r['plan_units']:,}",
                        Cell(percent(r["attach_rate_units"]),
                             f"attach-{dimension}-{r['key']}"),
                        self.money(r["product_revenue"]), self.money(r["plan_revenue"]),
                        percent(r["attach_rate_revenue"])) for r in mine]))
        intro = t("reports.attach.intro")
        if overall:
            intro += " " + t("reports.attach.overall",
                             units=percent(overall["attach_rate_units"]),
                             revenue=percent(overall["attach_rate_revenue"]))
        return Section("attach", t("reports.attach.title"), figures, intro=intro)

    def retention(self, result: reports.Result) -> Section:
        """Repeat purchases, monthly cohort retention and LTV, with and without a plan."""
        t = self.t
        groups = ("with_plan", "without_plan")
        names = [self.label("group", g) for g in groups]
        rows = list(result.rows)
        totals = {r["group"]: r for r in rows if r["cohort"] == "all" and r["group"] in groups}
        windows = (90, 180, 365)
        repeat = Figure(
            "fig-repeat", t("reports.retention.repeat"),
            charts.bar_chart([t("reports.retention.days", days=d) for d in windows],
                             {name: [totals.get(g, {}).get(f"repeat_{d}_rate") for d in windows]
                              for g, name in zip(groups, names, strict=True)}, fmt=percent,
                             height=260),
            [t("reports.col.group"), t("reports.col.customers"),
             *[t("reports.retention.days", days=d) for d in windows]],
            [_cells(name, f"{totals[g]['customers']:,}",
                    *[Cell(percent(totals[g][f"repeat_{d}_rate"]), f"repeat-{d}-{g}")
                      for d in windows])
             for g, name in zip(groups, names, strict=True) if g in totals])
        months = list(range(1, 13))
        cohort_chart = charts.bar_chart(
            [t("reports.retention.month", month=m) for m in months],
            {name: [totals.get(g, {}).get(f"retention_m{m}") for m in months]
             for g, name in zip(groups, names, strict=True)}, fmt=percent)
        cohort_rows = [r for r in rows if r["group"] in groups]
        cohorts = Figure(
            "fig-cohorts", t("reports.retention.cohorts"), cohort_chart,
            [t("reports.col.group"), t("reports.col.cohort"), t("reports.col.customers"),
             *[t("reports.retention.month", month=m) for m in months]],
            [_cells(self.label("group", r["group"]),
                    t("reports.retention.all") if r["cohort"] == "all" else r["cohort"],
                    f"{r['customers']:,}",
                    *[Cell(percent(r[f"retention_m{m}"]),
                           f"cohort-{r['group']}-{r['cohort']}-m{m}") for m in months])
             for r in cohort_rows],
            note=t("reports.retention.cohorts_note"))
        ltv = result.extra["ltv"]
        ltv_figure = Figure(
            "fig-ltv", t("reports.retention.ltv"),
            charts.hbar_chart([(name, ltv[g]["ltv"]) for g, name in
                               zip(groups, names, strict=True)], fmt=self.money),
            [t("reports.col.group"), t("reports.col.order_value"),
             t("reports.col.purchases_per_year"), t("reports.col.years_retained"),
             t("reports.col.ltv")],
            [_cells(name, self.money(ltv[g]["average_order_value"]),
                    "—" if ltv[g]["purchases_per_year"] is None
                    else f"{ltv[g]['purchases_per_year']:.2f}",
                    "—" if ltv[g]["years_retained"] is None
                    else f"{ltv[g]['years_retained']:.2f}",
                    Cell(self.money(ltv[g]["ltv"]), f"ltv-{g}"))
             for g, name in zip(groups, names, strict=True)],
            note=t("reports.retention.ltv_note", margin=percent(
                float(result.extra["gross_margin"]), 0))
            + ("" if all(ltv[g]["ltv"] is not None for g in groups)
               else " " + t("reports.retention.ltv_needs_a_year")))
        return Section("retention", t("reports.retention.title"),
                       [repeat, cohorts, ltv_figure], intro=t("reports.retention.intro"))

    def nps(self, result: reports.Result) -> Section:
        """NPS overall and by claim outcome."""
        t = self.t
        rows = list(result.rows)
        overall = next(r for r in rows if r["status"] == "all")
        outcomes = [r for r in rows if r["status"] != "all"]
        points = lambda v: t("reports.nps.score", value=f"{v:+.1f}")  # noqa: E731

        def outcome(row: dict) -> str:
            # A repair can be paid or closed without payout: the status tells them apart.
            if row["outcome"] == row["status"]:
                return self.label("outcome", row["outcome"])
            return (f"{self.label('outcome', row['outcome'])} "
                    f"({self.label('status', row['status'])})")

        figure = Figure(
            "fig-nps", t("reports.nps.by_outcome"),
            charts.hbar_chart([(t("reports.nps.overall"), overall["nps"])]
                              + [(outcome(r), r["nps"]) for r in outcomes], fmt=points),
            [t("reports.col.outcome"), t("reports.col.answers"), t("reports.col.promoters"),
             t("reports.col.detractors"), t("reports.col.nps")],
            [_cells(t("reports.nps.overall"), f"{overall['answers']:,}",
                    f"{overall['promoters']:,}", f"{overall['detractors']:,}",
                    Cell("—" if overall["nps"] is None else points(overall["nps"]),
                         "nps-all"))]
            + [_cells(outcome(r), f"{r['answers']:,}",
                      f"{r['promoters']:,}", f"{r['detractors']:,}",
                      "—" if r["nps"] is None else points(r["nps"])) for r in outcomes])
        return Section("nps", t("reports.nps.title"), [figure], intro=t("reports.nps.intro"))

    def revenue(self, finance: dict) -> Section:
        """Sales, refunds, earned and deferred revenue by month; loss ratio and cancellation
        rate by month."""
        t = self.t
        by_month = finance["by_month"]
        labels = [r["month"] for r in by_month]
        flows = ("gross_sales", "refunds", "earned_revenue")
        sales = Figure(
            "fig-revenue", t("reports.revenue.flows"),
            charts.bar_chart(labels, {t(f"reports.col.{f}"): [r[f] for r in by_month]
                                      for f in flows}, fmt=self.money),
            [t("reports.col.month"), *[t(f"reports.col.{f}") for f in flows],
             t("reports.col.deferred_revenue")],
            [_cells(r["month"], *[self.money(r[f]) for f in flows],
                    self.money(r["deferred_revenue"])) for r in by_month])
        deferred = Figure(
            "fig-deferred", t("reports.revenue.deferred"),
            charts.bar_chart(labels, {t("reports.col.deferred_revenue"):
                                      [r["deferred_revenue"] for r in by_month]},
                             fmt=self.money, height=240),
            [t("reports.col.month"), t("reports.col.deferred_revenue")],
            [_cells(r["month"], self.money(r["deferred_revenue"])) for r in by_month])
        rates = Figure(
            "fig-rates", t("reports.revenue.rates"),
            charts.bar_chart(labels, {t("reports.col.loss_ratio"):
                                      [r["loss_ratio"] for r in by_month],
                                      t("reports.col.cancellation_rate"):
                                      [r["cancellation_rate"] for r in by_month]},
                             fmt=percent, height=260),
            [t("reports.col.month"), t("reports.col.claims_paid"),
             t("reports.col.loss_ratio"), t("reports.col.plans_sold"),
             t("reports.col.cancellations"), t("reports.col.cancellation_rate")],
            [_cells(r["month"], self.money(r["claims_paid"]), percent(r["loss_ratio"]),
                    f"{r['plans_sold']:,}", f"{r['cancellations']:,}",
                    percent(r["cancellation_rate"])) for r in by_month],
            note=t("reports.revenue.rates_note"))
        return Section("revenue", t("reports.revenue.title"), [sales, deferred, rates])


def build(lang: str, currency: str, results: dict[str, reports.Result]) -> list[Section]:
    """Every section of the dashboard from the reports' results."""
    b = Builder(lang, currency)
    return [b.revenue(results["finance"].extra), b.conversion(results["conversion"]),
            b.attach(results["attach"]), b.retention(results["retention"]),
            b.nps(results["nps"])]


