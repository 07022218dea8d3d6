"""Date arithmetic in SQL that reads the same on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement


class days_between(FunctionElement):  # noqa: N801 - reads as a SQL function
    """Whole days from the second date to the first (``a - b``), as an integer."""

    type = sa.Integer()
    inherit_cache = True
    name = "days_between"


@compiles(days_between)
def _days_between_pg(element, compiler, **kw):
    """PostgreSQL: date minus date is an integer number of days."""
    a, b = list(element.clauses)
    first, second = compiler.process(a, **kw), compiler.process(b, **kw)
    return f"(CAST({first} AS DATE) - CAST({second} AS DATE))"


@compiles(days_between, "sqlite")
def _days_between_sqlite(element, compiler, **kw):
    """SQLite: dates are ISO text; julianday differences are whole for whole dates."""
    a, b = list(element.clauses)
    return (f"CAST(julianday({compiler.process(a, **kw)}) - "
            f"julianday({compiler.process(b, **kw)}) AS INTEGER)")


class month_of(FunctionElement):  # noqa: N801
    """The ``YYYY-MM`` text of a date."""

    type = sa.String()
    inherit_cache = True
    name = "month_of"


@compiles(month_of)
def _month_of_pg(element, compiler, **kw):
    """PostgreSQL: to_char."""
    (a,) = list(element.clauses)
    return f"to_char({compiler.process(a, **kw)}, 'YYYY-MM')"


@compiles(month_of, "sqlite")
def _month_of_sqlite(element, compiler, **kw):
    """SQLite: strftime."""
    (a,) = list(element.clauses)
    return f"strftime('%Y-%m', {compiler.process(a, **kw)})"


def date_table(name: str, rows: list[tuple], *columns: tuple[str, sa.types.TypeEngine]):
    """A small literal table with typed columns (SELECT ... UNION ALL ...), for joins.

    SQLite has no ``(VALUES ...) AS t (cols)``; a union of one-row selects reads the same on
    both backends, and typed bind parameters give PostgreSQL real dates.
    """
    selects = [sa.select(*(sa.literal(value, typ).label(col)
                           for value, (col, typ) in zip(row, columns, strict=True)))
               for row in rows]
    return sa.union_all(*selects).subquery(name)


class month_index(FunctionElement):  # noqa: N801
    """``year × 12 + month`` of a date, to count whole months between dates."""

    type = sa.Integer()
    inherit_cache = True
    name = "month_index"


@compiles(month_index)
def _month_index_pg(element, compiler, **kw):
    """PostgreSQL: extract."""
    (a,) = list(element.clauses)
    text = compiler.process(a, **kw)
    return f"CAST(EXTRACT(YEAR FROM {text}) * 12 + EXTRACT(MONTH FROM {text}) AS INTEGER)"


@compiles(month_index, "sqlite")
def _month_index_sqlite(element, compiler, **kw):
    """SQLite: strftime."""
    (a,) = list(element.clauses)
    text = compiler.process(a, **kw)
    return (f"(CAST(strftime('%Y', {text}) AS INTEGER) * 12 + "
            f"CAST(strftime('%m', {text}) AS INTEGER))")


class local_date(FunctionElement):  # noqa: N801
    """The store-local calendar date of a UTC timestamp column."""

    type = sa.Date()
    inherit_cache = False  # the zone is part of the SQL text
    name = "local_date"

    def __init__(self, column, timezone: str):
        self.timezone = timezone
        super().__init__(column)


@compiles(local_date)
def _local_date_pg(element, compiler, **kw):
    """PostgreSQL: convert with the zone's rules (DST included)."""
    (a,) = list(element.clauses)
    zone = element.timezone.replace("'", "")
    return f"CAST(timezone('{zone}', {compiler.process(a, **kw)}) AS DATE)"


@compiles(local_date, "sqlite")
def _local_date_sqlite(element, compiler, **kw):
    """SQLite has no zones: shift by the zone's offset now (exact for zones without DST)."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    (a,) = list(element.clauses)
    offset = datetime.now(ZoneInfo(element.timezone)).utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset else 0
    return f"date({compiler.process(a, **kw)}, '{minutes:+d} minutes')"


def pro_rata_sql(amount, numerator, denominator):
    """SQL for :func:`warranty.core.money.pro_rata`: ``amount × numerator // denominator`` on
64-bit integers.

    Both backends divide non-negative integers by truncation, which is the floor here; the
    cast keeps ``price × days`` from overflowing PostgreSQL's 32-bit ``integer``.
    """
    return sa.cast(amount, sa.BigInteger) * numerator // denominator
