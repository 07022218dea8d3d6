"""Stripe events: verified on the raw body, stored by id, acted on exactly once.

The payload is never trusted beyond its id and type: the object is fetched again from
Stripe before anything changes. Unknown event types are stored and acknowledged.

What Stripe answers decides what happens to an event: an object Stripe doesn't know (404
``resource_missing``) or another refusal that will never change (a 4xx) marks the event
failed for a person (``outcome = "failed"``, the attention queue, a metric) and is not
retried; a network error, a 5xx or a 429 is an outage: the event stays unprocessed and is
retried with backoff (the webhook answers 503, so Stripe delivers it again too).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial

import stripe
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, select

from warranty.attention import services as attention
from warranty.contracts import lifecycle as contracts
from warranty.contracts.notices import notify_contracts_created
from warranty.core.dates import store_today, utcnow
from warranty.core.errors import (
    DomainError,
    PaymentProviderError,
    PaymentProviderUnavailable,
    Unavailable,
)
from warranty.core.money import format_amount
from warranty.core.settings import Settings
from warranty.db import outbox as jobs
from warranty.db.engine import session_scope, write_transaction
from warranty.orders import events
from warranty.orders.events import ORDER_TRANSITIONS
from warranty.orders.models import Order, OrderLine
from warranty.payments import client as payments
from warranty.payments import refund_events as refund_sync
from warranty.payments import refunds
from warranty.payments.models import StripeEvent
from warranty.periods import booking as periods
from warranty.post_purchase import plans as post_purchase
from warranty.pricing import terms

log = logging.getLogger(__name__)
SESSION_EVENTS = {"checkout.session.completed", "checkout.session.async_payment_succeeded",
                  "checkout.session.expired", "checkout.session.async_payment_failed"}
INTENT_EVENTS = {"payment_intent.succeeded", "payment_intent.payment_failed",
                 "payment_intent.canceled"}
# Events about a refund (the object is a refund) and about a refunded charge.
REFUND_EVENTS = {"refund.created", "refund.updated", "refund.failed", "charge.refund.updated"}
CHARGE_EVENTS = {"charge.refunded"}
# The session key where applying events leaves refunds to send to Stripe after the commit.
REFUNDS_TO_SEND = "warranty_refunds_to_send"
SEND_PATIENCE_SECONDS = 5.0
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


def verify(payload: bytes, signature: str | None, secret: str) -> stripe.Event:
    """The event in ``payload`` if Stripe's signature on the raw body checks out."""
    if not signature:
        raise InvalidSignature("missing Stripe-Signature header")
    if not secret:
        raise Unavailable("no webhook secret is configured", code="webhook_not_configured")
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
    write_transaction(session)
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


class StripeRefused(Exception):
    """Stripe answered that the event's object will never be there (a 404 or other 4xx)."""

    def __init__(self, message: str, *, stripe_code: str | None, http_status: int | None):
        super().__init__(message)
        self.message, self.stripe_code, self.http_status = message, stripe_code, http_status


@dataclass(frozen=True)
class Fetched:
    """The objects an event is about, as Stripe holds them now."""

    checkout_session: object | None = None
    intent: object | None = None
    charge: object | None = None
    refunds: list = field(default_factory=list)


def fetch(stripe_client: stripe.StripeClient, event_type: str,
          obj_id: str | None) -> Fetched | None:
    """Fetch the event's object again from Stripe (None for types we don't act on)."""
    known = SESSION_EVENTS | INTENT_EVENTS | REFUND_EVENTS | CHARGE_EVENTS
    if obj_id is None or event_type not in known:
        return None
    v1 = stripe_client.v1
    try:
        if event_type in SESSION_EVENTS:
            checkout_session = v1.checkout.sessions.retrieve(obj_id)
            intent = None
            if checkout_session.payment_intent:
                intent = _intent(stripe_client, checkout_session.payment_intent)
            return Fetched(checkout_session=checkout_session, intent=intent)
        if event_type in INTENT_EVENTS:
            return Fetched(intent=_intent(stripe_client, obj_id))
        charge_id = obj_id
        if event_type in REFUND_EVENTS:
            charge_id = _id_of(v1.refunds.retrieve(obj_id).charge)
        charge = v1.charges.retrieve(charge_id)
        listed = v1.refunds.list(params={"charge": charge_id, "limit": 100}).auto_paging_iter()
        return Fetched(charge=charge, refunds=list(listed))
    except stripe.StripeError as exc:
        if payments.is_permanent(exc):
            raise StripeRefused(f"Stripe cannot give {obj_id}: {payments.describe(exc)}",
                                stripe_code=getattr(exc, "code", None),
                                http_status=getattr(exc, "http_status", None)) from None
        raise PaymentProviderUnavailable(f"could not fetch {obj_id} from Stripe: {exc}") \
            from None


