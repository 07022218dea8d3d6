"""Refunds through Stripe, against the original payment, exactly once each, recorded as Stripe
reports them.

The change that owes the money (a cancellation, a plan that could not be added) commits the
``Refund`` row (pending, with an idempotency key) in its own transaction *before* Stripe is
called. Then one claimed attempt:

1. list the PaymentIntent's refunds and adopt one already carrying our key in its metadata
   (Stripe made it but we crashed before recording it);
2. otherwise check that Stripe's own refunds plus this one stay within what was paid, and
   create the refund with the idempotency key and ``metadata={"warranty_refund_key": key}``;
3. record what Stripe answered (``record_stripe_refund``).

A refund is what Stripe says it is: ``succeeded`` only once Stripe says so; a refund Stripe
holds as ``pending`` stays pending (the row keeps Stripe's id and status, and is never created
again) until a ``refund.updated``/``charge.refund.updated`` event or the worker's re-read
(every ``POLL_SECONDS``) reports it settled; Stripe's ``failed``/``canceled`` makes it
``failed``, on the staff attention queue. Stripe may still fail a refund it reported
succeeded (a card that can't take it back): that is recorded the same way.

Stripe's errors: one that will never succeed (a 4xx: charge already refunded, amount too
large, unknown PaymentIntent, ...) makes the refund ``failed`` for a person (attention queue,
metric), never retried; a transient one (network, 5xx, 429) leaves it pending with
``attempts``/``last_error``/``next_attempt_at`` and ``run_refunds`` (the worker) tries again
after a backoff. Stripe's idempotency would cover step 1 on real Stripe; the listing makes
it hold on stand-ins that ignore the key too.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from functools import partial

import stripe
from sqlmodel import Session, select

from warranty.attention import services as attention
from warranty.contracts import lifecycle as contracts
from warranty.contracts import notices as notifications
from warranty.contracts.models import Contract
from warranty.contracts.refunds import figures, order_event, record_succeeded
from warranty.core.dates import store_today, utcnow
from warranty.core.money import format_amount
from warranty.core.settings import Settings
from warranty.db import outbox as jobs
from warranty.db.engine import session_scope, write_transaction
from warranty.orders import tax as order_tax
from warranty.orders.models import Order, OrderLine, Refund
from warranty.payments import client as payments
from warranty.periods import booking as periods

log = logging.getLogger(__name__)

METADATA_KEY = "warranty_refund_key"
# A claim outlives one Stripe call with all its network retries, so no second worker can
# start the same refund while the first one's request may still land.
LEASE_SECONDS = 600
RECORD_PATIENCE_SECONDS = 10.0  # well inside gunicorn's 30 s request timeout
# A refund Stripe holds as pending is read again this often, in case its event is lost.
POLL_SECONDS = 3600
SETTLED = {"succeeded": "succeeded", "failed": "failed", "canceled": "failed"}


class ExceedsPayment(Exception):
    """Stripe already refunded so much of the payment that this refund would exceed it."""


def excess_refund_key(order: Order) -> str:
    """The idempotency key of a plan order's automatic refund: one per order."""
    return f"warranty-excess-{order.public_id}"


def _find_or_create(client: stripe.StripeClient, *, payment_intent: str, amount: int,
                    key: str, label: dict) -> stripe.Refund:
    """Stripe's refund carrying ``key``, creating it only if none exists yet."""
    already = 0
    listing = client.v1.refunds.list(params={"payment_intent": payment_intent, "limit": 100})
    for existing in listing.auto_paging_iter():
        if existing.metadata.to_dict().get(METADATA_KEY) == key:
            return existing
        if existing.status not in ("failed", "canceled"):
            already += existing.amount
    intent = client.v1.payment_intents.retrieve(payment_intent)
    paid = getattr(intent, "amount_received", None) or intent.amount
    if already + amount > paid:
        raise ExceedsPayment(f"Stripe already refunded {already} of {paid} on {payment_intent}; "
                             f"{amount} more would exceed the payment")
    return client.v1.refunds.create(
        params={"payment_intent": payment_intent, "amount": amount,
                "metadata": {METADATA_KEY: key, **label}},
        options={"idempotency_key": key})


