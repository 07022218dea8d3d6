"""Stripe events: verified on the raw body, stored by id, acted on exactly once.

The payload is never trusted beyond its id and type: the object is fetched again from
Stripe before anything changes. Unknown event types are stored and acknowledged.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import stripe
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, select

from warranty import contracts, jobs, periods
from warranty.checkout import ORDER_TRANSITIONS
from warranty.dates import store_today, utcnow
from warranty.db import session_scope
from warranty.errors import DomainError, PaymentProviderError
from warranty.models import Order, StripeEvent
from warranty.notifications import notify_contracts_created
from warranty.settings import Settings

log = logging.getLogger(__name__)
SESSION_EVENTS = {"checkout.session.completed", "checkout.session.async_payment_succeeded",
                  "checkout.session.expired", "checkout.session.async_payment_failed"}
INTENT_EVENTS = {"payment_intent.succeeded", "payment_intent.payment_failed",
                 "payment_intent.canceled"}
SIGNATURE_TOLERANCE_SECONDS = 300
# A delivery that stored an event owns it this long: the worker leaves it to the delivery
# that is still working on it, and picks it up after that if the delivery died.
DELIVERY_LEASE_SECONDS = 30.0
# A worker's claim outlives one fetch from Stripe with all the SDK's network retries.
WORKER_LEASE_SECONDS = 120.0
# The events the worker still has work for (its claim query; ix_stripe_event_due covers it).
PENDING = StripeEvent.processed_at.is_(None)


class InvalidSignature(DomainError):
    """An unsigned, forged or stale webhook delivery."""

    code = "invalid_signature"
    status = 400


def verify(payload: bytes, signature: str | None, secret: str) -> stripe.Event:
    """The event in ``payload`` if Stripe's signature on the raw body checks out."""
    if not signature:
        raise InvalidSignature("missing Stripe-Signature header")
    if not secret:
        raise InvalidSignature("no webhook secret is configured", code="webhook_not_configured",
                               status=503)
    try:
        event = stripe.Webhook.construct_event(payload, signature, secret,
                                               tolerance=SIGNATURE_TOLERANCE_SECONDS)
    except stripe.SignatureVerificationError:
        raise InvalidSignature("signature does not match, or the event is too old") from None
    except (ValueError, TypeError, AttributeError, KeyError):
        # Signed but not an event object: not JSON, or JSON of another shape (e.g. a list).
        raise InvalidSignature("body is not a Stripe event", code="invalid_payload") from None
    if not isinstance(getattr(event, "id", None), str) or not event.id or \
            not isinstance(getattr(event, "type", None), str) or not event.type:
        raise InvalidSignature("body is not a Stripe event", code="invalid_payload")
    return event


def record(*, session: Session, event: stripe.Event) -> None:
    """Store the event by id and count this delivery's try; a processed one is left alone.

    The delivery leases the event (``next_attempt_at``) so the worker waits for it; if the
    app dies before applying it, the worker takes it when the lease runs out. A repeated
    delivery of an unprocessed event counts as another try and renews the lease.
    """
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = StripeEvent.__table__
    now = utcnow()
    lease = now + timedelta(seconds=DELIVERY_LEASE_SECONDS)
    statement = insert(table).values(id=event.id, type=event.type, payload=event.to_dict(),
                                     received_at=now, attempts=1, next_attempt_at=lease)
    session.exec(statement.on_conflict_do_update(
        index_elements=["id"], where=table.c.processed_at.is_(None),
        set_={"attempts": table.c.attempts + 1, "next_attempt_at": lease}))


def object_id(payload: dict) -> str | None:
    """The id of the object an event is about."""
    data = payload.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    value = obj.get("id") if isinstance(obj, dict) else None
    return value if isinstance(value, str) else None


def fetch(event_type: str, obj_id: str | None):
    """Fetch the event's object again from Stripe (None for types we don't act on)."""
    if obj_id is None or (event_type not in SESSION_EVENTS and event_type not in INTENT_EVENTS):
        return None
    try:
        if event_type in SESSION_EVENTS:
            checkout_session = stripe.checkout.Session.retrieve(obj_id)
            intent = None
            if checkout_session.payment_intent:
                intent = _intent(checkout_session.payment_intent)
            return checkout_session, intent
        return None, _intent(obj_id)
    except stripe.StripeError as exc:
        raise PaymentProviderError(f"could not fetch {obj_id} from Stripe: {exc}",
                                   code="stripe_unavailable", status=503) from None