def _id_of(value) -> str | None:
    """An id, whether Stripe sent the object expanded or not."""
    return value if isinstance(value, str) or value is None else getattr(value, "id", None)


def _intent(stripe_client: stripe.StripeClient, intent_id) -> stripe.PaymentIntent:
    """A PaymentIntent with its charge expanded (an id on Stripe, an object on the stand-in)."""
    if not isinstance(intent_id, str):
        intent_id = intent_id.id
    return stripe_client.v1.payment_intents.retrieve(intent_id,
                                                     params={"expand": ["latest_charge"]})


def _charge_id(intent) -> str | None:
    """The charge id of a PaymentIntent, expanded or not."""
    return _id_of(getattr(intent, "latest_charge", None))


def _lock_event(session: Session, event_id: str) -> StripeEvent | None:
    """The stored event row, locked for this transaction on PostgreSQL."""
    return session.exec(select(StripeEvent).where(StripeEvent.id == event_id)
                        .with_for_update(key_share=True).execution_options(populate_existing=True)).first()


def _find_order(session: Session, *, session_id: str | None = None,
                intent_id: str | None = None, order_public_id: str | None = None,
                charge_id: str | None = None) -> Order | None:
    """The order a Stripe object belongs to, locked for this transaction."""
    for column, value in ((Order.stripe_checkout_session_id, session_id),
                          (Order.stripe_payment_intent_id, intent_id),
                          (Order.stripe_charge_id, charge_id),
                          (Order.public_id, order_public_id)):
        if value:
            order = session.exec(select(Order).where(column == value)
                                 .with_for_update(key_share=True)
                                 .execution_options(populate_existing=True)).first()
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


def apply(*, session: Session, settings: Settings, event_id: str,
          fetched: Fetched | None) -> str:
    """Act on a stored event once; returns what happened ("paid", "duplicate", ...)."""
    write_transaction(session)
    row = _lock_event(session, event_id)
    if row is None:
        return "unknown_event"
    if row.processed_at is not None:
        return "duplicate"
    row.last_error = None  # what this application notes below is kept
    outcome = "ignored"
    if fetched is not None and fetched.charge is not None:
        outcome = _apply_refunds(session=session, settings=settings, event=row,
                                 fetched=fetched)
    elif fetched is not None:
        outcome = _apply_payment(session=session, settings=settings, event=row,
                                 checkout_session=fetched.checkout_session,
                                 intent=fetched.intent)
    row.processed_at = utcnow()
    row.outcome = outcome
    session.add(row)
    return outcome


def _send_later(session: Session, refund_ids: list[int]) -> None:
    """Refunds to try through Stripe once this transaction has committed."""
    session.info.setdefault(REFUNDS_TO_SEND, []).extend(refund_ids)


def send_refunds(*, session: Session, settings: Settings,
                 stripe_client: stripe.StripeClient) -> None:
    """Try the refunds applying events left to send (after the commit; the worker retries).

    Another event for the same order may hold a refund's row for a moment: that one is
    tried again briefly rather than left for the worker's next pass.
    """
    for refund_id in session.info.pop(REFUNDS_TO_SEND, []):
        refunds.execute_refund(settings=settings, stripe_client=stripe_client,
                               refund_id=refund_id,
                               wait_seconds=SEND_PATIENCE_SECONDS)


