"""The streaming XLSX writer: what openpyxl reads back from it is what openpyxl's own
write-only mode would have stored, cell by cell (value, type, number format), and text is
never a formula; the file stays small in memory however many rows."""

from __future__ import annotations

import io
import tracemalloc
from datetime import UTC, date, datetime
from decimal import Decimal

from openpyxl import Workbook, load_workbook
from openpyxl.cell import WriteOnlyCell

from warranty.reports import export
from warranty.reports.period import Period
from warranty.reports.registry import Result

COLUMNS = ["text", "amount", "day", "count", "rate", "flag", "empty"]
ROWS = [
    {"text": "=HYPERLINK(\"http://x\",\"y\")", "amount": 3650, "day": date(2026, 1, 10),
     "count": 3, "rate": 0.1234, "flag": True, "empty": None},
    {"text": "  leading and trailing  ", "amount": -1000, "day": date(1999, 12, 31),
     "count": 10**12, "rate": -0.5, "flag": False, "empty": None},
    {"text": "a & b < c > d \"q\" 'r'", "amount": 0, "day": None, "count": 0, "rate": 0.0,
     "flag": None, "empty": None},
    {"text": "日本語のテキスト＝全角", "amount": 1, "day": date(2028, 2, 29), "count": -7,
     "rate": 1e-9, "flag": None, "empty": None},
    {"text": "line\nbreak\ttab\rcr", "amount": 123456789, "day": date(1900, 3, 1),
     "count": 1, "rate": 2.5, "flag": None, "empty": None},
]


def _result(rows, currency: str = "usd") -> Result:
    return Result("ledger<&>", Period(date(2026, 1, 1), date(2026, 1, 31)), currency, COLUMNS,
                  iter(rows), money={"amount"})


def _openpyxl_reference(result: Result) -> bytes:
    """The same sheet through openpyxl's write-only mode (text starting "=" forced to a
    string cell, as the export always did)."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=result.name[:31])
    sheet.append(result.columns)
    for row in result.rows:
        cells = []
        for name in result.columns:
            value = row.get(name)
            if name in result.money and value is not None:
                value = export.to_major(value, result.currency)
            if isinstance(value, str):
                cell = WriteOnlyCell(sheet, value=value.replace("\r", "\n"))
                cell.data_type = "s"
                value = cell
            cells.append(value)
        sheet.append(cells)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def _cells(data: bytes) -> list[list[tuple]]:
    sheet = load_workbook(io.BytesIO(data)).active
    return [[(c.value, c.data_type, c.number_format if c.value is not None else None)
             for c in row] for row in sheet.iter_rows()]


def test_the_sheet_reads_back_as_openpyxl_would_have_written_it():
    out = io.BytesIO()
    export.write_xlsx(_result(ROWS), out)
    ours = _cells(out.getvalue())
    reference = _cells(_openpyxl_reference(_result(ROWS)))
    assert ours == reference
    assert all(dtype != "f" for row in ours for _, dtype, _ in row)
    sheet = load_workbook(io.BytesIO(out.getvalue())).active
    assert sheet.title == "ledger<&>"
    assert sheet["A2"].value.startswith("=HYPERLINK") and sheet["A2"].data_type == "s"
    assert sheet["B3"].value == Decimal("-10.00") and sheet["B3"].data_type == "n"
    assert sheet["C2"].value == datetime(2026, 1, 10) and sheet["C2"].is_date


def test_characters_xml_cannot_hold_and_timestamps():
    rows = [{"text": "bell\x07null\x00", "amount": None, "day": datetime(
        2026, 1, 10, 12, 30, tzinfo=UTC), "count": None, "rate": None, "flag": None,
        "empty": None}]
    out = io.BytesIO()
    export.write_xlsx(_result(rows), out)
    sheet = load_workbook(io.BytesIO(out.getvalue())).active
    assert sheet["A2"].value == "bell\ufffdnull\ufffd"
    assert sheet["C2"].value == datetime(2026, 1, 10, 12, 30)
    assert sheet["C2"].number_format == "yyyy-mm-dd h:mm:ss"


def test_memory_stays_flat_over_many_rows():
    def rows(n):
        for i in range(n):
            yield {"text": f"ref-{i}", "amount": i, "day": date(2026, 1, 1), "count": i,
                   "rate": 0.5, "flag": None, "empty": None}

    peaks = []
    for n in (2_000, 40_000):
        sink = io.BytesIO()
        tracemalloc.start()
        export.write_xlsx(_result(rows(n)), sink)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        # The compressed file is what grows, not the writer: count it out.
        peaks[-1] -= sink.getbuffer().nbytes
        sink.close()
    assert peaks[1] < peaks[0] + 2_000_000, peaks
    sheet = load_workbook(io.BytesIO(_small()), read_only=True).active
    assert len(list(sheet.iter_rows())) == 3


def _small() -> bytes:
    out = io.BytesIO()
    export.write_xlsx(_result(ROWS[:2]), out)
    return out.getvalue()


def test_column_letters():
    assert [export._column_letters(i) for i in (0, 25, 26, 51, 52, 701, 702)] == [
        "A", "Z", "AA", "AZ", "BA", "ZZ", "AAA"]
