"""Visitor events and the daily counts of refused visitor ids."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from warranty.db.types import money_field, ts_field


class VisitorEvent(SQLModel, table=True):
    """What an anonymous storefront visitor saw and did with offers (from the embed)."""

    __tablename__ = "visitor_event"

    # Big: one row per event. SQLite only auto-increments a plain INTEGER primary key.
    id: int | None = Field(default=None, primary_key=True,
                           sa_type=sa.BigInteger().with_variant(sa.Integer(), "sqlite"))
    visitor_id: str = Field(max_length=64, index=True)
    arm: str = Field(max_length=20)  # treatment | holdout, recomputed by the server
    # exposure | offer_viewed | offer_selected | offer_removed | checkout_started
    type: str = Field(max_length=30)
    placement: str | None = Field(default=None, max_length=30)
    sku: str | None = Field(default=None, max_length=100)
    warranty_category: str | None = Field(default=None, max_length=50)
    price: int | None = money_field(default=None)  # minor units: the product's unit price
    plan_code: str | None = Field(default=None, max_length=50)
    plan_price: int | None = money_field(default=None)  # minor units: the plan's unit price
    quantity: int | None = Field(default=None, ge=1)
    order_public_id: str | None = Field(default=None, max_length=40, index=True)
    occurred_at: datetime = ts_field()  # the client's time, clamped (indexed below)
    received_at: datetime = ts_field()


class RefusedVisitorIds(SQLModel, table=True):
    """How many visitor ids were refused, per store-local day: events sent with an unsigned
    or foreign id (``source`` events; counted per event) and checkouts whose id was recorded
    without attribution (``source`` checkout). The conversion report shows them."""

    __tablename__ = "refused_visitor_ids"

    day: date = Field(primary_key=True)
    source: str = Field(primary_key=True, max_length=20)  # events | checkout
    reason: str = Field(primary_key=True, max_length=20)  # unsigned | foreign
    count: int = Field(default=0, sa_type=sa.BigInteger())


# Conversion: the visitors active in a period and their arms, read from the index alone.
sa.Index("ix_visitor_event_occurred_at_visitor_id_arm", VisitorEvent.__table__.c.occurred_at,
         VisitorEvent.__table__.c.visitor_id, VisitorEvent.__table__.c.arm)