def _label(session: Session, refund: Refund) -> dict:
    """What the refund is for, for Stripe's metadata and our logs."""
    if refund.contract_id is not None:
        return {"contract": session.get(Contract, refund.contract_id).public_id}
    return {"order": session.get(Order, refund.order_id).public_id}


def _read(session: Session, *, refund_id: int) -> tuple[str, int, str | None, dict, str | None]:
    """What one attempt needs: key, amount, PaymentIntent, label, Stripe's refund id."""
    refund = session.get(Refund, refund_id)
    order = session.get(Order, refund.order_id)
    return (refund.idempotency_key, refund.amount, order.stripe_payment_intent_id,
            _label(session, refund), refund.stripe_refund_id)


def lock(session: Session, refund_id: int) -> Refund:
    """The refund, re-read under its row lock, after its contract's if it has one (the one
    lock order: contract, then its refund; see docs/concurrency.md)."""
    write_transaction(session)
    contract_id = session.exec(select(Refund.contract_id).where(Refund.id == refund_id)).one()
    if contract_id is not None:
        contracts.lock(session, contract_id)
    return session.exec(select(Refund).where(Refund.id == refund_id).with_for_update(key_share=True)
                        .execution_options(populate_existing=True)).one()


def _record(session: Session, *, settings: Settings, refund_id: int, label: dict,
            stripe_refund: stripe.Refund | None, error: str | None, permanent: bool) -> None:
    """Record an attempt's outcome (runs again from the start if the database blinked)."""
    refund = lock(session, refund_id)
    if refund.status != "pending":
        return  # recorded by someone else meanwhile (an event, or our own try that committed)
    if stripe_refund is not None:
        record_stripe_refund(session=session, settings=settings, refund=refund,
                             stripe_refund=stripe_refund)
    elif permanent:
        # Needs a person: retrying cannot help.
        log.error("refund for %s refused for good: %s", label, error)
        refund.status, refund.last_error = "failed", error[:2000]
        refund.next_attempt_at = None
        _needs_person(session, refund, kind="refund_refused", error=error)
    else:
        log.warning("refund for %s will be retried: %s", label, error)
        jobs.retry_later(refund, error, settings)
    session.add(refund)


def record_stripe_refund(*, session: Session, settings: Settings, refund: Refund,
                         stripe_refund) -> bool:
    """Bring a (locked) refund row in line with Stripe's refund object; True if it changed.

    Shared by the attempt that made the refund, the worker's re-read of a pending one, and
    Stripe's refund events, so whichever comes first records it and the others find it
    recorded.
    """
    changed = False
    if refund.stripe_refund_id is None:
        refund.stripe_refund_id, changed = stripe_refund.id, True
    stripe_status = getattr(stripe_refund, "status", None) or "pending"
    if refund.stripe_status != stripe_status:
        refund.stripe_status, changed = stripe_status, True
    settled = SETTLED.get(stripe_status)
    if settled == "succeeded" and refund.status == "pending":
        record_succeeded(session, refund)
        changed = True
    elif settled == "failed" and refund.status in ("pending", "succeeded"):
        reason = getattr(stripe_refund, "failure_reason", None) or "no reason given"
        _failed_at_stripe(session, refund, f"Stripe refund {stripe_refund.id} {stripe_status}: "
                                           f"{reason}")
        changed = True
    elif settled is None and refund.status == "pending":
        # Stripe holds it: never create it again; read it again later in case the event
        # that settles it never comes.
        refund.last_error = None
        refund.next_attempt_at = utcnow() + timedelta(seconds=POLL_SECONDS)
    session.add(refund)
    return changed
