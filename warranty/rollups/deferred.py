"""Deferred revenue at each month end, kept by triggers in the facts' own transaction.

The finance report needs, per warranty category, the deferred balance at each month end of
its period and whether any contract was in the books in the month (docs/domain/revenue.md).
Worked out from the facts, that is every live contract at every month end: millions of
(contract, month) pairs a year. Here each contract contributes its rows once, when it is
written, and the report reads one row per (category, month end).

What a contract contributes to month end m, in the books from its booking date on
(``booked``) until its last change (``last``: its refund's booking, else the term end, or
the booking for a sale booked after its term ended):

- ``net`` / ``tax``: its deferred revenue at the end of m on each part of the money
  (``revenue.deferred_sql``): 0 once the refund is booked or the term is over, else
  price − pro_rata(price, days of the span elapsed, span days);
- ``touching`` 1 for every month from the booking's to the last change's;
- ``at_end`` 1 when the last change is on m or later.

Triggers (PostgreSQL functions, SQLite trigger bodies; both from :func:`ddl`) add a
contract's rows when it is inserted, take them away when it is deleted, and swap them when
its money or dates change; a refund row swaps its contract's rows without a refund for rows
with one. Rows are only ever inserted, so concurrent writers never wait on each other;
:func:`compact` (the worker, after bulk loads) folds a (category, month end)'s rows into one.
Every statement here also runs on the migration's connection (the backfill).
"""

from __future__ import annotations

import sqlalchemy as sa

from warranty.rollups import compaction

COLUMNS = "warranty_category, month_end, net, tax, touching, at_end"
# SQLite triggers cannot use WITH (nor has SQLite generate_series): a contract's months are
# numbered from a constant JSON array, so a contract may stay in the books up to 50 years.
MAX_MONTHS = 600
_NUMBERS = "[" + ",".join(str(n) for n in range(MAX_MONTHS)) + "]"


def _days(dialect: str, later: str, earlier: str) -> str:
    """Whole days from ``earlier`` to ``later`` (SQL text)."""
    if dialect == "postgresql":
        return f"({later} - {earlier})"
    return f"CAST(julianday({later}) - julianday({earlier}) AS INTEGER)"


def _month_index(dialect: str, day: str) -> str:
    """year × 12 + month of a date (SQL text)."""
    if dialect == "postgresql":
        return (f"CAST(EXTRACT(YEAR FROM {day}) * 12 + EXTRACT(MONTH FROM {day}) AS INTEGER)")
    return (f"(CAST(strftime('%Y', {day}) AS INTEGER) * 12 + "
            f"CAST(strftime('%m', {day}) AS INTEGER))")


def _month_end_after(dialect: str, day: str, months: str) -> str:
    """The last day of the month ``months`` after the month of ``day`` (SQL text)."""
    if dialect == "postgresql":
        return (f"CAST(date_trunc('month', CAST({day} AS timestamp)) + "
                f"make_interval(months => {months} + 1) - interval '1 day' AS date)")
    return f"date({day}, 'start of month', '+' || ({months}) || ' months', '+1 month', '-1 day')"


def _profile(dialect: str, *, category: str, price: str, tax: str, sold: str, booked: str,
             end: str, refund: str, sign: int, source: str = "", where: str = "",
             numbers: str | None = None) -> str:
    """``SELECT`` of one contract's rows, each field times ``sign``: SQL expressions for the
    contract's fields (``refund`` is its refund's booking date, NULL without one), the
    tables they come from (``source``) and the month numbers ``n`` (0: the booking's month)
    to the month of its last change."""
    pg = dialect == "postgresql"
    last = f"COALESCE({refund}, CASE WHEN {booked} > {end} THEN {booked} ELSE {end} END)"
    months = f"({_month_index(dialect, last)} - {_month_index(dialect, booked)})"
    if numbers is None:
        numbers = (f"generate_series(0, {months}) AS n(value)" if pg
                   else f"json_each('{_NUMBERS}') AS n")
    day = _month_end_after(dialect, booked, "n.value")
    elapsed = _days(dialect, day, sold) + " + 1"
    clamped = f"GREATEST({elapsed}, 0)" if pg else f"MAX({elapsed}, 0)"
    span = _days(dialect, end, sold) + " + 1"

    def deferred(amount: str) -> str:
        wide = f"CAST({amount} AS BIGINT)" if pg else f"({amount})"
        return (f"{sign} * CASE WHEN {refund} IS NOT NULL AND {refund} <= {day} THEN 0 "
                f"WHEN {day} >= {end} THEN 0 "
                f"ELSE {wide} - {wide} * ({clamped}) / ({span}) END")

    conditions = [f"n.value <= {months}", *([where] if where else [])]
    return (f"SELECT {category} AS warranty_category, {day} AS month_end, "
            f"{deferred(f'{price} - {tax}')} AS net, {deferred(tax)} AS tax, "
            f"{sign} AS touching, "
            f"{sign} * CASE WHEN {day} <= {last} THEN 1 ELSE 0 END AS at_end "
            f"FROM {source + ', ' if source else ''}{numbers} "
            f"WHERE {' AND '.join(conditions)}")