def _intent(intent_id) -> stripe.PaymentIntent:
    """A PaymentIntent with its charge expanded (an id on Stripe, an object on the stand-in)."""
    if not isinstance(intent_id, str):
        intent_id = intent_id.id
    return stripe.PaymentIntent.retrieve(intent_id, expand=["latest_charge"])


def _charge_id(intent) -> str | None:
    """The charge id of a PaymentIntent, expanded or not."""
    charge = getattr(intent, "latest_charge", None)
    if charge is None:
        return None
    return charge if isinstance(charge, str) else getattr(charge, "id", None)


def _lock_event(session: Session, event_id: str) -> StripeEvent | None:
    """The stored event row, locked for this transaction on PostgreSQL."""
    return session.exec(select(StripeEvent).where(StripeEvent.id == event_id)
                        .with_for_update()).first()


def _find_order(session: Session, *, session_id: str | None, intent_id: str | None,
                order_public_id: str | None) -> Order | None:
    """The order a Stripe object belongs to, locked for this transaction."""
    for column, value in ((Order.stripe_checkout_session_id, session_id),
                          (Order.stripe_payment_intent_id, intent_id),
                          (Order.public_id, order_public_id)):
        if value:
            order = session.exec(select(Order).where(column == value).with_for_update()).first()
            if order is not None:
                return order
    return None


def _move(order: Order, to_status: str) -> bool:
    """Apply an order status change the table allows; a late or repeated one is skipped."""
    if order.status == to_status:
        return False
    if to_status not in ORDER_TRANSITIONS.get(order.status, set()):
        log.info("order %s: %s -> %s not allowed; event ignored", order.public_id,
                 order.status, to_status)
        return False
    order.status = to_status
    order.updated_at = utcnow()
    return True


def apply(*, session: Session, settings: Settings, event_id: str, fetched) -> str:
    """Act on a stored event once; returns what happened ("paid", "duplicate", ...)."""
    row = _lock_event(session, event_id)
    if row is None:
        return "unknown_event"
    if row.processed_at is not None:
        return "duplicate"
    outcome = "ignored"
    if fetched is not None:
        checkout_session, intent = fetched
        outcome = _apply_payment(session=session, settings=settings, event=row,
                                 checkout_session=checkout_session, intent=intent)
    row.processed_at = utcnow()
    row.last_error = None
    session.add(row)
    return outcome


def _apply_payment(*, session: Session, settings: Settings, event: StripeEvent,
                   checkout_session, intent) -> str:
    """Move the order as the fetched objects say, creating contracts when paid."""
    metadata = {}
    source = checkout_session if checkout_session is not None else intent
    if source is not None and getattr(source, "metadata", None):
        metadata = source.metadata.to_dict()
    order = _find_order(session, session_id=checkout_session.id if checkout_session else None,
                        intent_id=intent.id if intent else None,
                        order_public_id=metadata.get("order_id"))
    if order is None:
        log.warning("Stripe event %s names no order of ours", event.id)
        return "no_order"
    paid = (intent is not None and intent.status == "succeeded") or (
        checkout_session is not None and checkout_session.payment_status == "paid")
    if paid:
        return _mark_paid(session=session, settings=settings, order=order, event=event,
                          checkout_session=checkout_session, intent=intent)
    if checkout_session is not None and checkout_session.status == "expired":
        return "expired" if _move(order, "expired") else "unchanged"
    if event.type in ("payment_intent.payment_failed", "checkout.session.async_payment_failed"):
        if intent is not None and order.stripe_payment_intent_id is None:
            order.stripe_payment_intent_id = intent.id
        return "failed" if _move(order, "failed") else "unchanged"
    return "unchanged"


