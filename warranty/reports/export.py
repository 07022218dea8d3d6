"""Write a report as JSON, CSV or XLSX, as a stream of chunks (constant memory)."""

from __future__ import annotations

import csv
import io
import json
import tempfile
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal

from warranty.money import to_major
from warranty.reports import Result

FORMATS = {"json": "application/json",
           "csv": "text/csv; charset=utf-8",
           "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
CHUNK_ROWS = 1000


def _plain(value):
    """JSON-ready value (dates as ISO text)."""
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def json_chunks(result: Result) -> Iterator[str]:
    """``{header..., "rows": [...], extra...}`` written row by row; money in minor units."""
    head = json.dumps(result.header(), ensure_ascii=False)
    yield head[:-1] + ', "rows": ['
    buffer, first = [], True
    for row in result.rows:
        text = json.dumps({k: _plain(row.get(k)) for k in result.columns}, ensure_ascii=False)
        buffer.append(text if first else "," + text)
        first = False
        if len(buffer) >= CHUNK_ROWS:
            yield "".join(buffer)
            buffer.clear()
    yield "".join(buffer) + "]"
    for key, value in result.extra.items():
        yield f", {json.dumps(key)}: {json.dumps(value, ensure_ascii=False, default=_plain)}"
    yield "}\n"


def _cells(result: Result, row: dict) -> list:
    """One row's cells: money in major units (Decimal), dates as dates."""
    cells = []
    for name in result.columns:
        value = row.get(name)
        if name in result.money and value is not None:
            value = to_major(int(value), result.currency)
        cells.append(value)
    return cells


def _all_rows(result: Result) -> Iterator[dict]:
    """The table rows, then the extra table rows (totals)."""
    yield from result.rows
    yield from result.table_extra


def csv_chunks(result: Result) -> Iterator[str]:
    """CSV with a header row; money in major units of the store currency."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(result.columns)
    for count, row in enumerate(_all_rows(result), start=1):
        writer.writerow(["" if c is None else _plain(c) for c in _cells(result, row)])
        if count % CHUNK_ROWS == 0:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    yield out.getvalue()


def xlsx_chunks(result: Result, chunk_size: int = 64 * 1024) -> Iterator[bytes]:
    """An XLSX workbook built with openpyxl's write-only mode in a temporary file, then sent.

    Write-only worksheets stream rows to disk as they come, so memory stays flat; the zip is
    only complete at the end, hence the temporary file.
    """
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=result.name[:31])
    sheet.append(result.columns)
    for row in _all_rows(result):
        sheet.append(_cells(result, row))  # Decimal money is a number cell
    with tempfile.TemporaryFile() as handle:
        workbook.save(handle)
        handle.seek(0)
        while chunk := handle.read(chunk_size):
            yield chunk


def chunks(result: Result, fmt: str) -> Iterator[str | bytes]:
    """The report in ``fmt`` (json, csv or xlsx)."""
    return {"json": json_chunks, "csv": csv_chunks, "xlsx": xlsx_chunks}[fmt](result)


def filename(result: Result, fmt: str) -> str:
    """``finance_2026-01-01_2026-03-31.csv``."""
    return f"{result.name}_{result.period.start}_{result.period.end}.{fmt}"