def _record_error(session, *, settings: Settings, refund_id: int, error: str) -> None:
    """Note an attempt that broke unexpectedly; it is tried again after the backoff."""
    refund = lock(session, refund_id)
    if refund.status == "pending":
        jobs.retry_later(refund, error, settings)
        session.add(refund)


def _attempt(settings: Settings, client: stripe.StripeClient, refund_id: int) -> None:
    """One claimed attempt at a pending refund; records the outcome."""
    # Reading and recording wait out a short database restart; not long, since the first
    # attempt runs inside the staff member's request. A refund recorded later is still
    # made once: the retry adopts Stripe's refund by its key.
    patience = RECORD_PATIENCE_SECONDS
    key, amount, payment_intent, label, stripe_id = jobs.in_transaction(
        settings, partial(_read, refund_id=refund_id), patience=patience)
    error, permanent, stripe_refund = None, False, None
    try:
        if stripe_id is not None:  # Stripe has it (pending): only read what it says now
            stripe_refund = client.v1.refunds.retrieve(stripe_id)
        elif not payment_intent:
            error, permanent = "the order has no Stripe payment to refund", True
        else:
            stripe_refund = _find_or_create(client, payment_intent=payment_intent,
                                            amount=amount, key=key, label=label)
    except ExceedsPayment as exc:
        error, permanent = str(exc), True
    except stripe.StripeError as exc:
        error, permanent = payments.describe(exc), payments.is_permanent(exc)
    jobs.in_transaction(settings, partial(
        _record, settings=settings, refund_id=refund_id, label=label,
        stripe_refund=stripe_refund, error=error, permanent=permanent), patience=patience)


def _failed_at_stripe(session: Session, refund: Refund, error: str) -> None:
    """Stripe says the money did not go back: failed, audited, for a person."""
    was = refund.status
    refund.status, refund.last_error, refund.next_attempt_at = "failed", error[:2000], None
    log.error("refund %s failed at Stripe (was %s): %s", refund.id, was, error)
    order = session.get(Order, refund.order_id)
    data = {**figures(refund, order), "was": was}
    if refund.contract_id is not None:
        contract = session.get(Contract, refund.contract_id)
        contracts.record(session=session, contract=contract, action="refund_failed",
                         actor="stripe", reason=error, data=data)
        notifications.notify_refund_failed(session=session, contract=contract, order=order,
                                           refund=refund)
    else:
        order_event(session, order, "refund_failed", data, reason=error)
    _needs_person(session, refund, kind="refund_failed", error=error)


def _needs_person(session: Session, refund: Refund, *, kind: str, error: str) -> None:
    """Put a refund that will not happen on the attention queue, with its figures."""
    order = session.get(Order, refund.order_id)
    what = _label(session, refund)
    name = what.get("contract") or what.get("order")
    amount = format_amount(refund.amount, refund.currency)
    verb = "was refused by Stripe" if kind == "refund_refused" else "failed at Stripe"
    attention.raise_item(
        session=session, kind=kind, key=f"refund:{refund.id}", order=order, refund=refund,
        summary=f"The {amount} refund for {name} (order {order.store_order_ref}) {verb}: "
                f"{error}",
        data={**figures(refund, order), **what, "error": error[:500]})