def _apply_refunds(*, session: Session, settings: Settings, event: StripeEvent,
                   fetched: Fetched) -> str:
    """Record the charge's refunds as Stripe reports them (refund and charge events)."""
    charge = fetched.charge
    order = _find_order(session, intent_id=_id_of(getattr(charge, "payment_intent", None)),
                        charge_id=charge.id)
    if order is None:
        log.info("Stripe event %s: charge %s is not one of ours", event.id, charge.id)
        return "no_order"
    outcome, to_send = refund_sync.sync_charge(session=session, settings=settings, order=order,
                                               charge=charge, stripe_refunds=fetched.refunds,
                                               event_id=event.id)
    _send_later(session, to_send)
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
        return _amount_mismatch(session=session, order=order, event=event,
                                checkout_session=checkout_session, intent=intent,
                                amount=amount, currency=currency)
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
    purchase_date, sold_on, room = order.purchase_date, None, None
    if order.parent_order_id is not None:
        parent = session.get(Order, order.parent_order_id)
        purchase_date, sold_on = parent.purchase_date, order.purchase_date
        room = _post_purchase_room(session=session, settings=settings, order=order)
    created = contracts.create_contracts(session=session, order=order,
                                         purchase_date=purchase_date, plan_sold_on=sold_on,
                                         conditions=terms.conditions_of(settings),
                                         unit_limit=room)
    # Mail and store webhooks are queued in this same transaction: paid ⇒ told, exactly once.
    notify_contracts_created(session=session, settings=settings, order=order,
                             contracts=created)
    log.info("order %s paid: %d contract(s)", order.public_id, len(created))
    return "paid"


def _post_purchase_room(*, session: Session, settings: Settings, order: Order) -> int:
    """How many of a paid post-purchase order's plans its line can still take.

    Checked again now, under the line's lock: two checkouts for the last unit can both be
    paid. Plans beyond the room are refunded in full at once (one order-level refund,
    exactly once: this runs only when the order first becomes paid) and never become
    contracts.
    """
    plan_line = session.exec(select(OrderLine).where(OrderLine.order_id == order.id,
                                                     OrderLine.kind == "plan")).one()
    product_line = post_purchase.lock_line(session, plan_line.covers_line_id)
    covered = post_purchase.covered_units(session, product_line)
    room = max(0, min(plan_line.quantity, post_purchase.open_units(session, product_line)))
    excess = plan_line.quantity - room
    if excess:
        refund = refunds.refund_excess_plan(
            session=session, settings=settings, order=order, plan_line=plan_line,
            units=excess, line_units=product_line.quantity - product_line.refunded_quantity,
            covered=covered)
        _send_later(session, [refund.id])
    return room


def _amount_mismatch(*, session: Session, order: Order, event: StripeEvent, checkout_session,
                     intent, amount: int, currency: str) -> str:
    """Stripe charged what was not priced: no contracts, and a person is told the figures."""
    log.error("order %s: Stripe charged %s %s, order total is %s %s", order.public_id,
              amount, currency, order.total_amount, order.currency)
    event.last_error = f"amount mismatch: charged {amount} {currency}"
    if intent is not None and order.stripe_payment_intent_id is None:
        order.stripe_payment_intent_id = intent.id  # reconciliation names the order by it
        session.add(order)
    created = event.payload.get("created")
    figures = {"order": order.public_id, "expected_amount": order.total_amount,
               "expected_currency": order.currency, "charged_amount": amount,
               "charged_currency": currency,
               "stripe_checkout_session_id": checkout_session.id if checkout_session
               else order.stripe_checkout_session_id,
               "stripe_payment_intent_id": intent.id if intent is not None else None,
               "stripe_charge_id": _charge_id(intent) if intent is not None else None,
               "stripe_event_id": event.id,
               "charged_at": datetime.fromtimestamp(created, tz=UTC).isoformat()
               if isinstance(created, int) else None}
    payment = figures["stripe_payment_intent_id"] or figures["stripe_checkout_session_id"]
    if attention.raise_item(
            session=session, kind="amount_mismatch", key=f"{order.public_id}:{payment}",
            order=order, stripe_event_id=event.id, data=figures,
            summary=f"Order {order.store_order_ref} ({order.public_id}): Stripe charged "
                    f"{format_amount(amount, currency)}, the order total is "
                    f"{format_amount(order.total_amount, order.currency)}; no contracts made"):
        events.record_order_event(session=session, order=order, action="amount_mismatch",
                                    actor="stripe", data=figures)
    return "amount_mismatch"


