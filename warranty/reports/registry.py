"""The registry of reports: what a report gets (:class:`Context`), what it gives
(:class:`Result`, which JSON, CSV and XLSX can write), and :func:`run_report` by name.

A report is a function ``(ctx) -> Result``, registered under its name in :data:`REPORTS` by
:func:`report`; importing :mod:`warranty.reports` imports every module that registers one.
Small reports are computed at once with SQL aggregation; ledger exports give a generator of
rows that reads the database through a streaming cursor of its own, so a million rows go out
in constant memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlmodel import Session

from warranty.core.errors import NotFound
from warranty.core.settings import Settings
from warranty.payments.client import StripeClient
from warranty.reports.period import Period


@dataclass
class Context:
    """What a report needs: a session for small queries, the engine for streams."""

    session: Session
    settings: Settings
    period: Period
    stripe_client: StripeClient | None = None  # the reconciliation report reads Stripe

    @property
    def engine(self) -> sa.Engine:
        """The engine behind the session (streams open their own connection on it)."""
        bind = self.session.get_bind()
        return bind if isinstance(bind, sa.Engine) else bind.engine


@dataclass
class Result:
    """A report's table (``rows``, one dict per row) and its other figures (``extra``)."""

    name: str
    period: Period
    currency: str
    columns: list[str]
    rows: Iterable[dict]
    money: set[str] = field(default_factory=set)  # columns in minor units of ``currency``
    extra: dict = field(default_factory=dict)  # JSON only: totals, tests, charts' data
    table_extra: list[dict] = field(default_factory=list)  # CSV/XLSX rows after ``rows``
    # The CSV rows (no header) as the database writes them (reports.csv_copy, PostgreSQL's
    # COPY), byte for byte what the CSV writer makes of ``rows``; None: written from ``rows``.
    csv_rows: Callable[[], Iterable[str]] | None = None

    def header(self) -> dict:
        """The JSON fields before the rows."""
        return {"report": self.name, **self.period.as_dict(), "currency": self.currency,
                "columns": self.columns}


ReportFn = Callable[[Context], Result]
REPORTS: dict[str, ReportFn] = {}


def report(name: str):
    """Register a report function under ``name``."""

    def decorate(fn: ReportFn) -> ReportFn:
        REPORTS[name] = fn
        return fn

    return decorate


def run_report(name: str, ctx: Context) -> Result:
    """Run the named report, or NotFound listing the names there are."""
    fn = REPORTS.get(name)
    if fn is None:
        raise NotFound(f"no report named {name!r}; reports: {', '.join(sorted(REPORTS))}",
                       code="unknown_report")
    _tune(ctx.session)
    return fn(ctx)


# PostgreSQL's defaults suit short transactions: 4 MB per sort or hash spills a year of
# orders grouped by visitor to disk, and the JIT, set off by row estimates of millions,
# spends longer compiling than the query runs. Set for the report's transaction only.
REPORT_SETTINGS = {"work_mem": "64MB", "jit": "off"}


def _tune(session: Session) -> None:
    """Settings for the aggregations to come, local to the session's transaction."""
    if session.get_bind().dialect.name == "postgresql":
        for name, value in REPORT_SETTINGS.items():
            session.execute(sa.text(f"SET LOCAL {name} = '{value}'"))


def names() -> list[str]:
    """Every report name."""
    return sorted(REPORTS)
