"""Reports write nothing: every registered report, in every export format, runs to its last
byte on a connection the database itself keeps read-only.

SQLite connections get ``PRAGMA query_only=ON``; PostgreSQL connections make every transaction
``READ ONLY``. Ledger exports open their own streaming connection on the same engine, so they
are read-only too. The reconciliation report reads Stripe (the stand-in) as well.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool
from sqlmodel import Session, select

from tests.report_history import payout, plan_sale
from warranty import reports
from warranty.contracts.models import Contract
from warranty.payments.client import make_client
from warranty.reports import Context, parse_period, run_report
from warranty.reports.export import FORMATS, chunks


def read_only_engine(url: str) -> sa.Engine:
    """An engine whose every connection refuses writes, by the database's own rule."""
    engine = sa.create_engine(url, poolclass=NullPool)

    @sa.event.listens_for(engine, "connect")
    def _read_only(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        if engine.dialect.name == "sqlite":
            cursor.execute("PRAGMA query_only=ON")
        else:
            cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        cursor.close()
        if engine.dialect.name != "sqlite":
            dbapi_connection.commit()

    return engine


def _history(db) -> None:
    """Sales in two categories, a cancellation with its refund, a paid claim."""
    (sold,) = plan_sale(db, price=3650, sold_on=date(2026, 1, 10), payment_intent_id="pi_a",
                        visitor_id="v-1")
    plan_sale(db, price=3650, sold_on=date(2026, 1, 12), category="phones",
              payment_intent_id="pi_b", cancel=(date(2026, 2, 3), 1000))
    payout(db, db.exec(select(Contract).where(Contract.id == sold.id)).one(), amount=2000,
           paid_at=datetime(2026, 2, 20, 3, tzinfo=UTC))


def test_the_connection_refuses_writes(database_url):
    engine = read_only_engine(database_url)
    with pytest.raises(sa.exc.DBAPIError), Session(engine) as session:
        session.add(Contract(order_id=1, plan_line_id=1, product_line_id=1, unit_index=0,
                             customer_email="a@example.com", sku="S", product_title="T",
                             product_price=1, warranty_category="c", plan_code="p",
                             coverage="standard", term_months=12, price=1, currency="jpy",
                             rule_set_version=1, purchase_date=date(2026, 1, 1),
                             plan_sold_on=date(2026, 1, 1), booked_on=date(2026, 1, 1),
                             term_end=date(2027, 1, 1), breakdown_start=date(2027, 1, 1),
                             waiting_until=date(2026, 1, 1)))
        session.commit()
    engine.dispose()


def test_every_report_in_every_format_writes_nothing(database_url, db, stripe_settings):
    _history(db)
    engine = read_only_engine(database_url)
    period = parse_period(date(2026, 1, 1), date(2026, 3, 31))
    names = reports.names()
    assert len(names) >= 10  # every report registered, not an empty loop
    try:
        for name in names:
            for fmt in FORMATS:
                with Session(engine) as session:
                    result = run_report(name, Context(
                        session=session, settings=stripe_settings, period=period,
                        stripe_client=make_client(stripe_settings)))
                    body = list(chunks(result, fmt))
                    assert body, (name, fmt)
    finally:
        engine.dispose()
