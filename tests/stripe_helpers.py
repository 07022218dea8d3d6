"""Helpers for end-to-end tests: pay on the stand-in, wait for webhooks, sign events."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import requests
import stripe
from sqlmodel import select

from warranty.contracts.models import Contract
from warranty.db.engine import Session, get_engine
from warranty.orders.models import Order

WEBHOOK_SECRET = "whsec_test"


def pay_hosted(checkout_url: str, card: str = "pm_card_visa") -> requests.Response:
    """Submit the stand-in's hosted payment form as a shopper would."""
    page = requests.get(checkout_url, timeout=10)
    assert page.status_code == 200 and "Pay" in page.text
    return requests.post(checkout_url, data={"payment_method": card}, allow_redirects=False,
                         timeout=10)


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.1):
    """Poll until ``predicate()`` is truthy; returns its value or fails the test."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def order_state(database_url: str, order_id: str) -> tuple[Order, list[Contract]]:
    """The order and its contracts, read fresh."""
    with Session(get_engine(database_url)) as session:
        order = session.exec(select(Order).where(Order.public_id == order_id)).one()
        contracts = session.exec(select(Contract).where(Contract.order_id == order.id)
                                 .order_by(Contract.plan_line_id, Contract.unit_index)).all()
        return order, list(contracts)


def wait_paid(database_url: str, order_id: str, contracts: int) -> tuple[Order, list[Contract]]:
    """Wait for the webhook to mark the order paid with ``contracts`` contracts."""
    def ready():
        order, made = order_state(database_url, order_id)
        return (order, made) if order.status == "paid" and len(made) >= contracts else None
    return wait_for(ready)


def signed(payload: dict, secret: str = WEBHOOK_SECRET, timestamp: int | None = None):
    """A raw body and Stripe-Signature header for ``payload``, as Stripe signs them."""
    body = json.dumps(payload)
    stamp = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{stamp}.{body}".encode(), hashlib.sha256).hexdigest()
    return body, {"Stripe-Signature": f"t={stamp},v1={mac}", "Content-Type": "application/json"}


def stripe_events(event_type: str, object_id: str) -> list[dict]:
    """Events the stand-in recorded for one object."""
    events = stripe.Event.list(type=event_type, limit=100)
    return [e.to_dict() for e in events.data if e.data.object.id == object_id]
