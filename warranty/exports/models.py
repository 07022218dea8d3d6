"""The export job table: one row per requested file, claimed by one worker at a time."""

from __future__ import annotations

from datetime import date, datetime

from sqlmodel import Field, SQLModel

from warranty.core.ids import public_id
from warranty.db.types import ts_field


class ExportJob(SQLModel, table=True):
    """A report written to a file by the worker.

    ``status``: pending (waiting for a worker) | running (claimed; ``next_attempt_at`` is the
    end of the claim's lease, pushed forward as rows are written) | done (``file_name`` holds
    it) | dead (failed ``max attempts`` times, or can never succeed: for a person, on the
    attention queue). ``attempts`` counts claims; a worker's writes name the attempt they
    belong to, so a worker whose lease ran out (and whose job another took) changes nothing.
    """

    __tablename__ = "export_job"

    id: int | None = Field(default=None, primary_key=True)
    public_id: str = Field(default_factory=lambda: public_id("exp"), max_length=40, unique=True)
    report: str = Field(max_length=40)
    format: str = Field(max_length=10)  # csv | xlsx
    period_start: date
    period_end: date
    requested_by: str = Field(max_length=200)
    status: str = Field(default="pending", max_length=20, index=True)
    attempts: int = 0
    next_attempt_at: datetime = ts_field()
    last_error: str | None = Field(default=None, max_length=2000)
    rows_total: int | None = None  # counted before writing (None: not known)
    rows_done: int = 0
    file_name: str | None = Field(default=None, max_length=200)  # in settings.export_dir
    file_bytes: int | None = None
    created_at: datetime = ts_field()
    started_at: datetime | None = ts_field(nullable=True)
    finished_at: datetime | None = ts_field(nullable=True)
