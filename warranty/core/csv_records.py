"""CSV text read into validated models, for the command-line imports."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from warranty.core.errors import ValidationFailed

M = TypeVar("M", bound=BaseModel)


def read_records(text: str, model: type[M], columns: Sequence[str],
                 required: int, context: dict | None = None) -> list[M]:
    """Rows of CSV ``text`` (with a header row) validated as ``model``.

    The header must name the first ``required`` of ``columns``; other columns are ignored,
    and an empty optional cell takes the model's default. Errors name the line.
    ``context`` is passed to the model's validators (the store currency, ...).
    """
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in columns[:required] if c not in header]
    if missing:
        raise ValidationFailed(f"CSV header lacks column(s) {missing}; expected {columns}")
    optional = set(columns[required:])
    records = []
    for row in reader:
        data = {}
        for key, value in row.items():
            key, value = (key or "").strip(), (value or "").strip()
            if key in columns and (value or key not in optional):
                data[key] = value
        try:
            records.append(model.model_validate(data, context=context))
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            raise ValidationFailed(f"CSV line {reader.line_num}: "
                                   f"{'.'.join(map(str, err['loc']))}: "
                                   f"{err['msg'].removeprefix('Value error, ')}") from None
    return records
