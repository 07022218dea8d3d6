"""Background exports: queued, claimed by one worker, written streamed, retried, given up
for a person; the file holds exactly what the API's export of the same period gives."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from openpyxl import load_workbook
from sqlmodel import select

from tests.races import postgres_only, together
from tests.report_history import plan_sale
from warranty.attention.models import AttentionItem
from warranty.core.dates import utcnow
from warranty.db.engine import session_scope
from warranty.exports import services as jobs
from warranty.exports.models import ExportJob
from warranty.reports.period import Period

PERIOD = Period(date(2026, 1, 1), date(2026, 3, 31))


def _sales(db, count: int = 3) -> None:
    """``count`` plan sales of ¥3,650 in January, one a day, each by its own customer."""
    for day in range(count):
        plan_sale(db, price=3650, sold_on=date(2026, 1, 10) + timedelta(days=day),
                  email=f"b{day}@example.com")


def _queue(settings, report: str = "orders", fmt: str = "csv",
           period: Period = PERIOD) -> ExportJob:
    """Queue an export as the dashboard's form does; committed."""
    with session_scope(settings.database_url) as session:
        return jobs.start_export(session=session, report=report, fmt=fmt, period=period,
                                 requested_by="staff:books@store.example")


def _job(db, public_id: str) -> ExportJob:
    """The job as stored now (the session's earlier read ended first: SQLite snapshots)."""
    db.rollback()
    return db.exec(select(ExportJob).where(ExportJob.public_id == public_id)).one()


def test_a_csv_job_writes_what_the_api_exports(settings, db, client, staff_headers):
    _sales(db)
    queued = _queue(settings)
    assert queued.status == "pending"
    assert jobs.run_exports(settings=settings, limit=5) == 1
    job = _job(db, queued.public_id)
    assert (job.status, job.attempts, job.rows_done, job.rows_total) == ("done", 1, 3, 3)
    path = jobs.file_path(settings, job)
    api = client.get("/api/v1/reports/orders?from=2026-01-01&to=2026-03-31&format=csv",
                     headers=staff_headers)
    assert path.read_bytes() == api.data
    assert job.file_bytes == len(api.data)
    assert jobs.download_name(job) == "orders_2026-01-01_2026-03-31.csv"
    # Nothing left to do: the next pass claims nothing.
    assert jobs.run_exports(settings=settings) == 0


def test_an_xlsx_job_has_the_csv_rows(settings, db, client, staff_headers):
    _sales(db, count=4)
    job_id = _queue(settings, report="contracts", fmt="xlsx").public_id
    jobs.run_exports(settings=settings)
    job = _job(db, job_id)
    assert job.status == "done" and job.rows_done == 4
    book = load_workbook(jobs.file_path(settings, job), read_only=True)  # close it after
    rows = [[cell for cell in row] for row in book.active.iter_rows(values_only=True)]
    book.close()
    csv_rows = client.get("/api/v1/reports/contracts?from=2026-01-01&to=2026-03-31"
                          "&format=csv", headers=staff_headers).get_data(as_text=True)
    header = csv_rows.splitlines()[0].split(",")
    assert list(rows[0]) == header
    assert len(rows) == 1 + 4
    price = header.index("price")
    assert [str(r[price]) for r in rows[1:]] == ["3650"] * 4


def test_progress_is_recorded_while_writing(settings, db, monkeypatch):
    _sales(db, count=5)
    monkeypatch.setattr(jobs, "PROGRESS_ROWS", 2)
    seen: list[int] = []
    real = jobs._update_mine

    def watch(settings_, job, **values):
        real(settings_, job, **values)
        if "rows_done" in values:
            seen.append(values["rows_done"])

    monkeypatch.setattr(jobs, "_update_mine", watch)
    job_id = _queue(settings).public_id
    jobs.run_exports(settings=settings)
    if settings.database_url.startswith("postgresql"):
        # PostgreSQL writes this CSV itself (COPY) and hands it over in blocks of many rows:
        # progress is recorded as blocks cross the mark (five rows fit one block).
        assert seen == sorted(seen) and seen[0] >= 2 and seen[-1] == 5
    else:
        assert seen[:2] == [2, 4] and seen[-1] == 5
    job = _job(db, job_id)
    assert jobs.percent(job) == 100 and job.rows_total == 5


def test_the_same_export_asked_twice_is_one_job(settings, db):
    first = _queue(settings)
    second = _queue(settings)
    assert first.public_id == second.public_id
    other = _queue(settings, fmt="xlsx")
    assert other.public_id != first.public_id
    assert len(db.exec(select(ExportJob)).all()) == 2


@pytest.mark.parametrize(("report", "fmt", "code"), [("finance", "csv", "invalid_export"),
                                                     ("orders", "pdf", "invalid_format")])
