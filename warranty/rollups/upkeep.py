"""Rollup upkeep the worker runs each pass: fold the rows the triggers added."""

from __future__ import annotations

from warranty.db.engine import get_write_engine
from warranty.rollups import deferred, retention


def compact_database(url: str) -> int:
    """Fold every rollup's rows, in a writing transaction of its own on the database at
    ``url``; the number of rows removed."""
    with get_write_engine(url).begin() as conn:
        return deferred.compact(conn) + retention.compact(conn)
