"""Order status changes and their audit rows."""

from __future__ import annotations

from sqlmodel import Session

from warranty.orders.models import Order, OrderEvent

# Allowed order status changes; a late or repeated event never moves an order backwards.
ORDER_TRANSITIONS: dict[str, set[str]] = {
    "pending": {"paid", "expired", "failed"},
    "failed": {"paid", "expired", "failed"},
    "expired": {"paid"},  # a payment Stripe confirms after expiry is still money received
    "paid": {"refunded"},
    "refunded": set(),
}


def record_order_event(*, session: Session, order: Order, action: str, actor: str,
                       reason: str = "", data: dict | None = None) -> OrderEvent:
    """An audit row for something that happened to an order's money (caller commits)."""
    event = OrderEvent(order_id=order.id, action=action, actor=actor, reason=reason[:1000],
                       data=data or {})
    session.add(event)
    return event
