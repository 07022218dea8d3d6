"""The list of reports: importing this module registers every one of them."""

from __future__ import annotations

from warranty.reports import (  # noqa: F401  (importing them registers their reports)
    Context,
    Result,
    conversion,
    ledger,
    reconcile,
    report,
    retention,
)
from warranty.reports import revenue as rev


@report("finance")
def finance(ctx: Context) -> Result:
    """Plans sold, sales, refunds, earned and deferred revenue, claims, by month × category."""
    data = rev.finance(session=ctx.session, period=ctx.period, timezone=ctx.settings.timezone)
    return Result("finance", ctx.period, ctx.settings.currency, data["columns"], data["rows"],
                  money=set(data["money"]),
                  extra={"by_month": data["by_month"], "by_category": data["by_category"],
                         "total": data["total"], "adjustments": data["adjustments"]},
                  table_extra=[*data["by_month"], *data["by_category"], data["total"]])
