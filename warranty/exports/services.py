"""Background exports: start a job, let one worker claim and write it, show its progress, hand
out the file.

A finance user starts a job (a row, ``pending``). ``warranty worker`` claims the longest-due
one with the outbox's claim (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, SQLite's write lock):
status ``running``, the attempt counted, a lease (``next_attempt_at``) a couple of minutes
ahead. While it writes, every few thousand rows it records its progress and pushes the lease
forward in one conditional update that names its attempt (``WHERE attempts = :mine AND
status = 'running'``): a worker that stalled past its lease, whose job another worker then
claimed, finds its update matching nothing and stops without touching the file or the row. The
file is written under a temporary name and renamed when complete; the job is ``done`` only
by that same conditional update. A failure is retried with backoff; after
:data:`MAX_ATTEMPTS` (or at once when it can never succeed) the job is ``dead`` and put on the
attention queue for a person.

Rows are streamed from the database (the reports' own cursors) into the file: CSV row by row,
XLSX through openpyxl's write-only mode, so memory stays flat however many rows there are.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import Session, select

from warranty import reports
from warranty.attention import services as attention
from warranty.claims.models import Payout
from warranty.contracts.models import Contract
from warranty.core.dates import utcnow
from warranty.core.errors import NotFound, ValidationFailed
from warranty.core.settings import Settings
from warranty.db.engine import get_engine, session_scope, write_transaction
from warranty.db.outbox import backoff_seconds, due_query
from warranty.exports.models import ExportJob
from warranty.orders.models import PURCHASE_STATUSES, Order, Refund
from warranty.reports import export as writers
from warranty.reports.period import Period

log = logging.getLogger(__name__)

# The row-per-record exports of the whole store (the other reports are small: the dashboard's
# links serve them at once).
REPORTS = ("orders", "contracts", "movements")
FORMATS = ("csv", "xlsx")
MAX_ATTEMPTS = 3
LEASE_SECONDS = 120.0  # a claim's lease; progress pushes it forward long before it ends
PROGRESS_ROWS = 5000  # record progress (and renew the lease) every this many rows...
PROGRESS_SECONDS = 2.0  # ...or this often, whichever comes first
ACTIVE = ("pending", "running")
_j = ExportJob.__table__


class LostClaim(Exception):
    """This worker's claim on a job is no longer the job's current one (its lease ran out and
    another worker claimed the job, or a person changed it): stop, write nothing more."""


def whole_store(session: Session, today: date) -> Period:
    """From the first booked sale, order or payout to today: every record the store has."""
    firsts = [session.execute(sa.select(sa.func.min(table.c.booked_on))).scalar()
              for table in (Order.__table__, Contract.__table__, Payout.__table__)]
    dates = [d if isinstance(d, date) else date.fromisoformat(d) for d in firsts if d]
    return Period(min([*dates, today]), today)


def start_export(*, session: Session, report: str, fmt: str, period: Period,
                 requested_by: str) -> ExportJob:
    """Queue an export (the caller commits). The same export still waiting or running is
    returned instead of a second one (a double click starts one job)."""
    if report not in REPORTS:
        raise ValidationFailed(f"report must be one of {', '.join(REPORTS)}",
                               code="invalid_export")
    if fmt not in FORMATS:
        raise ValidationFailed(f"format must be one of {', '.join(FORMATS)}",
                               code="invalid_format")
    write_transaction(session)
    same = session.exec(select(ExportJob).where(
        ExportJob.report == report, ExportJob.format == fmt,
        ExportJob.period_start == period.start, ExportJob.period_end == period.end,
        ExportJob.status.in_(ACTIVE))).first()
    if same is not None:
        return same
    job = ExportJob(report=report, format=fmt, period_start=period.start,
                    period_end=period.end, requested_by=requested_by[:200])
    session.add(job)
    session.flush()
    return job


def recent_jobs(session: Session, limit: int = 20) -> list[ExportJob]:
    """The newest jobs first."""
    return list(session.exec(select(ExportJob).order_by(ExportJob.id.desc()).limit(limit)))


def get_job(session: Session, public_id: str) -> ExportJob:
    """A job by its public id, or NotFound."""
    job = session.exec(select(ExportJob).where(ExportJob.public_id == public_id)).first()
    if job is None:
        raise NotFound("no such export", code="export_not_found")
    return job


def file_path(settings: Settings, job: ExportJob) -> Path:
    """Where a done job's file is."""
    if job.status != "done" or not job.file_name:
        raise NotFound("this export is not ready", code="export_not_ready")
    path = Path(settings.export_dir) / job.file_name
    if not path.is_file():
        raise NotFound("this export's file is gone", code="export_file_missing")
    return path


