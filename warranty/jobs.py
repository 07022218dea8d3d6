"""Stored jobs (mail, outbound webhooks, refunds, Stripe events): claimed safely, retried
with backoff.

Every job row has ``attempts`` and ``next_attempt_at``, and is pending while ``status`` is
``pending`` (Stripe events: while ``processed_at`` is unset). A worker *claims* due rows
by pushing ``next_attempt_at`` forward by a lease and counting the attempt, in one short
transaction, before it does the slow part (SMTP, HTTP, Stripe) outside any transaction. On
PostgreSQL the claim selects with ``FOR UPDATE SKIP LOCKED`` so concurrent workers take
different rows without waiting; on SQLite the ``BEGIN IMMEDIATE`` write lock (warranty.db)
serialises claims. Either way a row is worked on by one worker at a time, and a worker that
dies mid-job leaves the row to be claimed again when its lease runs out.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TypeVar

import sqlalchemy as sa
from sqlmodel import Session, SQLModel, select

from warranty.dates import utcnow
from warranty.db import session_scope
from warranty.settings import Settings

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
              pending: sa.ColumnElement | None = None) -> sa.Select:
    """Ids of due, pending rows of ``model``, longest due first, locked (skipping locked ones).

    ``pending`` says which rows still want work (default: ``status = 'pending'``).
    """
    table = model.__table__
    when = table.c.next_attempt_at
    due = sa.or_(when.is_(None), when <= now) if when.nullable else when <= now
    if pending is None:
        pending = table.c.status == "pending"
    return (select(table.c.id).where(pending, due).order_by(when, table.c.id)
            .limit(max(limit, 0)).with_for_update(skip_locked=True))


def claim(*, settings: Settings, model: type[SQLModel], limit: int, lease_seconds: float,
          only_id: int | str | None = None, pending: sa.ColumnElement | None = None) -> list:
    """Claim up to ``limit`` due, pending rows of ``model`` (see ``due_query``); returns ids.

    ``only_id`` claims that one row if it is due (used to run a job right after it was
    stored, racing safely with the workers).
    """
    now = utcnow()
    table = model.__table__
    query = due_query(model, now=now, limit=limit, pending=pending)
    if only_id is not None:
        query = query.where(table.c.id == only_id)
    with session_scope(settings.database_url) as session:
        ids = list(session.exec(query).all()) if limit > 0 else []
        if ids:
            session.exec(sa.update(table).where(table.c.id.in_(ids)).values(
                next_attempt_at=now + timedelta(seconds=lease_seconds),
                attempts=table.c.attempts + 1))
    return ids


def retry_later(row, error: str, settings: Settings, max_attempts: int | None = None) -> None:
    """Record a failed attempt: back off, or mark the row dead after ``max_attempts``."""
    row.last_error = error[:2000]
    if max_attempts is not None and row.attempts >= max_attempts:
        row.status = "dead"
    else:
        row.next_attempt_at = utcnow() + timedelta(seconds=backoff_seconds(row.attempts,
                                                                            settings))


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
