"""Booking dates and the books' lock: nothing is booked in a closed month (closing one is
warranty.closing.months).

Every money fact carries the date the books show it on, ``booked_on``, fixed when its row
is written and never changed:

    booked_on = max(its effective date, first day of the first open month at that moment)

(a plan sale's effective date is its sale date, an order's its purchase date, a refund's its
cancellation date, a payout's the day it is paid). A fact whose effective date lies in a
closed month is therefore booked on the first open day: an *adjustment* that keeps its
effective date, and the reports (warranty.reports) aggregate by ``booked_on``. A closed
month's figures are a function of rows booked in it or before it, and no such row can be
written any more, so every report of it reads the same forever.

Closing and booking are serialised: a transaction that books a fact holds a shared lock on
the books (``hold``) from reading the first open day to its commit, and a close takes the
lock exclusively, so a fact is either committed before the close (and is in the closed
month's figures) or reads the new first open day (and is an adjustment), never half. On
PostgreSQL these are transaction-level advisory locks; the close only *tries* for its lock
(and retries for a while), so it never queues in front of writers and cannot deadlock with
their row locks. SQLite serialises writers already (BEGIN IMMEDIATE).

Months close in order: closing a month closes every earlier month too, which is only
allowed when those earlier open months had no activity (nothing booked in them, no contract
deferring revenue through them). Only a month that has ended can close. A closed month is
never reopened: a correction is an adjustment in the open month, which is what the books of
a closed period are for.
"""

from __future__ import annotations

import time
from datetime import date, timedelta

import sqlalchemy as sa
from sqlmodel import Session, select

from warranty.core.dates import month_end
from warranty.core.errors import Conflict, ValidationFailed
from warranty.db.engine import write_transaction
from warranty.periods.models import ClosedMonth

# The advisory lock key of "the books" (any fixed 64-bit number; ASCII "wbooks").
LOCK_KEY = 0x77626F6F6B73
CLOSE_PATIENCE_SECONDS = 10.0
# session.info: (the transaction that holds the books' shared lock, its first open day).
_HELD = "warranty.books_held"


class PeriodClosed(Conflict):
    """A change dated in a month finance has closed."""

    code = "period_closed"


def month_key(day: date) -> str:
    """``2026-01`` for any day of January 2026."""
    return f"{day:%Y-%m}"


def next_month(day: date) -> date:
    """The first day of the month after ``day``'s."""
    return month_end(day) + timedelta(days=1)


def parse_month(text: str) -> date:
    """The first day of a ``YYYY-MM`` month, or a clear error."""
    try:
        year, month = str(text).strip().split("-")
        first = date(int(year), int(month), 1)
    except ValueError:
        raise ValidationFailed(f"month must be YYYY-MM, such as 2026-01, not {str(text)[:20]!r}",
                               code="invalid_month") from None
    if not date(1970, 1, 1) <= first <= date(9998, 12, 1):
        raise ValidationFailed("month must be between 1970-01 and 9998-12", code="invalid_month")
    return first


def _postgres(session: Session) -> bool:
    """True on PostgreSQL (SQLite's writers are serialised without advisory locks)."""
    return session.get_bind().dialect.name == "postgresql"


def closed_through(session: Session) -> date | None:
    """The first day of the last closed month, or None when nothing is closed."""
    return session.exec(select(sa.func.max(ClosedMonth.month))).one()


def first_open_day(session: Session) -> date | None:
    """The first day of the first open month (None: no month was ever closed)."""
    last = closed_through(session)
    return next_month(last) if last is not None else None


def hold(session: Session) -> date | None:
    """Take the books' shared lock for this transaction; then the first open day.

    Call it before writing a money fact (``booking_date`` does): no month can close until
    the transaction ends, and the answer stays true until then. So it is read once per
    transaction: a later call in the same transaction (a paid order books the order, then
    its contracts) answers from the first, unless this transaction took the lock
    exclusively meanwhile (``lock_exclusive``: it may close a month itself).
    """
    write_transaction(session)
    held = session.info.get(_HELD)
    if held is not None and held[0] is session.get_transaction():
        return held[1]
    if _postgres(session):
        session.execute(sa.text("SELECT pg_advisory_xact_lock_shared(:key)"),
                        {"key": LOCK_KEY})
    open_from = first_open_day(session)
    session.info[_HELD] = (session.get_transaction(), open_from)
    return open_from


def booking_date(session: Session, effective: date) -> date:
    """The date a fact effective on ``effective`` is booked on, under the books' lock."""
    open_from = hold(session)
    return max(effective, open_from) if open_from is not None else effective


def check_open(session: Session, day: date, *, what: str) -> date | None:
    """Refuse ``day`` in a closed month (409 ``period_closed``); returns the first open day.

    Takes the shared lock, so the answer holds until the transaction ends.
    """
    open_from = hold(session)
    if open_from is not None and day < open_from:
        raise closed_error(day, open_from, what=what)
    return open_from


def closed_error(day: date, open_from: date, *, what: str) -> PeriodClosed:
    """The 409 for ``day``, which lies in a closed month."""
    return PeriodClosed(
        f"{what} {day} is in {month_key(day)}, a closed month (the books are closed through "
        f"{month_key(open_from - timedelta(days=1))}; the first open day is {open_from})",
        details={"closed_month": month_key(day), "first_open_day": open_from.isoformat()})


def lock_exclusive(session: Session) -> None:
    """Take the books' lock exclusively, trying without queueing (see the module notes)."""
    write_transaction(session)
    session.info.pop(_HELD, None)  # this transaction may close a month: read it again
    if not _postgres(session):
        return
    deadline = time.monotonic() + CLOSE_PATIENCE_SECONDS
    while not session.execute(sa.text("SELECT pg_try_advisory_xact_lock(:key)"),
                              {"key": LOCK_KEY}).scalar():
        if time.monotonic() > deadline:
            raise Conflict("the books are busy with other changes; try the close again",
                           code="books_busy")
        time.sleep(0.02)