def record_failure(*, session: Session, settings: Settings, event_id: str, error: str) -> None:
    """Note a failed try; the worker tries the event again after the backoff."""
    row = session.get(StripeEvent, event_id)
    if row is not None and row.processed_at is None:
        jobs.retry_later(row, error, settings)
        session.add(row)


def give_up(*, session: Session, event_id: str, refused: StripeRefused) -> str:
    """An event Stripe can never give the object of: failed, on the attention queue."""
    row = _lock_event(session, event_id)
    if row is None or row.processed_at is not None:
        return "duplicate"
    row.processed_at, row.outcome, row.last_error = utcnow(), "failed", refused.message[:2000]
    session.add(row)
    obj = object_id(row.payload)
    attention.raise_item(
        session=session, kind="stripe_object_missing", key=row.id, stripe_event_id=row.id,
        summary=f"Stripe event {row.id} ({row.type}) names {obj}, which Stripe does not give: "
                f"{refused.message}",
        data={"stripe_event_id": row.id, "type": row.type, "object": obj,
              "stripe_code": refused.stripe_code, "http_status": refused.http_status,
              "error": refused.message[:500], "attempts": row.attempts})
    log.error("Stripe event %s given up: %s", row.id, refused.message)
    return "failed"


def process(*, session: Session, settings: Settings, stripe_client: stripe.StripeClient,
            event_id: str, event_type: str, payload: dict) -> str:
    """Fetch a stored event's object again and apply it (the webhook's and worker's path).

    A Stripe outage records the failed attempt, commits it and raises PaymentProviderError.
    An object Stripe will never give marks the event failed for a person. The caller
    commits the outcome, then calls ``send_refunds``.
    """
    try:
        fetched = fetch(stripe_client, event_type, object_id(payload))
    except PaymentProviderError as exc:
        record_failure(session=session, settings=settings, event_id=event_id,
                       error=exc.message)
        session.commit()
        raise
    except StripeRefused as refused:
        return give_up(session=session, event_id=event_id, refused=refused)
    return apply(session=session, settings=settings, event_id=event_id, fetched=fetched)


def _record_error(session: Session, *, settings: Settings, event_id: str, error: str) -> None:
    """``record_failure`` in a transaction of its own (the failed one was rolled back)."""
    record_failure(session=session, settings=settings, event_id=event_id, error=error)


def run_stripe_events(*, settings: Settings, stripe_client: stripe.StripeClient,
                      limit: int = 50) -> int:
    """Apply stored events a crash or a Stripe outage left unprocessed; returns how many tried.

    Due events are claimed like every other job, one at a time right before each is worked
    on (warranty.db.outbox: ``SKIP LOCKED`` on PostgreSQL, a lease per event), so concurrent
    workers take different events; ``apply`` still locks the row and skips a processed one,
    so a delivery racing a worker does the work once too. An event whose processing raises
    is rolled back, its error recorded on it (it backs off), and the others still go.
    """
    tried = 0
    for row in jobs.each_due(settings=settings, model=StripeEvent,
                             lease_seconds=WORKER_LEASE_SECONDS, limit=limit, pending=PENDING):
        tried += 1
        try:
            with session_scope(settings.database_url) as session:
                outcome = process(session=session, settings=settings,
                                  stripe_client=stripe_client, event_id=row.id,
                                  event_type=row.type, payload=row.payload)
                session.commit()
                send_refunds(session=session, settings=settings, stripe_client=stripe_client)
        except PaymentProviderError as exc:
            log.warning("Stripe event %s still not applied: %s", row.id, exc.message)
            continue
        except jobs.DATABASE_UNAVAILABLE:
            raise  # not this event's fault: the pass ends, the lease brings it back
        except Exception as exc:  # one event's surprise is its own
            log.exception("Stripe event %s could not be applied", row.id)
            jobs.in_transaction(settings, partial(
                _record_error, settings=settings, event_id=row.id,
                error=f"{type(exc).__name__}: {exc}"), patience=WORKER_LEASE_SECONDS / 2)
            continue
        log.info("Stripe event %s recovered: %s", row.id, outcome)
    return tried
