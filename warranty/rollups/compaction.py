"""Folding a rollup's rows: triggers only ever add rows (concurrent writers never wait on one
another), and this sums each key's rows into one, dropping keys whose sums are all zero."""

from __future__ import annotations

import sqlalchemy as sa


def compact(conn: sa.Connection, table: str, keys: tuple[str, ...], sums: tuple[str, ...],
            nullable: tuple[str, ...] = ()) -> int:
    """Fold each key of ``table`` with several rows into one; the number of rows removed.

    PostgreSQL: one statement (delete the rows of the keys that have several, insert their
    sums), so rows written after its snapshot stay as they are and two compactions at once
    cannot double a row (the second skips the rows the first deleted). SQLite runs one
    writer at a time: the table is summed into a temporary one and written back. Text keys
    in ``nullable`` compare with NULL as the empty text (no key holds the empty text).
    """
    key_list, sum_list = ", ".join(keys), ", ".join(sums)
    columns = f"{key_list}, {sum_list}"
    summed = ", ".join(f"SUM({name}) AS {name}" for name in sums)
    nonzero = " OR ".join(f"{name} <> 0" for name in sums)
    if conn.dialect.name == "postgresql":
        def side(alias: str, key: str) -> str:
            column = f"{alias}.{key}"
            return f"COALESCE({column}, '')" if key in nullable else column

        same = " AND ".join(f"{side('d', k)} = {side('many', k)}" for k in keys)
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
    several = conn.exec_driver_sql(f"SELECT 1 FROM {table} GROUP BY {key_list} "
                                   "HAVING COUNT(*) > 1 LIMIT 1").first()
    if several is None:
        return 0
    before = conn.exec_driver_sql(f"SELECT COUNT(*) FROM {table}").scalar()
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS temp.folded_{table}")
    conn.exec_driver_sql(f"CREATE TEMP TABLE folded_{table} AS SELECT {key_list}, {summed} "
                         f"FROM {table} GROUP BY {key_list}")
    conn.exec_driver_sql(f"DELETE FROM {table}")
    conn.exec_driver_sql(f"INSERT INTO {table} ({columns}) SELECT {columns} "
                         f"FROM temp.folded_{table} WHERE {nonzero}")
    conn.exec_driver_sql(f"DROP TABLE temp.folded_{table}")
    after = conn.exec_driver_sql(f"SELECT COUNT(*) FROM {table}").scalar()
    return int(before - after)
