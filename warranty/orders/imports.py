"""Orders paid outside the service, reported by the store so retention sees every order.

They are stored as Order rows with channel ``external`` and status ``paid``, their own
purchase date and total, and no contracts. Importing the same order reference again is a
no-op, so a batch or a CSV can be sent twice.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session

from warranty.core.csv_records import read_records
from warranty.core.dates import utcnow
from warranty.core.errors import ValidationFailed
from warranty.core.ids import public_id
from warranty.core.text import EmailAddress, SingleLine
from warranty.db import touched_customers
from warranty.db.engine import advisory_lock, write_transaction
from warranty.db.types import MAX_COLUMN_AMOUNT
from warranty.orders.models import Order
from warranty.periods import booking as periods

MAX_BATCH = 10_000
# The advisory lock imports take (warranty.db.engine.advisory_lock): one import at a time reads
# which references exist and inserts the rest, so two imports of one order store it once.
_IMPORT_LOCK = (0x6F69, 0)
CSV_COLUMNS = ["order_ref", "email", "purchase_date", "total_amount", "visitor_id"]


class ExternalOrderIn(BaseModel):
    """An order the store took itself; ``total_amount`` in minor units of the store currency."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    # One line each: the order reference and the email may later name a mail (subject, To).
    order_ref: SingleLine = Field(min_length=1, max_length=200)
    email: EmailAddress  # customers are matched by lower-case email
    purchase_date: date = Field(description="store-local date, ISO (2026-01-31)")
    total_amount: int = Field(ge=0, le=MAX_COLUMN_AMOUNT, description="minor units")
    visitor_id: SingleLine | None = Field(default=None, max_length=64)


class ImportResult(BaseModel):
    """How many orders were stored, and how many were already there."""

    created: int
    already_imported: int


def import_orders(*, session: Session, orders: list[ExternalOrderIn],
                  currency: str) -> ImportResult:
    """Store new external orders in bulk (one INSERT ... VALUES batch); caller commits."""
    write_transaction(session)
    refs = [o.order_ref for o in orders]
    seen: set[str] = set()
    for position, ref in enumerate(refs, start=1):
        if ref in seen:
            raise ValidationFailed(f"order {position}: order_ref {ref!r} appears twice")
        seen.add(ref)
    table = Order.__table__
    advisory_lock(session, *_IMPORT_LOCK)
    existing: set[str] = set()
    for start in range(0, len(refs), 500):
        existing.update(session.execute(
            sa.select(table.c.store_order_ref).where(
                table.c.channel == "external",
                table.c.store_order_ref.in_(refs[start:start + 500]))).scalars())
    now = utcnow()
    # An order dated in a closed month is booked on the first open day (warranty.periods).
    open_from = periods.hold(session)
    rows = [{"public_id": public_id("ord"), "store_order_ref": o.order_ref,
             "customer_email": o.email, "currency": currency, "total_amount": o.total_amount,
             "channel": "external", "status": "paid", "purchase_date": o.purchase_date,
             "visitor_id": o.visitor_id, "created_at": now, "updated_at": now,
             # No payment time is known: midnight UTC of the purchase date stands in.
             "paid_at": datetime.combine(o.purchase_date, time(), tzinfo=UTC),
             "booked_on": max(o.purchase_date, open_from) if open_from else o.purchase_date}
            for o in orders if o.order_ref not in existing]
    if rows:
        session.execute(sa.insert(table), rows)
        # A Core insert: the retention facts of these customers are recomputed at commit.
        touched_customers.touch(session, emails=[r["customer_email"] for r in rows],
                             visitors=[r["visitor_id"] for r in rows])
    return ImportResult(created=len(rows), already_imported=len(orders) - len(rows))


def parse_csv(text: str) -> list[ExternalOrderIn]:
    """Orders from CSV text with a header row (order_ref,email,purchase_date,total_amount
    [,visitor_id]); errors name the line."""
    return read_records(text, ExternalOrderIn, CSV_COLUMNS, required=4)