def test_unknown_exports_are_refused(settings, report, fmt, code):
    with pytest.raises(jobs.ValidationFailed) as refused:
        _queue(settings, report=report, fmt=fmt)
    assert refused.value.code == code


def test_a_job_failing_every_time_is_given_up_for_a_person(settings, db, tmp_path):
    _sales(db, count=1)
    # The export folder cannot be made (a file is in the way): every attempt fails.
    blocked = tmp_path / "blocked"
    blocked.write_text("not a folder")
    broken = settings.model_copy(update={"export_dir": str(blocked / "exports"),
                                         "retry_base_seconds": 0})
    job_id = _queue(broken).public_id
    outcomes = []
    for _ in range(jobs.MAX_ATTEMPTS):
        job = jobs.claim(broken)
        assert job is not None and job.public_id == job_id
        outcomes.append(jobs.run_job(broken, job))
    assert outcomes == ["retry"] * (jobs.MAX_ATTEMPTS - 1) + ["dead"]
    job = _job(db, job_id)
    assert job.status == "dead" and "NotADirectoryError" in job.last_error
    assert jobs.claim(broken) is None
    item = db.exec(select(AttentionItem)).one()
    assert item.kind == "export_failed" and item.key == f"export_failed:{job_id}"
    assert item.data["attempts"] == jobs.MAX_ATTEMPTS


def test_a_job_whose_worker_died_is_taken_again_then_given_up(settings, db):
    job_id = _queue(settings).public_id
    for attempt in range(1, jobs.MAX_ATTEMPTS + 1):
        job = jobs.claim(settings)
        assert job.attempts == attempt and job.status == "running"
        # The worker dies: its lease runs out.
        with session_scope(settings.database_url) as session:
            row = session.get(ExportJob, job.id)
            row.next_attempt_at = utcnow() - timedelta(seconds=1)
    assert jobs.claim(settings) is None
    job = _job(db, job_id)
    assert job.status == "dead" and job.attempts == jobs.MAX_ATTEMPTS
    assert db.exec(select(AttentionItem.kind)).all() == ["export_failed"]


def test_a_worker_whose_lease_ran_out_changes_nothing(settings, db):
    _sales(db, count=2)
    job_id = _queue(settings).public_id
    stalled = jobs.claim(settings)
    with session_scope(settings.database_url) as session:  # its lease runs out...
        session.get(ExportJob, stalled.id).next_attempt_at = utcnow() - timedelta(seconds=1)
    second = jobs.claim(settings)  # ...and another worker takes the job
    assert second.attempts == stalled.attempts + 1
    assert jobs.run_job(settings, stalled) == "lost"
    job = _job(db, job_id)
    assert (job.status, job.attempts, job.file_name) == ("running", 2, None)
    folder = jobs.Path(settings.export_dir)
    assert not (folder / f"{job_id}.csv").exists()
    assert list(folder.glob("*.part")) == []
    assert jobs.run_job(settings, second) == "done"
    assert _job(db, job_id).status == "done"


def test_two_workers_never_run_the_same_job(settings, db, database_url):
    postgres_only(database_url)
    _sales(db, count=2)
    for round_ in range(5):
        job_id = _queue(settings, period=Period(PERIOD.start,
                                                PERIOD.end + timedelta(days=round_))).public_id
        claims = together(*[lambda: jobs.claim(settings)] * 4)
        taken = [c for c in claims if c is not None]
        assert [c.public_id for c in taken] == [job_id], claims
        assert _job(db, job_id).attempts == 1
        assert jobs.run_job(settings, taken[0]) == "done"
    # Two whole passes side by side: each job written once.
    for round_ in range(3):
        _queue(settings, fmt="xlsx", period=Period(PERIOD.start,
                                                   PERIOD.end + timedelta(days=round_)))
    ran = together(*[lambda: jobs.run_exports(settings=settings, limit=3)] * 2)
    assert sum(ran) == 3
    done = db.exec(select(ExportJob).where(ExportJob.format == "xlsx")).all()
    assert sorted((j.status, j.attempts) for j in done) == [("done", 1)] * 3


def test_the_whole_store_runs_from_the_first_booking_to_today(settings, db):
    with session_scope(settings.database_url) as session:
        assert jobs.whole_store(session, date(2026, 5, 1)) == Period(date(2026, 5, 1),
                                                                     date(2026, 5, 1))
    plan_sale(db, price=3650, sold_on=date(2025, 11, 3))
    with session_scope(settings.database_url) as session:
        assert jobs.whole_store(session, date(2026, 5, 1)) == Period(date(2025, 11, 3),
                                                                     date(2026, 5, 1))
