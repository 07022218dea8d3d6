"""Stored jobs (mail, outbound webhooks, refunds, Stripe events): claimed safely one row at a
time, retried with backoff, given up on for a person when they can never succeed.

Every job row has ``attempts`` and ``next_attempt_at``, and is pending while ``status`` is
``pending`` (Stripe events: while ``processed_at`` is unset). A worker *claims* a due row
by pushing ``next_attempt_at`` forward by a lease and counting the attempt, in one short
transaction, right before it does the slow part (SMTP, HTTP, Stripe) outside any
transaction. On PostgreSQL the claim selects with ``FOR UPDATE SKIP LOCKED`` so concurrent
workers take different rows without waiting; on SQLite the ``BEGIN IMMEDIATE`` write lock
(warranty.db) serialises claims. Either way a row is worked on by one worker at a time, and
a worker that dies mid-job leaves the row to be claimed again when its lease runs out.

Leases are per row (``each_due``): a pass claims its next row only when it is ready to work
on it, so however slow the SMTP server, the store or Stripe is, no row waits in a worker's
hands while its lease runs out (a batch claimed at once would, and a second worker would
send its last rows again). A pass takes only rows that were due when it began, so a row it
failed and made due again at once (no backoff) waits for the next pass.

Each row's outcome is its own: one that fails is retried later with backoff (``retry_later``)
or, when it can never succeed, marked dead for a person with its reason (``give_up``); the
rest of the pass goes on either way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import TypeVar

import sqlalchemy as sa
from sqlmodel import Session, SQLModel, select

from warranty.core.dates import utcnow
from warranty.core.settings import Settings
from warranty.db.engine import session_scope

log = logging.getLogger(__name__)
T = TypeVar("T")
# What a database that is down, restarting or unreachable raises (and SQLite's busy lock).
DATABASE_UNAVAILABLE = (sa.exc.OperationalError, sa.exc.InterfaceError)


def backoff_seconds(attempts: int, settings: Settings) -> float:
    """Delay before the next try after ``attempts`` failures: base × 2^(n-1), capped."""
    if attempts < 1:
        return 0.0
    # The exponent is bounded so a long-failing row cannot overflow the float.
    return min(settings.retry_cap_seconds,
               settings.retry_base_seconds * 2 ** min(attempts - 1, 40))


def due_query(model: type[SQLModel], *, now: datetime, limit: int,
              pending: sa.ColumnElement | None = None, rows: bool = False) -> sa.Select:
    """Ids (``rows``: whole rows) of due, pending rows of ``model``, longest due first, locked
    (skipping locked ones).

    ``pending`` says which rows still want work (default: ``status = 'pending'``).
    """
    table = model.__table__
    when = table.c.next_attempt_at
    due = sa.or_(when.is_(None), when <= now) if when.nullable else when <= now
    if pending is None:
        pending = table.c.status == "pending"
    return (select(model if rows else table.c.id).where(pending, due)
            .order_by(when, table.c.id).limit(max(limit, 0))
            .with_for_update(skip_locked=True, key_share=True))


def claim_next(*, settings: Settings, model: type[SQLModel], lease_seconds: float,
               due_by: datetime | None = None, only_id: int | str | None = None,
               pending: sa.ColumnElement | None = None):
    """Claim the longest-due pending row of ``model`` (due by ``due_by``, default now): lease
    it for ``lease_seconds`` from now and count the attempt. Returns the row (detached, every
    column loaded) or None.

    ``only_id`` claims that one row if it is due (used to run a job right after it was
    stored, racing safely with the workers).
    """
    now = utcnow()
    query = due_query(model, now=due_by or now, limit=1, pending=pending, rows=True)
    if only_id is not None:
        query = query.where(model.__table__.c.id == only_id)
    with session_scope(settings.database_url) as session:
        row = session.exec(query).first()
        if row is None:
            return None
        row.next_attempt_at = now + timedelta(seconds=lease_seconds)
        row.attempts += 1
        session.add(row)
    return row


def each_due(*, settings: Settings, model: type[SQLModel], lease_seconds: float, limit: int,
             pending: sa.ColumnElement | None = None) -> Iterator:
    """Up to ``limit`` rows that were due when the pass began, each claimed only when the
    caller asks for it, so its lease starts when its work does."""
    began = utcnow()
    for _ in range(max(limit, 0)):
        row = claim_next(settings=settings, model=model, lease_seconds=lease_seconds,
                         due_by=began, pending=pending)
        if row is None:
            return
        yield row


def retry_later(row, error: str, settings: Settings, max_attempts: int | None = None) -> None:
    """Record a failed attempt: back off, or mark the row dead after ``max_attempts``."""
    row.last_error = error[:2000]
    if max_attempts is not None and row.attempts >= max_attempts:
        row.status = "dead"
    else:
        row.next_attempt_at = utcnow() + timedelta(seconds=backoff_seconds(row.attempts,
                                                                            settings))


def give_up(row, error: str) -> None:
    """Record a failure that no retry can mend (a mail that cannot be built, a recipient the
    server refuses for good): the row is dead, with its reason, for a person to see."""
    row.status, row.last_error = "dead", error[:2000]


def in_transaction(settings: Settings, work: Callable[[Session], T], *, patience: float) -> T:
    """Run ``work(session)`` in one transaction, waiting out a database that is unavailable.

    A job that did something outside the database (a mail sent, a webhook delivered, a
    refund made) must record it, or its row is claimed and the thing done again once its
    lease runs out. So while the database is down or restarting this tries again every
    half second, for up to ``patience`` seconds (keep it inside the row's lease). ``work``
    runs again from the start on each try, in a new session.
    """
    deadline = time.monotonic() + patience
    while True:
        try:
            with session_scope(settings.database_url) as session:
                return work(session)
        except DATABASE_UNAVAILABLE as exc:
            if time.monotonic() >= deadline:
                raise
            log.warning("database unavailable, trying again: %s", str(exc).splitlines()[0])
            time.sleep(0.5)


# --- for a person: what each outbox holds ------------------------------------------------
