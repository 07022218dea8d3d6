"""The date range of a report: validated ISO dates, split into calendar months."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from warranty.core.dates import month_end
from warranty.core.errors import ValidationFailed

MAX_DAYS = 366 * 20  # twenty years is more than any store's history


class InvalidPeriod(ValidationFailed):
    """A report range that is not two ISO dates in order."""

    code = "invalid_period"


@dataclass(frozen=True)
class Month:
    """One calendar month of a period, clipped to the period."""

    key: str  # YYYY-MM
    first: date
    last: date


@dataclass(frozen=True)
class Period:
    """Report dates, both included (store-local calendar dates)."""

    start: date
    end: date

    def months(self) -> list[Month]:
        """Calendar months touching the period, each clipped to it."""
        out, cursor = [], self.start.replace(day=1)
        while cursor <= self.end:
            last_day = month_end(cursor)
            out.append(Month(key=f"{cursor:%Y-%m}", first=max(cursor, self.start),
                             last=min(last_day, self.end)))
            cursor = last_day + timedelta(days=1)
        return out

    def as_dict(self) -> dict:
        """``{"from": ..., "to": ...}`` as ISO text."""
        return {"from": self.start.isoformat(), "to": self.end.isoformat()}


def _parse(text: str | date | None, name: str) -> date:
    """One ISO date, or a clear error naming the parameter."""
    if isinstance(text, date):
        return text
    if not text:
        raise InvalidPeriod(f"'{name}' is required: an ISO date such as 2026-01-31")
    try:
        return date.fromisoformat(str(text).strip())
    except ValueError:
        raise InvalidPeriod(f"'{name}' must be an ISO date such as 2026-01-31, "
                            f"not {str(text)[:40]!r}") from None


def parse_period(start: str | date | None, end: str | date | None) -> Period:
    """A Period from ``from``/``to`` text; refuses bad formats and reversed ranges."""
    first, last = _parse(start, "from"), _parse(end, "to")
    for name, day in (("from", first), ("to", last)):
        if not date(1970, 1, 2) <= day <= date(9998, 12, 31):
            raise InvalidPeriod(f"'{name}' must be between 1970-01-02 and 9998-12-31")
    if first > last:
        raise InvalidPeriod(f"'from' ({first}) is after 'to' ({last})")
    if (last - first).days > MAX_DAYS:
        raise InvalidPeriod("a report covers at most twenty years")
    return Period(first, last)
