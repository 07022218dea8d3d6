"""The retention report's sums by first-purchase day, kept by a trigger on customer_facts.

``customer_facts`` holds one row per customer (warranty.customers.facts), recomputed in the
transaction of every write to their orders; the retention report summed a period's rows of it
per (first-purchase day, plan group, arm), hundreds of thousands of rows a year. A trigger on
``customer_facts`` adds, in that same transaction, the new row's figures to
``retention_rollup`` and takes the old row's away (rows are only ever inserted, so concurrent
writers never wait on each other; :func:`compact` folds them), and the report reads a few
rows per day instead.
"""

from __future__ import annotations

import sqlalchemy as sa

from warranty.rollups import compaction

WINDOWS = (90, 180, 365)
MONTHS = 12
KEYS = ("first_purchase", "with_plan", "arm")
SUMS = ("customers", "orders", "value", "year_one", *(f"back_{d}" for d in WINDOWS),
        *(f"m{m}" for m in range(1, MONTHS + 1)))
FACT_FIELDS = ("first_purchase", "first_plan", "arm", "orders", "value", "year_one",
               "next_gap", "months")


def _contribution(row: str, sign: int) -> str:
    """The select list of one customer_facts row's figures (``row`` is NEW, OLD or a table
    alias), each times ``sign``."""
    figures = [f"{sign}", f"{sign} * {row}.orders", f"{sign} * {row}.value",
               f"{sign} * COALESCE({row}.year_one, 0)",
               *(f"{sign} * CASE WHEN {row}.next_gap <= {d} THEN 1 ELSE 0 END"
                 for d in WINDOWS),
               *(f"{sign} * CASE WHEN ({row}.months & {1 << m}) <> 0 THEN 1 ELSE 0 END"
                 for m in range(1, MONTHS + 1))]
    keys = [f"{row}.first_purchase",
            f"CASE WHEN {row}.first_plan = {row}.first_purchase THEN 1 ELSE 0 END",
            f"{row}.arm"]
    return ", ".join(f"{expr} AS {name}" for expr, name in zip([*keys, *figures],
                                                               [*KEYS, *SUMS], strict=True))


INSERT = f"INSERT INTO retention_rollup ({', '.join((*KEYS, *SUMS))}) "


def _add(row: str, sign: int) -> str:
    """The statement adding ``row``'s figures times ``sign`` (nothing without a purchase)."""
    return f"{INSERT}SELECT {_contribution(row, sign)} WHERE {row}.first_purchase IS NOT NULL"


def ddl(dialect: str) -> list[str]:
    """The statements that create the trigger on ``dialect``."""
    changed = " OR ".join(f"OLD.{f} IS DISTINCT FROM NEW.{f}" if dialect == "postgresql"
                          else f"OLD.{f} IS NOT NEW.{f}" for f in FACT_FIELDS)
    if dialect == "postgresql":
        return [
            "CREATE FUNCTION retention_rollup_facts() RETURNS trigger LANGUAGE plpgsql AS $$\n"
            "BEGIN\n"
            f"  IF TG_OP = 'UPDATE' AND NOT ({changed}) THEN RETURN NULL; END IF;\n"
            f"  IF TG_OP IN ('UPDATE', 'DELETE') THEN {_add('OLD', -1)}; END IF;\n"
            f"  IF TG_OP IN ('UPDATE', 'INSERT') THEN {_add('NEW', 1)}; END IF;\n"
            "  RETURN NULL;\nEND $$",
            "CREATE TRIGGER retention_rollup_facts AFTER INSERT OR DELETE OR UPDATE "
            "ON customer_facts FOR EACH ROW EXECUTE FUNCTION retention_rollup_facts()",
        ]
    return [
        "CREATE TRIGGER retention_rollup_insert AFTER INSERT ON customer_facts BEGIN "
        f"{_add('NEW', 1)}; END",
        "CREATE TRIGGER retention_rollup_delete AFTER DELETE ON customer_facts BEGIN "
        f"{_add('OLD', -1)}; END",
        f"CREATE TRIGGER retention_rollup_update AFTER UPDATE ON customer_facts WHEN {changed} "
        f"BEGIN {_add('OLD', -1)}; {_add('NEW', 1)}; END",
    ]


def drop_ddl(dialect: str) -> list[str]:
    """The statements that drop the trigger."""
    if dialect == "postgresql":
        return ["DROP TRIGGER IF EXISTS retention_rollup_facts ON customer_facts",
                "DROP FUNCTION IF EXISTS retention_rollup_facts()"]
    return [f"DROP TRIGGER IF EXISTS retention_rollup_{op}"
            for op in ("insert", "delete", "update")]


def from_facts() -> str:
    """``SELECT`` of the summed rows per key worked out from customer_facts as it is now."""
    summed = ", ".join(f"SUM({name}) AS {name}" for name in SUMS)
    return (f"SELECT {', '.join(KEYS)}, {summed} FROM (SELECT {_contribution('f', 1)} "
            "FROM customer_facts f WHERE f.first_purchase IS NOT NULL) AS c "
            f"GROUP BY {', '.join(KEYS)}")


def backfill(conn: sa.Connection) -> int:
    """Replace the rollup by the rows customer_facts gives (the migration)."""
    if conn.dialect.name == "postgresql":  # no writer may slip in between the two
        conn.exec_driver_sql("LOCK TABLE customer_facts, retention_rollup "
                             "IN SHARE ROW EXCLUSIVE MODE")
    conn.exec_driver_sql("DELETE FROM retention_rollup")
    columns = ", ".join((*KEYS, *SUMS))
    return conn.exec_driver_sql(f"INSERT INTO retention_rollup ({columns}) SELECT {columns} "
                                f"FROM ({from_facts()}) AS f").rowcount


def compact(conn: sa.Connection) -> int:
    """Fold each key's rows into one; the number of rows removed."""
    return compaction.compact(conn, "retention_rollup", KEYS, SUMS, nullable=("arm",))