def _mark_paid(*, session: Session, settings: Settings, order: Order, event: StripeEvent,
               checkout_session, intent) -> str:
    """Record the payment and create the contracts, once, if Stripe charged the order total."""
    amount = intent.amount if intent is not None else checkout_session.amount_total
    currency = (intent or checkout_session).currency
    if amount != order.total_amount or currency != order.currency:
        log.error("order %s: Stripe charged %s %s, order total is %s %s", order.public_id,
                  amount, currency, order.total_amount, order.currency)
        event.last_error = f"amount mismatch: charged {amount} {currency}"
        return "amount_mismatch"
    if not _move(order, "paid"):
        return "duplicate" if order.status == "paid" else "unchanged"
    if checkout_session is not None:
        order.stripe_checkout_session_id = checkout_session.id
    if intent is not None:
        order.stripe_payment_intent_id = intent.id
        order.stripe_charge_id = _charge_id(intent)
    # The event's time is the payment's time, even when we process it late (retries).
    created = event.payload.get("created")
    paid_at = datetime.fromtimestamp(created, tz=UTC) if isinstance(created, int) else utcnow()
    order.paid_at = paid_at
    order.purchase_date = store_today(settings.timezone, paid_at)
    # A payment recorded after its month was closed is booked on the first open day.
    order.booked_on = periods.booking_date(session, order.purchase_date)
    session.add(order)
    purchase_date, sold_on = order.purchase_date, None
    if order.parent_order_id is not None:
        parent = session.get(Order, order.parent_order_id)
        purchase_date, sold_on = parent.purchase_date, order.purchase_date
    created = contracts.create_contracts(session=session, order=order,
                                         purchase_date=purchase_date, plan_sold_on=sold_on)
    # Mail and store webhooks are queued in this same transaction: paid ⇒ told, exactly once.
    notify_contracts_created(session=session, settings=settings, order=order,
                             contracts=created)
    log.info("order %s paid: %d contract(s)", order.public_id, len(created))
    return "paid"


def record_failure(*, session: Session, settings: Settings, event_id: str, error: str) -> None:
    """Note a failed try; the worker tries the event again after the backoff."""
    row = session.get(StripeEvent, event_id)
    if row is not None and row.processed_at is None:
        jobs.retry_later(row, error, settings)
        session.add(row)


def process(*, session: Session, settings: Settings, event_id: str, event_type: str,
            payload: dict) -> str:
    """Fetch a stored event's object again and apply it (the webhook's and worker's path).

    A Stripe outage records the failed attempt, commits it and raises PaymentProviderError.
    The caller commits the applied outcome.
    """
    try:
        fetched = fetch(event_type, object_id(payload))
    except PaymentProviderError as exc:
        record_failure(session=session, settings=settings, event_id=event_id,
                       error=exc.message)
        session.commit()
        raise
    return apply(session=session, settings=settings, event_id=event_id, fetched=fetched)


def run_stripe_events(*, settings: Settings, limit: int = 50) -> int:
    """Apply stored events a crash or a Stripe outage left unprocessed; returns how many tried.

    Due events are claimed like every other job (warranty.jobs: ``SKIP LOCKED`` on
    PostgreSQL), so concurrent workers take different events; ``apply`` still locks the row
    and skips a processed one, so a delivery racing a worker does the work once too.
    """
    ids = jobs.claim(settings=settings, model=StripeEvent, limit=limit,
                     lease_seconds=WORKER_LEASE_SECONDS,
                     pending=PENDING)
    if not ids:
        return 0
    with session_scope(settings.database_url) as session:
        events = {row.id: (row.type, row.payload) for row in session.execute(
            select(StripeEvent.id, StripeEvent.type, StripeEvent.payload)
            .where(StripeEvent.id.in_(ids)))}
    for event_id in ids:
        event_type, payload = events[event_id]
        try:
            with session_scope(settings.database_url) as session:
                outcome = process(session=session, settings=settings, event_id=event_id,
                                  event_type=event_type, payload=payload)
        except PaymentProviderError as exc:
            log.warning("Stripe event %s still not applied: %s", event_id, exc.message)
            continue
        log.info("Stripe event %s recovered: %s", event_id, outcome)
    return len(ids)
