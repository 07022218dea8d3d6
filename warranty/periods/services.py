"""Closed months: finance closes a month, and nothing is booked in it afterwards.

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

from warranty.claims.models import Payout
from warranty.contracts.models import Contract
from warranty.core.dates import month_end, utcnow
from warranty.core.errors import Conflict, ValidationFailed
from warranty.core.settings import Settings
from warranty.orders.models import Order, Refund
from warranty.periods.models import ClosedMonth

# The advisory lock key of "the books" (any fixed 64-bit number; ASCII "wbooks").
LOCK_KEY = 0x77626F6F6B73
CLOSE_PATIENCE_SECONDS = 10.0


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
    the transaction ends, and the answer stays true until then.
    """
    if _postgres(session):
        session.execute(sa.text("SELECT pg_advisory_xact_lock_shared(:key)"),
                        {"key": LOCK_KEY})
    return first_open_day(session)


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


def _lock_exclusive(session: Session) -> None:
    """Take the books' lock exclusively, trying without queueing (see the module notes)."""
    if not _postgres(session):
        return
    deadline = time.monotonic() + CLOSE_PATIENCE_SECONDS
    while not session.execute(sa.text("SELECT pg_try_advisory_xact_lock(:key)"),
                              {"key": LOCK_KEY}).scalar():
        if time.monotonic() > deadline:
            raise Conflict("the books are busy with other changes; try the close again",
                           code="books_busy")
        time.sleep(0.02)


_c, _r, _p, _o = Contract.__table__, Refund.__table__, Payout.__table__, Order.__table__


def first_activity(session: Session, *, since: date | None, before: date | None) -> date | None:
    """The earliest day from ``since`` (None: the beginning) to before ``before`` (None: no
    end) on which the books have activity: a fact booked, or revenue still deferred."""
    def booked(column):
        conditions = []
        if since is not None:
            conditions.append(column >= since)
        if before is not None:
            conditions.append(column < before)
        return sa.select(sa.func.min(column)).where(*conditions).scalar_subquery()

    candidates = [booked(_c.c.booked_on), booked(_r.c.booked_on), booked(_p.c.booked_on),
                  booked(_o.c.booked_on)]
    days = [d for d in session.execute(sa.select(*candidates)).one() if d is not None]
    if since is not None and (before is None or since < before):
        # A contract booked before ``since`` whose revenue is still deferred on that day:
        # not refunded by then (in the books) and its term not over.
        deferring = session.execute(
            sa.select(sa.literal(1))
            .select_from(_c.outerjoin(_r, _r.c.contract_id == _c.c.id))
            .where(_c.c.booked_on < since, _c.c.term_end >= since,
                   sa.or_(_r.c.booked_on.is_(None), _r.c.booked_on > since))
            .limit(1)).first()
        if deferring is not None:
            days.append(since)
    return min(days) if days else None


def next_to_close(session: Session, today: date) -> date | None:
    """The month finance would close next: the first open month with activity, once ended."""
    first = first_activity(session, since=first_open_day(session), before=None)
    if first is None:
        return None
    month = first.replace(day=1)
    return month if month_end(month) < today else None


def month_figures(session: Session, month: date, timezone: str) -> dict:
    """The month's finance totals (all categories), as the finance report gives them."""
    from warranty.reports import revenue
    from warranty.reports.period import Period

    report = revenue.finance(session=session, period=Period(month, month_end(month)),
                             timezone=timezone)
    (totals,) = report["by_month"]
    return {k: v for k, v in totals.items() if k not in ("month", "category")}


def close_month(*, session: Session, settings: Settings, month: date, today: date,
                actor: str, note: str = "") -> ClosedMonth:
    """Close ``month`` (its first day) and every month before it (caller commits).

    Refuses a month that has not ended, one already closed, and a month with an earlier open
    month that had activity (close that one first). The month's finance totals are kept
    with the close, read under the exclusive lock: what every later report must show.
    """
    month = month.replace(day=1)
    if month_end(month) >= today:
        raise Conflict(f"{month_key(month)} has not ended yet (today is {today}); a month "
                       "can be closed from its next day on", code="month_not_over")
    _lock_exclusive(session)
    last = closed_through(session)
    if last is not None and month <= last:
        raise Conflict(f"{month_key(month)} is already closed (the books are closed through "
                       f"{month_key(last)})", code="already_closed",
                       details={"closed_through": month_key(last)})
    since = next_month(last) if last is not None else None
    earlier = first_activity(session, since=since, before=month)
    if earlier is not None:
        raise Conflict(f"{month_key(earlier)} has activity and is still open: close it first",
                       code="earlier_month_open", details={"open_month": month_key(earlier)})
    row = ClosedMonth(month=month, closed_at=utcnow(), closed_by=actor[:200],
                      note=note.strip()[:1000],
                      figures=month_figures(session, month, settings.timezone))
    session.add(row)
    session.flush()
    return row


def closed_months(session: Session) -> list[ClosedMonth]:
    """Every close, newest first."""
    return list(session.exec(select(ClosedMonth).order_by(ClosedMonth.month.desc())).all())


def state(session: Session, today: date) -> dict:
    """What finance sees: the closes, the first open day and the month to close next."""
    rows = closed_months(session)
    open_from = next_month(rows[0].month) if rows else None
    upcoming = next_to_close(session, today)
    return {"closed_through": month_key(rows[0].month) if rows else None,
            "first_open_day": open_from,
            "next_to_close": month_key(upcoming) if upcoming else None,
            "closed": [{"month": month_key(r.month), "closed_at": r.closed_at,
                        "closed_by": r.closed_by, "note": r.note, "figures": r.figures}
                       for r in rows]}
