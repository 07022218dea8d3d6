"""Per-customer facts for the retention report, kept in step with orders, contracts and events.

The retention report follows every customer whose first purchase falls in its period through
all their later orders. Read from the orders table that is a pass over every order (and the
visitor events behind them) per report; :class:`~warranty.customers.models.CustomerFacts` keeps, per
customer, the few figures the report needs instead, so it reads one row per customer.

Each row is a pure function of the base tables (:func:`facts_select`), recomputed for the
customers a transaction touched just before it commits:

- every ORM flush notes the customers whose orders, contracts or visitor events it wrote
  (:func:`note_flush`, registered by :func:`install`); Core bulk writers (order import, event
  intake, contract creation) call ``warranty.db.touched_customers.touch``;
- :func:`before_commit` then locks and recomputes those rows in the same transaction.

Concurrent writers: a customer's row is created if missing (``ON CONFLICT DO NOTHING``) and
locked (``FOR UPDATE``, in one order) before it is recomputed, so the recomputation, a new
statement under READ COMMITTED, sees every transaction that wrote that customer before; the
one that locks later recomputes after the earlier one committed, and nothing is lost. A
visitor's events and the orders that carry its id are written by different transactions
that share no customer row yet, so both sides first take a transaction-scoped advisory lock
on the visitor id: whichever commits second sees the other. SQLite runs one writer at a time
and needs neither.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from warranty.contracts.models import Contract
from warranty.core.timing import span
from warranty.customers.models import CustomerFacts
from warranty.db import touched_customers
from warranty.db.engine import Session
from warranty.db.sql import days_between, month_index
from warranty.db.touched_customers import touch
from warranty.experiment.models import VisitorEvent
from warranty.orders.models import PURCHASE_STATUSES, Order

COHORT_MONTHS = 12
CHUNK = 500  # customers per statement: bounded IN lists on both backends
_VISITOR_LOCKS = 0x7669  # advisory lock namespace (PostgreSQL) for visitor ids
# Order columns the facts depend on; other changes (Stripe ids, timestamps) need no refresh.
_ORDER_FIELDS = ("status", "purchase_date", "total_amount", "channel", "customer_email",
                 "visitor_id")
_o, _c, _v, _f = (Order.__table__, Contract.__table__, VisitorEvent.__table__,
                  CustomerFacts.__table__)


def purchases():
    """Orders that count as purchases: paid or refunded, not post-purchase plan orders."""
    return sa.and_(_o.c.status.in_(PURCHASE_STATUSES), _o.c.channel != "post_purchase",
                   _o.c.purchase_date.is_not(None))


def facts_select(emails: sa.BindParameter | None = None) -> sa.Select:
    """The columns of ``customer_facts`` computed from the base tables: for the rows whose
    emails are in the expanding parameter ``emails``, or for every customer with an order."""

    def mine(column):
        return column.in_(emails) if emails is not None else sa.true()

    paid = (sa.select(_o.c.customer_email.label("email"), _o.c.purchase_date.label("day"),
                      _o.c.total_amount.label("total"),
                      sa.func.min(_o.c.purchase_date).over(partition_by=_o.c.customer_email)
                      .label("first"))
            .where(purchases(), mine(_o.c.customer_email)).subquery("paid"))
    gap = days_between(paid.c.day, paid.c.first)
    month = month_index(paid.c.day) - month_index(paid.c.first)
    bit = sa.case((month.between(1, COHORT_MONTHS), sa.literal(1).op("<<")(month)))
    stats = (sa.select(paid.c.email, paid.c.first, sa.func.count().label("orders"),
                       sa.func.sum(paid.c.total).label("value"),
                       sa.func.min(sa.case((gap > 0, gap))).label("next_gap"),
                       sa.func.sum(sa.case((gap < 365, 1), else_=0)).label("year_one"),
                       # The sum of distinct powers of two is their bitwise or.
                       sa.func.sum(sa.distinct(bit)).label("months"))
             .group_by(paid.c.email, paid.c.first).subquery("stats"))
    plans = (sa.select(_o.c.customer_email.label("email"),
                       sa.func.min(_c.c.purchase_date).label("first_plan"))
             .select_from(_c.join(_o, _o.c.id == _c.c.order_id))
             .where(mine(_o.c.customer_email))
             .group_by(_o.c.customer_email).subquery("plans"))
    arms = (sa.select(_o.c.customer_email.label("email"), sa.func.min(_v.c.arm).label("arm"))
            .select_from(_o.join(_v, _v.c.visitor_id == _o.c.visitor_id))
            .where(mine(_o.c.customer_email))
            .group_by(_o.c.customer_email).subquery("arms"))
    # Every customer with an order; or, for a refresh, each row asked for, orders or not (a
    # customer whose only order moved to another email is left with an empty row).
    everyone = (sa.select(_o.c.customer_email.label("email")).distinct() if emails is None
                else sa.select(_f.c.email).where(_f.c.email.in_(emails))).subquery("everyone")
    return (sa.select(everyone.c.email, stats.c.first.label("first_purchase"),
                      sa.func.coalesce(stats.c.orders, 0).label("orders"),
                      sa.func.coalesce(stats.c.value, 0).label("value"), stats.c.next_gap,
                      sa.func.coalesce(stats.c.year_one, 0).label("year_one"),
                      sa.func.coalesce(stats.c.months, 0).label("months"),
                      plans.c.first_plan, arms.c.arm)
            .select_from(everyone.outerjoin(stats, stats.c.email == everyone.c.email)
                         .outerjoin(plans, plans.c.email == everyone.c.email)
                         .outerjoin(arms, arms.c.email == everyone.c.email)))


FACT_COLUMNS = ("first_purchase", "orders", "value", "next_gap", "year_one", "months",
                "first_plan", "arm")


def rebuild(conn: sa.Connection) -> int:
    """Recompute every customer's row from scratch (bulk loads); returns the row count."""
    conn.execute(_f.delete())
    conn.execute(_f.insert().from_select(["email", *FACT_COLUMNS], facts_select()))
    return conn.execute(sa.select(sa.func.count()).select_from(_f)).scalar()