def _of_row(row: str, refund: str) -> dict:
    """A contract's fields as columns of a trigger's NEW or OLD row."""
    return {"category": f"{row}.warranty_category", "price": f"{row}.price",
            "tax": f"{row}.tax", "sold": f"{row}.plan_sold_on", "booked": f"{row}.booked_on",
            "end": f"{row}.term_end", "refund": refund}


def _of_contract(contract_id: str, refund: str) -> dict:
    """A contract's fields read by id (a refund's trigger; no row for a NULL id)."""
    return {**_of_row("c", refund), "source": "contract c",
            "where": f"c.id = {contract_id}"}


def _refund_of(row: str) -> str:
    """SQL: the booking date of the refund of the contract in ``row`` (NULL without one)."""
    return f"(SELECT r.booked_on FROM refund r WHERE r.contract_id = {row}.id)"


CONTRACT_FIELDS = "warranty_category, price, tax, plan_sold_on, booked_on, term_end"
INSERT = f"INSERT INTO deferred_rollup ({COLUMNS}) "


def ddl(dialect: str) -> list[str]:
    """The statements that create the triggers on ``dialect`` (postgresql or sqlite)."""

    def add(fields: dict, sign: int) -> str:
        return INSERT + _profile(dialect, sign=sign, **fields)

    contract_in = add(_of_row("NEW", _refund_of("NEW")), 1)
    contract_out = add(_of_row("OLD", _refund_of("OLD")), -1)
    refund_in = [add(_of_contract("NEW.contract_id", "NULL"), -1),
                 add(_of_contract("NEW.contract_id", "NEW.booked_on"), 1)]
    refund_out = [add(_of_contract("OLD.contract_id", "OLD.booked_on"), -1),
                  add(_of_contract("OLD.contract_id", "NULL"), 1)]
    if dialect == "postgresql":
        return [
            "CREATE FUNCTION deferred_rollup_contract() RETURNS trigger LANGUAGE plpgsql AS $$\n"
            "BEGIN\n"
            f"  IF TG_OP IN ('UPDATE', 'DELETE') THEN {contract_out}; END IF;\n"
            f"  IF TG_OP IN ('UPDATE', 'INSERT') THEN {contract_in}; END IF;\n"
            "  RETURN NULL;\nEND $$",
            "CREATE TRIGGER deferred_rollup_contract AFTER INSERT OR DELETE OR UPDATE OF "
            f"{CONTRACT_FIELDS} ON contract FOR EACH ROW "
            "EXECUTE FUNCTION deferred_rollup_contract()",
            "CREATE FUNCTION deferred_rollup_refund() RETURNS trigger LANGUAGE plpgsql AS $$\n"
            "BEGIN\n"
            "  IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.contract_id IS NOT NULL THEN "
            f"{refund_out[0]}; {refund_out[1]}; END IF;\n"
            "  IF TG_OP IN ('UPDATE', 'INSERT') AND NEW.contract_id IS NOT NULL THEN "
            f"{refund_in[0]}; {refund_in[1]}; END IF;\n"
            "  RETURN NULL;\nEND $$",
            "CREATE TRIGGER deferred_rollup_refund AFTER INSERT OR DELETE OR UPDATE OF "
            "contract_id, booked_on ON refund FOR EACH ROW "
            "EXECUTE FUNCTION deferred_rollup_refund()",
        ]
    return [
        f"CREATE TRIGGER deferred_rollup_contract_insert AFTER INSERT ON contract BEGIN "
        f"{contract_in}; END",
        f"CREATE TRIGGER deferred_rollup_contract_delete AFTER DELETE ON contract BEGIN "
        f"{contract_out}; END",
        f"CREATE TRIGGER deferred_rollup_contract_update AFTER UPDATE OF {CONTRACT_FIELDS} "
        f"ON contract BEGIN {contract_out}; {contract_in}; END",
        "CREATE TRIGGER deferred_rollup_refund_insert AFTER INSERT ON refund "
        f"WHEN NEW.contract_id IS NOT NULL BEGIN {refund_in[0]}; {refund_in[1]}; END",
        "CREATE TRIGGER deferred_rollup_refund_delete AFTER DELETE ON refund "
        f"WHEN OLD.contract_id IS NOT NULL BEGIN {refund_out[0]}; {refund_out[1]}; END",
        "CREATE TRIGGER deferred_rollup_refund_update AFTER UPDATE OF contract_id, booked_on "
        f"ON refund BEGIN {'; '.join(refund_out + refund_in)}; END",
    ]


