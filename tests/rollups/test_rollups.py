"""The rollups (warranty.rollups) add up, at every moment, to what the facts give (deferred
revenue: the contracts and refunds; retention: customer_facts), whoever writes them (the ORM,
Core statements), however they change, and with writers and compactions at the same time."""

from __future__ import annotations

from datetime import date, timedelta

import sqlalchemy as sa
from sqlmodel import select

from tests.races import postgres_only, together
from tests.report_history import plan_sale
from warranty.contracts.models import Contract
from warranty.db.engine import Session, get_engine
from warranty.orders.models import Order, Refund
from warranty.reports.revenue import PlanHistory
from warranty.rollups import deferred, retention
from warranty.rollups.models import DeferredRollup

FIGURES = ("net", "tax", "touching", "at_end")


def _keyed(rows) -> dict:
    """(category, month end) → figures, leaving out sums that are all zero."""
    return {(cat, day if isinstance(day, date) else date.fromisoformat(day)): tuple(
        int(v) for v in values) for cat, day, *values in rows if any(values)}


def _rollup(conn: sa.Connection) -> dict:
    """The rollup's rows summed per (category, month end)."""
    t = DeferredRollup.__table__
    return _keyed(conn.execute(
        sa.select(t.c.warranty_category, t.c.month_end,
                  *(sa.func.sum(t.c[name]) for name in FIGURES))
        .group_by(t.c.warranty_category, t.c.month_end)).all())


def _facts(conn: sa.Connection) -> dict:
    """What the contracts and refunds give now."""
    return _keyed(conn.exec_driver_sql(deferred.from_facts(conn)).all())


def _check(engine: sa.Engine) -> dict:
    """The rollup equals the facts; returns it."""
    with engine.connect() as conn:
        rolled, facts = _rollup(conn), _facts(conn)
    assert rolled == facts
    return rolled


def test_the_rollup_follows_every_write_to_contracts_and_refunds(db, database_url):
    engine = get_engine(database_url)
    jan = date(2025, 1, 10)
    plain, = plan_sale(db, price=39800, tax=3618, sold_on=jan, term_months=36)
    free_look, = plan_sale(db, price=9800, sold_on=jan, category="phones",
                           cancel=(jan + timedelta(days=12), 9800))
    pro_rata, = plan_sale(db, price=12000, tax=1090, refund_tax=500, sold_on=date(2025, 3, 31),
                          term_months=12, cancel=(date(2025, 9, 1), 5000))
    plan_sale(db, price=5000, sold_on=date(2025, 2, 28), purchase_date=date(2025, 1, 2),
              term_months=24, category="furniture", quantity=2)  # post-purchase, two units
    plan_sale(db, price=7000, sold_on=date(2025, 4, 30), booked_on=date(2025, 6, 1),
              refund_booked_on=date(2025, 7, 3), cancel=(date(2025, 5, 20), 6000))
    rolled = _check(engine)
    # January: one electronics plan, deferred as the revenue rule has it on each part.
    history = PlanHistory(price=39800, tax=3618, sold_on=jan, term_end=plain.term_end)
    assert rolled[("electronics", date(2025, 1, 31))] == (
        history.part("net").deferred_at(date(2025, 1, 31)),
        history.part("tax").deferred_at(date(2025, 1, 31)), 1, 1)
    with engine.begin() as conn:  # Core statements, as bulk writers and tools issue them
        conn.execute(sa.delete(Refund).where(Refund.contract_id == free_look.id))
        conn.execute(sa.update(Refund).where(Refund.contract_id == pro_rata.id)
                     .values(booked_on=date(2025, 10, 15)))
        conn.execute(sa.update(Contract).where(Contract.id == plain.id)
                     .values(price=49800, booked_on=date(2025, 2, 3)))
        conn.execute(sa.update(Contract).where(Contract.id == plain.id)
                     .values(status="expired"))  # not a money field: no rows
    _check(engine)
    with engine.begin() as conn:
        conn.execute(sa.delete(Contract).where(Contract.id == free_look.id))
    before = _check(engine)
    with engine.begin() as conn:
        removed = deferred.compact(conn)
        count = conn.execute(sa.select(sa.func.count()).select_from(DeferredRollup)).scalar()
    assert removed > 0 and count == len(before)
    assert _check(engine) == before
    with engine.begin() as conn:
        assert deferred.compact(conn) == 0  # nothing left to fold
        assert deferred.backfill(conn) == count  # from the facts: the same rows
    assert _check(engine) == before