def download_name(job: ExportJob) -> str:
    """``orders_2025-01-01_2026-12-01.xlsx``."""
    return f"{job.report}_{job.period_start}_{job.period_end}.{job.format}"


def percent(job: ExportJob) -> int:
    """How far a job is, 0–100 (99 at most until done: the total is counted beforehand)."""
    if job.status == "done":
        return 100
    if not job.rows_total:
        return 0
    return min(99, job.rows_done * 100 // job.rows_total)


def count_rows(session: Session, report: str, period: Period) -> int:
    """How many rows the export will have (records booked in the period), for progress."""
    o, c, r, p = Order.__table__, Contract.__table__, Refund.__table__, Payout.__table__

    def booked(table, *where) -> int:
        return session.execute(sa.select(sa.func.count()).select_from(table).where(
            table.c.booked_on.between(period.start, period.end), *where)).scalar() or 0

    if report == "orders":
        return booked(o, o.c.status.in_(PURCHASE_STATUSES))
    if report == "contracts":
        return booked(c)
    return booked(c) + booked(r) + booked(p)


# --- the worker's side ---------------------------------------------------------------------

def claim(settings: Settings, *, only_id: int | None = None) -> ExportJob | None:
    """Claim the longest-due waiting job (or one whose worker's lease ran out): running,
    attempt counted, leased. Returns it detached, or None. A job already tried
    :data:`MAX_ATTEMPTS` times (its workers died on it) is given up instead."""
    while True:
        now = utcnow()
        query = due_query(ExportJob, now=now, limit=1, rows=True,
                          pending=_j.c.status.in_(ACTIVE))
        if only_id is not None:
            query = query.where(_j.c.id == only_id)
        with session_scope(settings.database_url) as session:
            job = session.exec(query).first()
            if job is None:
                return None
            if job.attempts >= MAX_ATTEMPTS:
                _give_up(session, job, job.last_error or "the worker stopped while writing it")
                continue
            job.attempts += 1
            job.status, job.started_at, job.rows_done = "running", now, 0
            job.next_attempt_at = now + timedelta(seconds=LEASE_SECONDS)
            session.add(job)
        return job


def _mine(job: ExportJob):
    """The condition that this worker's claim is still the job's current one."""
    return sa.and_(_j.c.id == job.id, _j.c.attempts == job.attempts, _j.c.status == "running")


def _update_mine(settings: Settings, job: ExportJob, **values) -> None:
    """One conditional update of the job as claimed; LostClaim when it is no longer ours."""
    with session_scope(settings.database_url) as session:
        changed = session.execute(sa.update(_j).where(_mine(job)).values(**values)).rowcount
    if changed != 1:
        raise LostClaim(job.public_id)


def _give_up(session: Session, job: ExportJob, error: str) -> None:
    """Mark a job dead and queue it for a person (in the caller's transaction)."""
    job.status, job.last_error, job.finished_at = "dead", error[:2000], utcnow()
    session.add(job)
    attention.raise_item(
        session=session, kind="export_failed", key=job.public_id,
        summary=f"export {job.public_id} ({job.report} {job.format}, {job.period_start} to "
                f"{job.period_end}) failed {job.attempts} times: {error}"[:1000],
        data={"export": job.public_id, "report": job.report, "format": job.format,
              "attempts": job.attempts, "error": error[:500]})


@dataclass
class _Progress:
    """Counts rows as they go into the file and records them now and then (renewing the
    lease), so the page shows how far the job is and no other worker takes it."""

    settings: Settings
    job: ExportJob
    done: int = 0
    noted_at: float = 0.0

    def count(self, rows) -> Iterator[dict]:
        """The rows, counted."""
        self.noted_at = time.monotonic()
        for row in rows:
            yield row
            self.done += 1
            if self.done % PROGRESS_ROWS == 0 or \
                    time.monotonic() - self.noted_at >= PROGRESS_SECONDS:
                self.note()

    def count_lines(self, chunks) -> Iterator[str]:
        """CSV text the database wrote (PostgreSQL's COPY, in blocks of many rows), counted
        by its row ends (CRLF; a newline inside a cell is a bare LF)."""
        self.noted_at = time.monotonic()
        for chunk in chunks:
            yield chunk
            before, self.done = self.done, self.done + chunk.count("\r\n")
            if self.done // PROGRESS_ROWS != before // PROGRESS_ROWS or \
                    time.monotonic() - self.noted_at >= PROGRESS_SECONDS:
                self.note()

    def note(self) -> None:
        """Record the rows written so far and push the lease forward."""
        self.noted_at = time.monotonic()
        _update_mine(self.settings, self.job, rows_done=self.done,
                     next_attempt_at=utcnow() + timedelta(seconds=LEASE_SECONDS))


def write_file(result: reports.Result, fmt: str, path: Path) -> None:
    """Write a report to ``path`` in ``fmt``, streaming its rows."""
    with open(path, "wb") as handle:
        if fmt == "xlsx":
            writers.write_xlsx(result, handle)
        else:
            for chunk in writers.csv_chunks(result):
                handle.write(chunk.encode())


def run_job(settings: Settings, job: ExportJob) -> str:
    """Write a claimed job's file; returns its outcome (done, retry, dead, lost)."""
    folder = Path(settings.export_dir)
    final = f"{job.public_id}.{job.format}"
    partial = folder / f"{final}.{job.attempts}.part"
    period = Period(job.period_start, job.period_end)
    progress = _Progress(settings, job)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with Session(get_engine(settings.database_url)) as session:
            total = count_rows(session, job.report, period)
            _update_mine(settings, job, rows_total=total)
            ctx = reports.Context(session=session, settings=settings, period=period)
            result = reports.run_report(job.report, ctx)
            result.rows = progress.count(result.rows)
            if result.csv_rows is not None:  # PostgreSQL writes this CSV itself (COPY)
                copied = result.csv_rows
                result.csv_rows = lambda: progress.count_lines(copied())
            write_file(result, job.format, partial)
        size = partial.stat().st_size
        # Still ours? (Checked before the rename too, so a stalled worker never replaces the
        # file of the worker that took its job over.)
        _update_mine(settings, job, rows_done=progress.done)
        os.replace(partial, folder / final)
        _update_mine(settings, job, status="done", rows_done=progress.done, file_name=final,
                     file_bytes=size, finished_at=utcnow(), last_error=None)
        log.info("export %s done: %s rows", job.public_id, progress.done)
        return "done"
    except LostClaim:
        partial.unlink(missing_ok=True)
        log.warning("export %s: claim lost (lease ran out); another worker has it",
                    job.public_id)
        return "lost"
    except Exception as exc:  # any failure: the job is retried or given up, never left running
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        log.exception("export %s failed (attempt %s)", job.public_id, job.attempts)
        return _failed(settings, job, f"{type(exc).__name__}: {exc}",
                       permanent=isinstance(exc, NotFound | ValidationFailed))


def _failed(settings: Settings, job: ExportJob, error: str, *, permanent: bool) -> str:
    """Back off for another try, or give the job up for a person."""
    with session_scope(settings.database_url) as session:
        current = session.exec(select(ExportJob).where(_mine(job)).with_for_update()).first()
        if current is None:
            return "lost"
        if permanent or current.attempts >= MAX_ATTEMPTS:
            _give_up(session, current, error)
            return "dead"
        current.status, current.last_error = "pending", error[:2000]
        current.next_attempt_at = utcnow() + timedelta(
            seconds=backoff_seconds(current.attempts, settings))
        session.add(current)
    return "retry"


def run_exports(*, settings: Settings, limit: int = 1) -> int:
    """The worker's job: claim and write up to ``limit`` exports; returns how many ran.

    One per pass by default: an export can take minutes, and the worker's other jobs (mail,
    webhooks, refunds) wait while it runs (run a second ``warranty worker`` to keep them
    going during long exports)."""
    done = 0
    for _ in range(max(limit, 0)):
        job = claim(settings)
        if job is None:
            break
        run_job(settings, job)
        done += 1
    return done


def is_active(jobs: list[ExportJob]) -> bool:
    """Whether any of these jobs is still waiting or running (the page refreshes itself)."""
    return any(job.status in ACTIVE for job in jobs)