def _written(session, obj, names: Iterable[str]) -> bool:
    """True for a new or deleted row, or a changed one whose flush wrote one of ``names``."""
    if obj not in session.dirty:
        return True
    attrs = sa.inspect(obj).attrs
    return any(attrs[name].history.has_changes() for name in names)


def _old_values(obj, name: str) -> list:
    """Values an attribute held before this flush (an order moved to another customer)."""
    return [v for v in sa.inspect(obj).attrs[name].history.deleted if v is not None]


def note_flush(session) -> None:
    """After a flush: note the customers whose orders, contracts or visitor events it wrote
    (the session still lists what it flushed, with each attribute's history)."""
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, Order) and _written(session, obj, _ORDER_FIELDS):
            touch(session, emails=[obj.customer_email, *_old_values(obj, "customer_email")],
                  visitors=[obj.visitor_id, *_old_values(obj, "visitor_id")])
        elif isinstance(obj, Contract) and _written(session, obj, ("order_id", "purchase_date")):
            touch(session, order_ids=[obj.order_id, *_old_values(obj, "order_id")])
        elif isinstance(obj, VisitorEvent) and _written(session, obj, ("visitor_id", "arm")):
            touch(session, visitors=[obj.visitor_id, *_old_values(obj, "visitor_id")])


def before_commit(session) -> None:
    """Recompute the rows of every customer the transaction touched (outermost commit only)."""
    if session.in_nested_transaction():
        return
    if session.new or session.dirty or session.deleted:
        session.flush()  # commit would flush after this hook: note those writes first
    noted = touched_customers.take(session)
    if noted:
        with span("customer_facts"):
            refresh(session.connection(), emails=noted.emails, visitors=noted.visitors,
                    order_ids=noted.order_ids)


def _chunks(values: list, size: int = CHUNK) -> Iterator[list]:
    """Consecutive slices of at most ``size``."""
    for start in range(0, len(values), size):
        yield values[start:start + size]


