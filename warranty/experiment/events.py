"""The offer events the embed sends, recorded with the visitor's arm."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session

from warranty.core.errors import NotFound
from warranty.db import touched_customers
from warranty.db.engine import write_transaction
from warranty.experiment.arms import assign_arm
from warranty.experiment.models import VisitorEvent
from warranty.pricing import rules as pricing_rules

# exposure: a placement had offers for this product; treatment saw them, holdout would have.
EVENT_TYPES = ("exposure", "offer_viewed", "offer_selected", "offer_removed", "checkout_started")
PLACEMENTS = ("product_page", "add_to_cart_modal", "cart", "post_purchase")
MAX_EVENTS_PER_BATCH = 100
# Client clocks drift and beacons can be queued: keep the client's time within this window.
MAX_CLIENT_AGE = timedelta(days=1)


def clamp_client_time(client: datetime | None, received_at: datetime) -> datetime:
    """The client's event time, kept between a day before and the moment of receipt."""
    if client is None:
        return received_at
    return min(max(client, received_at - MAX_CLIENT_AGE), received_at)


@dataclass(frozen=True)
class EventIn:
    """One validated event as the embed reports it."""

    type: str
    placement: str | None = None
    sku: str | None = None
    category: str | None = None  # store or warranty category; mapped by the server
    price: int | None = None  # minor units
    plan_code: str | None = None
    plan_price: int | None = None  # minor units
    quantity: int | None = None
    order_id: str | None = None
    occurred_at: datetime | None = None


def _category_mapper(session: Session):
    """Store category -> warranty category under the current rules (names map to themselves)."""
    try:
        _, rules = pricing_rules.current_rules(session)
    except NotFound:
        return lambda _category: None
    cache: dict[str, str | None] = {}

    def warranty_category(category: str | None) -> str | None:
        if category is None:
            return None
        if category not in cache:
            cache[category] = rules.warranty_category(category)
        return cache[category]

    return warranty_category


def record_events(*, session: Session, visitor_id: str, events: list[EventIn], salt: str,
                  share: float, received_at: datetime) -> str:
    """Store a batch of one visitor's events in one multi-row insert; returns the arm."""
    write_transaction(session)
    arm = assign_arm(visitor_id, salt=salt, share=share)
    mapped = _category_mapper(session) if any(e.category for e in events) else (lambda c: None)
    rows = [{
        "visitor_id": visitor_id, "arm": arm, "type": e.type, "placement": e.placement,
        "sku": e.sku, "warranty_category": mapped(e.category), "price": e.price,
        "plan_code": e.plan_code, "plan_price": e.plan_price, "quantity": e.quantity,
        "order_public_id": e.order_id,
        "occurred_at": clamp_client_time(e.occurred_at, received_at), "received_at": received_at,
    } for e in events]
    # Core insert with a list: SQLAlchemy sends one INSERT ... VALUES (...), (...) statement.
    session.execute(sa.insert(VisitorEvent.__table__), rows)
    # The arm of customers whose orders carry this visitor id may change (at commit).
    touched_customers.touch(session, visitors=[visitor_id])
    return arm