def refund_excess_plan(*, session: Session, settings: Settings, order: Order,
                       plan_line: OrderLine, units: int, line_units: int,
                       covered: int) -> Refund:
    """Refund ``units`` plans of a paid post-purchase order that the line had no room for.

    The order-level refund (no contract was ever made), its audit row, the attention entry
    and the customer's mail are written in the caller's transaction; Stripe is called after
    the commit (``execute_refund``), once: the idempotency key is the order's.
    """
    # The line's last ``units`` units (contracts took the first), at what was paid for them
    # (tax included), with their tax.
    shares = order_tax.unit_shares(plan_line, order.currency)[plan_line.quantity - units:]
    amount, tax = sum(g for g, _ in shares), sum(t for _, t in shares)
    today = store_today(settings.timezone)
    refund = Refund(kind="excess_plan", contract_id=None, order_id=order.id, amount=amount,
                    tax=tax,
                    currency=order.currency, cancel_date=today,
                    booked_on=periods.booking_date(session, today),
                    reason=f"{units} plan(s) for units that already had one",
                    idempotency_key=excess_refund_key(order))
    session.add(refund)
    session.flush()
    data = {**figures(refund, order), "units_refunded": units, "unit_price": plan_line.unit_price,
            "line_units": line_units, "units_with_a_plan": covered, "sku": plan_line.sku}
    order_event(session, order, "excess_plan_refunded", data, actor="system",
                 reason="every unit of the line already had a plan when this order was paid")
    attention.raise_item(
        session=session, kind="excess_plan_refunded", key=order.public_id, order=order,
        refund=refund,
        summary=f"Order {order.store_order_ref}: {units} post-purchase plan(s) for {plan_line.sku}"
                f" paid when {covered} of {line_units} unit(s) already had a plan; "
                f"{format_amount(amount, order.currency)} refunded automatically",
        data=data)
    notifications.notify_excess_plan_refunded(session=session, order=order, plan_line=plan_line,
                                              units=units, refund=refund)
    return refund


def execute_refund(*, settings: Settings, stripe_client: stripe.StripeClient, refund_id: int,
                   wait_seconds: float = 0.0) -> bool:
    """Try a just-committed refund now; False if a worker holds it or it is not due.

    ``wait_seconds``: while the row is due but locked by a short transaction (the claim
    skips locked rows), try to claim it again for up to this long.
    """
    deadline = time.monotonic() + wait_seconds
    while jobs.claim_next(settings=settings, model=Refund, lease_seconds=LEASE_SECONDS,
                          only_id=refund_id) is None:
        if time.monotonic() >= deadline or not _due(settings, refund_id):
            return False
        time.sleep(0.1)
    _attempt(settings, stripe_client, refund_id)
    return True


def _due(settings: Settings, refund_id: int) -> bool:
    """Whether a refund still waits to be tried now (pending, no lease or backoff running)."""
    with session_scope(settings.database_url) as session:
        refund = session.get(Refund, refund_id)
        return refund is not None and refund.status == "pending" and (
            refund.next_attempt_at is None or refund.next_attempt_at <= utcnow())


def run_refunds(*, settings: Settings, stripe_client: stripe.StripeClient,
                limit: int = 20) -> int:
    """Retry up to ``limit`` due pending refunds, each claimed (leased) right before its
    attempt; returns how many were tried.

    An attempt that breaks in a way nobody foresaw is recorded on its refund, which backs
    off; the other refunds still get their turn. (What Stripe's answers mean for a refund
    is ``_attempt``'s business.)
    """
    tried = 0
    for row in jobs.each_due(settings=settings, model=Refund, lease_seconds=LEASE_SECONDS,
                             limit=limit):
        tried += 1
        try:
            _attempt(settings, stripe_client, row.id)
        except jobs.DATABASE_UNAVAILABLE:
            raise  # not this refund's fault: the pass ends, the lease brings it back
        except Exception as exc:  # one refund's surprise is its own
            log.exception("refund %s: the attempt broke", row.id)
            jobs.in_transaction(settings, partial(
                _record_error, settings=settings, refund_id=row.id,
                error=f"{type(exc).__name__}: {exc}"), patience=RECORD_PATIENCE_SECONDS)
    return tried


def stripe_time(timestamp) -> datetime:
    """A Stripe ``created`` (Unix seconds) as an aware UTC datetime (now if missing)."""
    return datetime.fromtimestamp(timestamp, tz=UTC) if isinstance(timestamp, int) else utcnow()
