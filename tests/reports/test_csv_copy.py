"""On PostgreSQL the ledger CSVs are written by the database (COPY, warranty.reports.csv_copy):
the bytes must be the ones the Python writer makes of the same rows, hostile text, money in
major units, refunds, dates and empty cells included; SQLite keeps the streamed writer."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from tests.report_history import payout, plan_sale
from tests.reports.test_export_formulas import HOSTILE, _orders
from warranty import reports
from warranty.db.engine import Session, get_engine
from warranty.orders.models import Order
from warranty.reports import export


def _both(settings, name: str, start: str, end: str) -> tuple[str, str | None]:
    """The report's CSV from the rows, and (PostgreSQL) from COPY."""
    with Session(get_engine(settings.database_url)) as session:
        ctx = reports.Context(session=session, settings=settings,
                              period=reports.parse_period(start, end))
        result = reports.run_report(name, ctx)
        copied = "".join(export.csv_chunks(result)) if result.csv_rows else None
        result = reports.run_report(name, ctx)
        result.csv_rows = None
        return "".join(export.csv_chunks(result)), copied


def _same(settings, name: str, start: str, end: str, rows: int) -> None:
    """COPY on PostgreSQL, with the writer's bytes; SQLite writes the rows."""
    written, copied = _both(settings, name, start, end)
    assert written.count("\r\n") >= rows + 1
    if settings.database_url.startswith("sqlite"):
        assert copied is None
        return
    assert copied == written


def test_orders_with_hostile_text(client, db, staff_headers, settings):
    _orders(client, db, staff_headers)
    db.add(Order(store_order_ref='quote " and, comma\nnew line', customer_email="q@example.com",
                 currency="jpy", total_amount=0, channel="external", status="paid",
                 purchase_date=date(2026, 1, 7), booked_on=date(2026, 1, 7)))
    db.commit()
    plan_sale(db, price=3650, tax=331, sold_on=date(2026, 1, 10), payment_intent_id="pi_a")
    _same(settings, "orders", "2026-01-01", "2026-03-31", len(HOSTILE) + 2)


@pytest.mark.parametrize("currency", ["jpy", "usd", "kwd"])
def test_movements_and_contracts_in_every_kind_of_currency(db, settings, currency):
    settings = settings.model_copy(update={"currency": currency})
    first, = plan_sale(db, price=4990, tax=453, sold_on=date(2026, 1, 10), currency=currency,
                       payment_intent_id="pi_a", cancel=(date(2026, 2, 3), 1230),
                       refund_tax=111)
    plan_sale(db, price=5, sold_on=date(2026, 1, 31), currency=currency, category="phones",
              payment_intent_id="pi_b", booked_on=date(2026, 2, 2))
    payout(db, first, amount=700, paid_at=datetime(2026, 1, 20, 3, tzinfo=UTC))
    _same(settings, "movements", "2026-01-01", "2026-03-31", 3)
    _same(settings, "contracts", "2026-01-01", "2026-03-31", 2)