def drop_ddl(dialect: str) -> list[str]:
    """The statements that drop the triggers (the migration's downgrade)."""
    if dialect == "postgresql":
        return ["DROP TRIGGER IF EXISTS deferred_rollup_contract ON contract",
                "DROP TRIGGER IF EXISTS deferred_rollup_refund ON refund",
                "DROP FUNCTION IF EXISTS deferred_rollup_contract()",
                "DROP FUNCTION IF EXISTS deferred_rollup_refund()"]
    return [f"DROP TRIGGER IF EXISTS deferred_rollup_{name}"
            for name in ("contract_insert", "contract_delete", "contract_update",
                         "refund_insert", "refund_delete", "refund_update")]


def from_facts(conn: sa.Connection) -> str:
    """``SELECT`` of the summed rows (category, month end, figures) worked out from the
    contracts and refunds as they are now: what the rollup must add up to."""
    dialect = conn.dialect.name
    fields = {**_of_row("c", "r.booked_on"),
              "source": "contract c LEFT JOIN refund r ON r.contract_id = c.id"}
    prefix = ""
    if dialect != "postgresql":  # outside a trigger: numbers from a recursive CTE
        # Enough month numbers for the contract longest in the books (booking to last change).
        top = int(conn.exec_driver_sql(
            "SELECT COALESCE(MAX(julianday(COALESCE(r.booked_on, CASE WHEN c.booked_on > "
            "c.term_end THEN c.booked_on ELSE c.term_end END)) - julianday(c.booked_on)), 0) "
            "FROM contract c LEFT JOIN refund r ON r.contract_id = c.id").scalar() or 0)
        prefix = (f"WITH RECURSIVE numbers(value) AS (SELECT 0 UNION ALL SELECT value + 1 "
                  f"FROM numbers WHERE value < {top // 28 + 2}) ")
        fields["numbers"] = "numbers AS n"
    profile = _profile(dialect, sign=1, **fields)
    return (f"{prefix}SELECT warranty_category, month_end, SUM(net) AS net, SUM(tax) AS tax, "
            f"SUM(touching) AS touching, SUM(at_end) AS at_end FROM ({profile}) AS p "
            "GROUP BY warranty_category, month_end")


def backfill(conn: sa.Connection) -> int:
    """Replace the rollup by the rows the facts give (the migration, after bulk loads)."""
    if conn.dialect.name == "postgresql":  # no writer may slip in between the two
        conn.exec_driver_sql("LOCK TABLE contract, refund, deferred_rollup "
                             "IN SHARE ROW EXCLUSIVE MODE")
    conn.exec_driver_sql("DELETE FROM deferred_rollup")
    result = conn.exec_driver_sql(f"INSERT INTO deferred_rollup ({COLUMNS}) "
                                  f"SELECT {COLUMNS} FROM ({from_facts(conn)}) "
                                  "AS f WHERE net <> 0 OR tax <> 0 OR touching <> 0 "
                                  "OR at_end <> 0")
    return result.rowcount


def compact(conn: sa.Connection) -> int:
    """Fold each (category, month end)'s rows into one; the number of rows removed."""
    return compaction.compact(conn, "deferred_rollup", ("warranty_category", "month_end"),
                              ("net", "tax", "touching", "at_end"))

