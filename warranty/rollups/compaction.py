"""Folding a rollup's rows: triggers only ever add rows (concurrent writers never wait on one
another), and this sums each key's rows into one, dropping keys whose sums are all zero."""

from __future__ import annotations

import sqlalchemy as sa


def compact(conn: sa.Connection, table: str, keys: tuple[str, ...],
            sums: tuple[str, ...]) -> int:
    """Fold each key of ``table`` with several rows into one; the number of rows removed.

    PostgreSQL: one statement (delete the keys' rows, insert their sums), so rows written
    after its snapshot stay as they are and two compactions at once cannot double a row
    (the second skips rows the first deleted). SQLite runs one writer at a time: read,
    delete, write back. Keys compare with NULLs equal (``IS NOT DISTINCT FROM`` / ``IS``).
    """
    key_list, sum_list = ", ".join(keys), ", ".join(sums)
    columns = f"{key_list}, {sum_list}"
    summed = ", ".join(f"SUM({name}) AS {name}" for name in sums)
    nonzero = " OR ".join(f"{name} <> 0" for name in sums)
    if conn.dialect.name == "postgresql":
        same = " AND ".join(f"d.{k} IS NOT DISTINCT FROM many.{k}" for k in keys)
        result = conn.exec_driver_sql(
            f"WITH many AS (SELECT {key_list} FROM {table} GROUP BY {key_list} "
            f"HAVING COUNT(*) > 1), "
            f"gone AS (DELETE FROM {table} d USING many WHERE {same} RETURNING d.*), "
            f"summed AS (SELECT {key_list}, {summed}, COUNT(*) AS n FROM gone "
            f"GROUP BY {key_list}), "
            f"kept AS (INSERT INTO {table} ({columns}) SELECT {columns} FROM summed "
            f"WHERE {nonzero} RETURNING 1) "
            "SELECT COALESCE(SUM(n), 0) - (SELECT COUNT(*) FROM kept) FROM summed")
        return int(result.scalar() or 0)
    many = conn.exec_driver_sql(
        f"SELECT {key_list}, {summed}, COUNT(*) FROM {table} GROUP BY {key_list} "
        "HAVING COUNT(*) > 1").all()
    same = " AND ".join(f"{k} IS ?" for k in keys)
    marks = ", ".join("?" for _ in (*keys, *sums))
    removed = 0
    for row in many:
        key, values, count = row[:len(keys)], row[len(keys):-1], row[-1]
        conn.exec_driver_sql(f"DELETE FROM {table} WHERE {same}", tuple(key))
        removed += count
        if any(values):
            conn.exec_driver_sql(f"INSERT INTO {table} ({columns}) VALUES ({marks})",
                                 (*key, *values))
            removed -= 1
    return removed
