"""Closing a month: which month may close next, its frozen figures, the close itself, and the
state of the books (see warranty.periods.booking for booking and the books' lock)."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from sqlmodel import Session, select

from warranty.claims.models import Payout
from warranty.contracts.models import Contract
from warranty.core.dates import month_end, utcnow
from warranty.core.errors import Conflict
from warranty.core.settings import Settings
from warranty.db.engine import write_transaction
from warranty.orders.models import Order, Refund
from warranty.periods.booking import (
    closed_through,
    first_open_day,
    lock_exclusive,
    month_key,
    next_month,
)
from warranty.periods.models import ClosedMonth

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
    write_transaction(session)
    month = month.replace(day=1)
    if month_end(month) >= today:
        raise Conflict(f"{month_key(month)} has not ended yet (today is {today}); a month "
                       "can be closed from its next day on", code="month_not_over")
    lock_exclusive(session)
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
