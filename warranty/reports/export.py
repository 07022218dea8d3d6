"""Write a report as JSON, CSV or XLSX, as a stream of chunks (constant memory)."""

from __future__ import annotations

import csv
import io
import json
import tempfile
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal

from warranty.core.money import to_major
from warranty.reports.registry import Result

FORMATS = {"json": "application/json",
           "csv": "text/csv; charset=utf-8",
           "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
CHUNK_ROWS = 1000
# A spreadsheet reads a cell that begins with one of these as a formula (OWASP "CSV
# injection"); full-width forms too, which spreadsheets in Japanese take for the ASCII ones.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "＝", "＋", "－", "＠")


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


def is_formula_like(value: str) -> bool:
    """Whether a spreadsheet would take text for a formula (leading spaces skipped)."""
    return value.lstrip(" ").startswith(FORMULA_STARTS)


def csv_text(value: str) -> str:
    """Text for a CSV cell: one that would read as a formula gets a leading apostrophe,
    which spreadsheets show as text (numbers are never text, so they are never touched)."""
    return "'" + value if is_formula_like(value) else value


def _all_rows(result: Result) -> Iterator[dict]:
    """The table rows, then the extra table rows (totals)."""
    yield from result.rows
    yield from result.table_extra


def _csv_cell(value) -> object:
    """One CSV cell: blank for None, text neutralised, numbers and dates as they are."""
    if value is None:
        return ""
    return csv_text(value) if isinstance(value, str) else _plain(value)


def csv_chunks(result: Result) -> Iterator[str]:
    """CSV with a header row; money in major units of the store currency."""
    out = io.StringIO()
    # CRLF row ends (RFC 4180): a field holding a CR or LF is then always quoted, so text
    # with a stray CR can never split a row.
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([csv_text(name) for name in result.columns])
    if result.csv_rows is not None and not result.table_extra:
        yield out.getvalue()
        yield from result.csv_rows()
        return
    for count, row in enumerate(_all_rows(result), start=1):
        writer.writerow([_csv_cell(c) for c in _cells(result, row)])
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
    from openpyxl.cell import WriteOnlyCell

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=result.name[:31])

    def cell(value):
        # openpyxl stores any text that begins with "=" as a live formula: such text goes in
        # as a cell of the string type, so it shows as typed and never runs. Other text is a
        # string cell already; numbers (Decimal money, negatives too) stay number cells.
        if isinstance(value, str) and value.startswith("="):
            text = WriteOnlyCell(sheet, value=value)
            text.data_type = "s"
            return text
        return value

    sheet.append([cell(name) for name in result.columns])
    for row in _all_rows(result):
        sheet.append([cell(value) for value in _cells(result, row)])
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
