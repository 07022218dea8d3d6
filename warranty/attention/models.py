"""Items a person must look at."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from warranty.core.ids import public_id
from warranty.db.types import json_field, ts_field


class AttentionItem(SQLModel, table=True):
    """Something about money that a person must look at, with its figures, until handled.

    ``kind``: amount_mismatch | stripe_object_missing | refund_refused | refund_failed |
    excess_plan_refunded | external_refund | export_failed. ``key`` names the problem, so one
    problem reported again (Stripe delivers events more than once) stays one item.
    """

    __tablename__ = "attention_item"

    id: int | None = Field(default=None, primary_key=True)
    public_id: str = Field(default_factory=lambda: public_id("att"), max_length=40, unique=True)
    kind: str = Field(max_length=40, index=True)
    key: str = Field(max_length=300, unique=True)
    summary: str = Field(max_length=1000)
    order_id: int | None = Field(default=None, foreign_key="orders.id", index=True)
    refund_id: int | None = Field(default=None, foreign_key="refund.id")
    stripe_event_id: str | None = Field(default=None, max_length=255)
    data: dict = json_field()  # the figures: amounts in minor units, currency, Stripe ids
    status: str = Field(default="open", max_length=20, index=True)  # open | handled
    created_at: datetime = ts_field()
    handled_at: datetime | None = ts_field(nullable=True)
    handled_by: str | None = Field(default=None, max_length=200)
    handled_note: str | None = Field(default=None, max_length=2000)
