"""A ledger's CSV written by PostgreSQL itself (``COPY (SELECT ...) TO STDOUT``), byte for byte
what :func:`warranty.reports.export.csv_chunks` writes from the rows, many times faster.

The Python writer turns a million rows into dicts, formats every cell and quotes it; here the
database formats each cell in SQL the way the writer would (money in major units, ISO dates,
text that a spreadsheet would read as a formula behind an apostrophe, blank for nothing) and
quotes it as CSV, and the rows come through psycopg's COPY protocol in chunks: constant
memory, no Python object per cell. The one thing COPY cannot do is end a row with CRLF (RFC
4180, what the writer does): row ends are the line feeds outside quotes (COPY quotes every
field that holds a CR or LF, as the writer does), and they are rewritten as the bytes go by.

Only statements whose every column has a type this module can format the writer's way are
written so; :func:`copy_csv` gives None for the others, and the rows are written in Python.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable, Iterator

import sqlalchemy as sa

from warranty.core.money import exponent
from warranty.reports.export import FORMULA_STARTS
from warranty.reports.registry import REPORT_SETTINGS

CHUNK_BYTES = 256 * 1024


def _text(value) -> sa.ColumnElement:
    """A text cell: formula-like text behind an apostrophe (``export.csv_text``), and the
    empty text as nothing (COPY would quote ``""``; the writer leaves the field empty)."""
    first = sa.func.left(sa.func.ltrim(value, " "), 1)
    safe = sa.case((first.in_(FORMULA_STARTS), sa.literal("'") + value), else_=value)
    return sa.func.nullif(safe, "")


def _money(value, currency: str) -> sa.ColumnElement:
    """Minor units as major units with the currency's decimals (``money.to_major``)."""
    exp = exponent(currency)
    if exp == 0:
        return sa.cast(value, sa.Text)
    scaled = sa.cast(value, sa.Numeric) / (10 ** exp)
    return sa.cast(sa.cast(scaled, sa.Numeric(38, exp)), sa.Text)


def _cell(column, money: bool, currency: str) -> sa.ColumnElement | None:
    """SQL giving one column's CSV text as the writer writes it, or None if its type is not
    one this module knows."""
    kind = column.type._type_affinity if not isinstance(column.type, sa.types.NullType) \
        else sa.types.NullType
    if money:
        if not issubclass(kind, sa.Integer):
            return None
        return _money(column, currency)
    if kind is sa.types.NullType or issubclass(kind, sa.String):
        return _text(sa.cast(column, sa.Text))
    if issubclass(kind, sa.Boolean):
        return sa.case((column.is_(True), "True"), (column.is_(False), "False"), else_=None)
    if issubclass(kind, sa.Integer):
        return sa.cast(column, sa.Text)
    if issubclass(kind, sa.Date) and not issubclass(kind, sa.DateTime):
        return sa.func.to_char(column, "YYYY-MM-DD")
    return None


def _crlf(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """COPY's rows with CRLF ends: every LF outside quotes ends a row (an LF inside a quoted
    field stays as it is, as the writer leaves it). Quotes are counted across chunks."""
    inside = False
    for chunk in chunks:
        if b'"' not in chunk:
            yield chunk if inside else chunk.replace(b"\n", b"\r\n")
            continue
        parts = chunk.split(b'"')
        for index, part in enumerate(parts):
            if index:
                inside = not inside
            if not inside:
                parts[index] = part.replace(b"\n", b"\r\n")
        yield b'"'.join(parts)


def copy_csv(engine: sa.Engine, stmt: sa.Select, columns: list[str], money: set[str],
             currency: str) -> Callable[[], Iterator[str]] | None:
    """On PostgreSQL: a function that streams the CSV rows (no header) of ``stmt``, whose
    selected columns are named ``columns``, through COPY. None on SQLite or when a column's
    type is not one the writer's format is known for."""
    if engine.dialect.name != "postgresql":
        return None
    selected = {c.key: c for c in stmt.selected_columns}
    cells = []
    for name in columns:
        column = selected.get(name)
        cell = None if column is None else _cell(column, name in money, currency)
        if cell is None:
            return None
        cells.append(cell.label(name))
    formatted = stmt.with_only_columns(*cells, maintain_column_froms=True)

    def rows() -> Iterator[str]:
        # IN lists expanded into the text (COPY sends the statement as text, bound here).
        compiled = formatted.compile(dialect=engine.dialect,
                                     compile_kwargs={"render_postcompile": True})
        params = compiled.construct_params()
        for key, bind in compiled.binds.items():
            processor = bind.type.bind_processor(engine.dialect)
            if processor is not None and key in params:
                params[key] = processor(params[key])
        decoder = codecs.getincrementaldecoder("utf-8")()
        with engine.connect() as conn:
            raw = conn.connection.driver_connection
            with raw.cursor() as cur:
                # The report's settings (no JIT, a sort in memory), for this transaction.
                for name, value in REPORT_SETTINGS.items():
                    cur.execute(f"SET LOCAL {name} = '{value}'")
            with raw.cursor() as cur, cur.copy(
                    f"COPY ({compiled.string}) TO STDOUT WITH (FORMAT csv)", params) as copy:
                buffer, size = [], 0
                for data in _crlf(bytes(block) for block in copy):
                    buffer.append(data)
                    size += len(data)
                    if size >= CHUNK_BYTES:
                        yield decoder.decode(b"".join(buffer))
                        buffer, size = [], 0
                yield decoder.decode(b"".join(buffer), final=True)

    return rows
