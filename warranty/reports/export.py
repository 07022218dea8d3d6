"""Write a report as JSON, CSV or XLSX, as a stream of chunks (constant memory); XLSX through
a streaming SpreadsheetML writer of its own (:func:`write_xlsx`)."""

from __future__ import annotations

import csv
import io
import json
import re
import tempfile
import zipfile
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import BinaryIO

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


# --- XLSX: a minimal SpreadsheetML package written as a stream --------------------------
#
# openpyxl's write-only mode keeps memory flat, but builds an object and an XML element per
# cell: about 2 µs of CPU each, over three minutes for a million orders of 17 columns on the
# development machine (lxml saves a fifth of it). The sheet is regular (one row per record,
# numbers, text, dates), so it is written here directly: the package's fixed parts, and the
# sheet's XML streamed into the zip row by row. Text is always an inline string cell, never
# a formula, whatever it begins with; numbers (money as Decimal in major units, negatives
# too) are number cells; dates are date serials with a date format, as openpyxl writes them.
# tests/reports/test_xlsx_writer.py reads the files back with openpyxl and compares them
# with openpyxl's own write-only output.

_XLSX_PARTS = {
    "[Content_Types].xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" '
        'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        '<Override PartName="/xl/styles.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/></Types>'),
    "_rels/.rels": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>'),
    "xl/_rels/workbook.xml.rels": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/worksheet" Target="worksheets/sheet1.xml"/>'
        '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/styles" Target="styles.xml"/></Relationships>'),
    # Cell styles: 0 general, 1 a date (yyyy-mm-dd), 2 a date and time, as openpyxl uses.
    "xl/styles.xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        '<numFmts count="2"><numFmt numFmtId="164" formatCode="yyyy-mm-dd"/>'
        '<numFmt numFmtId="165" formatCode="yyyy-mm-dd h:mm:ss"/></numFmts>'
        '<fonts count="1"><font><sz val="11"/><name val="Calibri"/></font></fonts>'
        '<fills count="2"><fill><patternFill patternType="none"/></fill>'
        '<fill><patternFill patternType="gray125"/></fill></fills>'
        '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
        '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/>'
        '</cellStyleXfs><cellXfs count="3">'
        '<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
        '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
        '<xf numFmtId="165" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
        '</cellXfs><cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/>'
        '</cellStyles></styleSheet>'),
}
_EPOCH = date(1899, 12, 30)  # Excel's day 0 (its 1900 leap-year bug included)
# Characters XML 1.0 cannot hold at all (tab, LF and CR it can): shown as U+FFFD.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _column_letters(index: int) -> str:
    """0 → A, 25 → Z, 26 → AA."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _xml_text(value: str) -> str:
    """Text escaped for an XML element (and kept valid XML)."""
    text = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _NOT_XML.sub("\ufffd", text)


def _xlsx_cell(ref: str, value) -> str:
    """One ``<c>`` element ('' for an empty cell)."""
    if value is None:
        return ""
    kind = value.__class__
    if kind is str:
        space = ' xml:space="preserve"' if value[:1].isspace() or value[-1:].isspace() else ""
        return f'<c r="{ref}" t="inlineStr"><is><t{space}>{_xml_text(value)}</t></is></c>'
    if kind is bool:
        return f'<c r="{ref}" t="b"><v>{int(value)}</v></c>'
    if kind is int or kind is Decimal:
        return f'<c r="{ref}"><v>{value}</v></c>'
    if kind is float:
        return f'<c r="{ref}"><v>{value!r}</v></c>' if value == value else ""
    if kind is date:
        return f'<c r="{ref}" s="1"><v>{(value - _EPOCH).days}</v></c>'
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        delta = value - datetime(1899, 12, 30)
        serial = delta.days + (delta.seconds + delta.microseconds / 1e6) / 86400
        return f'<c r="{ref}" s="2"><v>{serial!r}</v></c>'
    if isinstance(value, int | Decimal):
        return f'<c r="{ref}"><v>{value}</v></c>'
    return _xlsx_cell(ref, str(value))


def write_xlsx(result: Result, handle: BinaryIO, *, batch_rows: int = 500) -> None:
    """Write the report as an XLSX workbook (one sheet named after the report) to
    ``handle``, streaming its rows into the zip: memory stays flat however many there are."""
    columns = result.columns
    letters = [_column_letters(i) for i in range(len(columns))]
    money = [i for i, name in enumerate(columns) if name in result.money]
    title = _xml_text(result.name[:31])
    with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED,
                         compresslevel=1) as package:
        for name, text in _XLSX_PARTS.items():
            package.writestr(name, text)
        package.writestr("xl/workbook.xml", (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
            'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
            f'<sheets><sheet name="{title}" sheetId="1" r:id="rId1"/></sheets></workbook>'))
        with package.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as raw, \
                io.TextIOWrapper(raw, encoding="utf-8", newline="") as sheet:
            sheet.write('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/'
                        '2006/main"><sheetData>')
            sheet.write('<row r="1">' + "".join(
                _xlsx_cell(f"{letter}1", name) for letter, name in zip(letters, columns,
                                                                       strict=True))
                + "</row>")
            buffer: list[str] = []
            number = 1
            for row in _all_rows(result):
                number += 1
                values = [row.get(name) for name in columns]
                for i in money:
                    if values[i] is not None:
                        values[i] = to_major(int(values[i]), result.currency)
                buffer.append(f'<row r="{number}">' + "".join(
                    [_xlsx_cell(f"{letter}{number}", value)
                     for letter, value in zip(letters, values, strict=True)]) + "</row>")
                if len(buffer) >= batch_rows:
                    sheet.write("".join(buffer))
                    buffer.clear()
            sheet.write("".join(buffer) + "</sheetData></worksheet>")


def xlsx_chunks(result: Result, chunk_size: int = 64 * 1024) -> Iterator[bytes]:
    """The XLSX workbook (:func:`write_xlsx`) built in a temporary file, then sent: the zip
    is only complete at the end."""
    with tempfile.TemporaryFile() as handle:
        write_xlsx(result, handle)
        handle.seek(0)
        while chunk := handle.read(chunk_size):
            yield chunk


def chunks(result: Result, fmt: str) -> Iterator[str | bytes]:
    """The report in ``fmt`` (json, csv or xlsx)."""
    return {"json": json_chunks, "csv": csv_chunks, "xlsx": xlsx_chunks}[fmt](result)


def filename(result: Result, fmt: str) -> str:
    """``finance_2026-01-01_2026-03-31.csv``."""
    return f"{result.name}_{result.period.start}_{result.period.end}.{fmt}"
