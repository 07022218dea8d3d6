"""Stripe events received, kept until processed."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from warranty.db.types import json_field, ts_field


class StripeEvent(SQLModel, table=True):
    """Every Stripe event received, by its id; processing happens once."""

    __tablename__ = "stripe_event"

    id: str = Field(primary_key=True, max_length=255)
    type: str = Field(max_length=100)
    payload: dict = json_field()
    received_at: datetime = ts_field()
    processed_at: datetime | None = ts_field(nullable=True)
    attempts: int = 0  # tries to apply it: deliveries that stored it plus the worker's claims
    # When the worker may try it next: a lease while a delivery or worker is on it, then the
    # backoff after a failure (warranty.db.outbox). Meaningless once processed.
    next_attempt_at: datetime = ts_field()
    last_error: str | None = Field(default=None, max_length=2000)
    # What applying it did ("paid", "refund_recorded", ...); "failed" when Stripe answered that
    # it will never work (an object Stripe doesn't know): given up, and on the attention queue.
    outcome: str | None = Field(default=None, max_length=30)


# The worker's claim reads only unprocessed events by due time: a partial index stays as small
# as the backlog while the table keeps every event ever received.
sa.Index("ix_stripe_event_due", StripeEvent.__table__.c.next_attempt_at,
         postgresql_where=StripeEvent.__table__.c.processed_at.is_(None),
         sqlite_where=StripeEvent.__table__.c.processed_at.is_(None))