def _customers_of_visitors(conn: sa.Connection, visitors: list[str]) -> set[str]:
    """The customers with an order carrying one of these visitor ids.

    PostgreSQL: first transaction advisory locks on the visitor ids, taken in one order (the
    lock function is volatile, so it runs after the sort); the lookup is a statement of its
    own, so its snapshot follows the locks. Both go in one round trip (a pipeline): event
    intake pays one exchange with the server for this, not two.
    """
    if not visitors:
        return set()
    if conn.dialect.name != "postgresql":
        found: set[str] = set()
        for chunk in _chunks(visitors):
            found.update(conn.execute(sa.select(_o.c.customer_email).distinct()
                                      .where(_o.c.visitor_id.in_(chunk))).scalars())
        return found
    raw = conn.connection.driver_connection
    with raw.cursor() as lock, raw.cursor() as find:
        with raw.pipeline():
            lock.execute("SELECT pg_advisory_xact_lock(%s, hashtext(v)) "
                         "FROM unnest(%s::text[]) AS v ORDER BY hashtext(v), v",
                         (_VISITOR_LOCKS, visitors))
            find.execute("SELECT DISTINCT customer_email FROM orders "
                          "WHERE visitor_id = ANY(%s)", (visitors,))
        return {email for (email,) in find.fetchall()}


def _lock_rows(conn: sa.Connection, emails: list[str]) -> None:
    """Create missing rows, then lock them all (PostgreSQL; SQLite has one writer)."""
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    empty = {"orders": 0, "value": 0, "year_one": 0, "months": 0}
    conn.execute(insert(_f).values([{"email": e, **empty} for e in emails])
                 .on_conflict_do_nothing(index_elements=["email"]))
    if conn.dialect.name == "postgresql":
        # Byte order, as Python sorted the inserts: every writer locks in the same order.
        conn.execute(sa.select(_f.c.email).where(_f.c.email.in_(emails))
                     .order_by(_f.c.email.collate("C")).with_for_update())


def refresh(conn: sa.Connection, *, emails: Iterable[str] = (),
            visitors: Iterable[str] = (), order_ids: Iterable[int] = ()) -> None:
    """Recompute the rows of these customers, of the customers of these orders, and of every
    customer with an order carrying one of these visitor ids; locks as the module says."""
    targets = set(emails) | _customers_of_visitors(conn, sorted(set(visitors)))
    for chunk in _chunks(sorted(set(order_ids))):
        targets.update(conn.execute(sa.select(_o.c.customer_email)
                                    .where(_o.c.id.in_(chunk))).scalars())
    for chunk in _chunks(sorted(targets)):
        _lock_rows(conn, chunk)
        conn.execute(_recompute(), {"emails": chunk})


@functools.cache
def _recompute() -> sa.Update:
    """UPDATE the rows of the customers in the parameter ``emails`` that differ from their
    recomputation (built once: building it takes longer than running it)."""
    new = facts_select(sa.bindparam("emails", expanding=True)).subquery("new")
    return (sa.update(_f)
            .where(_f.c.email == new.c.email,
                   sa.or_(*(_f.c[name].is_distinct_from(new.c[name])
                            for name in FACT_COLUMNS)))
            .values({name: new.c[name] for name in FACT_COLUMNS}))


# --- registration ---------------------------------------------------------------------------


def _load_old_value(target, value, oldvalue, initiator) -> None:
    """Nothing: registered with active_history so that the replaced value is loaded."""


def _after_flush(session, _flush_context) -> None:
    """Remember customers whose orders, contracts or visitor events this flush wrote."""
    note_flush(session)


_LISTENERS = (("after_flush", _after_flush), ("before_commit", before_commit),
              ("after_rollback", touched_customers.forget))


def install(session_class: type = Session) -> None:
    """Keep customer facts in step in every session of ``session_class`` (the app's own,
    ``warranty.db.engine.Session``, never SQLAlchemy's global one). Called once by each
    entry point (the app factory, the CLI, the worker; the tests' conftest); idempotent."""
    # An order (or contract) moved to another customer must refresh the one it left too:
    # have the flush's history hold the old value even when it was not loaded (a rollback).
    for attribute in (Order.customer_email, Order.visitor_id, Contract.order_id):
        if not sa.event.contains(attribute, "set", _load_old_value):
            sa.event.listen(attribute, "set", _load_old_value, active_history=True)
    for name, listener in _LISTENERS:
        if not sa.event.contains(session_class, name, listener):
            sa.event.listen(session_class, name, listener)