def test_concurrent_writers_and_compactions_keep_the_rollup_exact(db, database_url):
    """Sales and cancellations in one category and months, on connections of their own,
    released together with compactions: the rollup is the facts' sum afterwards."""
    postgres_only(database_url)
    engine = get_engine(database_url)
    day = date(2025, 5, 15)
    existing = [plan_sale(db, price=10000 + n, sold_on=day, term_months=24)[0]
                for n in range(6)]  # the rules are loaded once, before the threads

    def sell(n: int):
        def call():
            with Session(engine, expire_on_commit=False) as session:
                cancel = (day + timedelta(days=40), 3000) if n % 2 else None
                return plan_sale(session, price=20000 + n, tax=n, sold_on=day, cancel=cancel,
                                 term_months=36, quantity=1 + n % 3)
        return call

    def cancel(contract: Contract):
        def call():
            with Session(engine) as session:
                session.add(Refund(contract_id=contract.id, order_id=contract.order_id,
                                   amount=4000, currency="jpy", cancel_date=day + timedelta(
                                       days=60), booked_on=day + timedelta(days=60),
                                   status="succeeded", idempotency_key=f"k-{contract.id}"))
                session.commit()
        return call

    def compact():
        with engine.begin() as conn:
            return deferred.compact(conn)

    calls = [*(sell(n) for n in range(8)), *(cancel(c) for c in existing), compact, compact]
    together(*calls)
    rolled = _check(engine)
    sold = 6 + sum(1 + n % 3 for n in range(8))
    assert rolled[("electronics", date(2025, 5, 31))][2] == sold
    compact()
    assert _check(engine) == rolled


def _retention(conn: sa.Connection) -> tuple[dict, dict]:
    """The retention rollup summed per key, and what customer_facts gives now."""
    keys = ", ".join(retention.KEYS)
    sums = ", ".join(f"SUM({name})" for name in retention.SUMS)
    rolled = conn.exec_driver_sql(f"SELECT {keys}, {sums} FROM retention_rollup "
                                  f"GROUP BY {keys}").all()

    def keyed(rows):
        return {(str(r[0]), r[1], r[2]): tuple(int(v) for v in r[3:]) for r in rows
                if any(r[3:])}

    return keyed(rolled), keyed(conn.exec_driver_sql(retention.from_facts()).all())


def test_the_retention_rollup_follows_customer_facts(db, database_url):
    engine = get_engine(database_url)
    for n, (day, email, visitor) in enumerate([
            (date(2025, 1, 5), "a@example.com", None), (date(2025, 1, 20), "a@example.com", None),
            (date(2025, 3, 1), "a@example.com", None), (date(2025, 1, 5), "b@example.com", "vb"),
            (date(2025, 8, 9), "c@example.com", "vc"), (date(2026, 2, 1), "b@example.com", "vb")]):
        plan_sale(db, price=1000 + n, sold_on=day, email=email, visitor_id=visitor)
    with engine.connect() as conn:
        rolled, facts = _retention(conn)
    assert rolled == facts and len(facts) == 2
    # a@ and b@ started on Jan 5 with a plan: two customers, 3 + 2 purchases.
    assert facts[("2025-01-05", 1, None)][:2] == (2, 5)
    order = db.exec(select(Order).where(Order.customer_email == "a@example.com",
                                        Order.purchase_date == date(2025, 1, 5))).one()
    order.status = "cancelled"  # no longer a purchase: a@ starts on Jan 20
    db.add(order)
    db.commit()
    with engine.connect() as conn:
        rolled, facts = _retention(conn)
    assert rolled == facts and ("2025-01-20", 0, None) in facts
    with engine.begin() as conn:
        assert retention.compact(conn) > 0
    with engine.connect() as conn:
        assert _retention(conn)[0] == facts


def test_concurrent_purchases_keep_the_retention_rollup_exact(db, database_url):
    """Purchases by the same and by different customers, released together: each
    customer's facts are recomputed under their lock, and the rollup follows every one."""
    postgres_only(database_url)
    engine = get_engine(database_url)
    plan_sale(db, price=1000, sold_on=date(2025, 1, 1), email="shared@example.com")

    def buy(n: int):
        def call():
            with Session(engine, expire_on_commit=False) as session:
                email = "shared@example.com" if n % 2 else f"own{n}@example.com"
                plan_sale(session, price=2000 + n, sold_on=date(2025, 1, 2 + n), email=email)
        return call

    together(*(buy(n) for n in range(10)))
    with engine.connect() as conn:
        rolled, facts = _retention(conn)
    assert rolled == facts
    assert sum(v[0] for v in facts.values()) == 1 + 5
