"""Reports and exports (warranty.reports.registry): importing this package registers every
report, so :func:`run_report` and :func:`names` know them all."""

from __future__ import annotations

from warranty.reports import (  # noqa: F401  (importing them registers their reports)
    conversion,
    ledger,
    reconcile,
    retention,
    revenue,
)
from warranty.reports.period import parse_period
from warranty.reports.registry import REPORTS, Context, Result, names, report, run_report

__all__ = ["REPORTS", "Context", "Result", "names", "parse_period", "report", "run_report"]
