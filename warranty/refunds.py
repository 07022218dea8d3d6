"""Refunds through Stripe, against the original payment, exactly once each.

The cancellation commits the ``Refund`` row (pending, with an idempotency key) together with
the contract's change to cancelled *before* Stripe is called. Then one claimed attempt:

1. list the PaymentIntent's refunds and adopt one already carrying our key in its metadata
   (Stripe succeeded but we crashed before recording it);
2. otherwise check that Stripe's own refunds plus this one stay within what was paid, and
   create the refund with the idempotency key and ``metadata={"warranty_refund_key": key}``;
3. record the Stripe refund id and ``succeeded``.

A Stripe error leaves the row pending with ``attempts``/``last_error``/``next_attempt_at``;
``run_refunds`` (the worker) tries again after a backoff. Stripe's own idempotency would
cover step 1 on real Stripe; the listing makes it hold on stand-ins that ignore the key too.
"""

from __future__ import annotations

import logging
from functools import partial

import stripe
from sqlmodel import select

from warranty import contracts, jobs, notifications
from warranty.dates import utcnow
from warranty.models import Contract, Order, Refund
from warranty.payments import stripe_client
from warranty.settings import Settings

log = logging.getLogger(__name__)

METADATA_KEY = "warranty_refund_key"
# A claim outlives one Stripe call with all its network retries, so no second worker can
# start the same refund while the first one's request may still land.
LEASE_SECONDS = 600
RECORD_PATIENCE_SECONDS = 10.0  # well inside gunicorn's 30 s request timeout


class ExceedsPayment(Exception):
    """Stripe already refunded so much of the payment that this refund would exceed it."""


def refund_key(contract: Contract) -> str:
    """The idempotency key of a contract's refund: one contract, one refund."""
    return f"warranty-refund-{contract.public_id}"


def _find_or_create(client: stripe.StripeClient, *, payment_intent: str, amount: int,
                    key: str, contract_id: str) -> stripe.Refund:
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
                "metadata": {METADATA_KEY: key, "contract": contract_id}},
        options={"idempotency_key": key})


def _read(session, *, refund_id: int) -> tuple[str, int, str, str]:
    """What one attempt needs: idempotency key, amount, PaymentIntent, contract id."""
    refund = session.get(Refund, refund_id)
    contract = session.get(Contract, refund.contract_id)
    order = session.get(Order, refund.order_id)
    return (refund.idempotency_key, refund.amount, order.stripe_payment_intent_id,
            contract.public_id)


def _locked(session, refund_id: int) -> Refund:
    """The refund, re-read under its row lock, after its contract's (the one lock order:
    contract, then its refund; see docs/concurrency.md)."""
    contract_id = session.exec(select(Refund.contract_id).where(Refund.id == refund_id)).one()
    contracts.lock(session, contract_id)
    return session.exec(select(Refund).where(Refund.id == refund_id).with_for_update()
                        .execution_options(populate_existing=True)).one()


def _record(session, *, settings: Settings, refund_id: int, contract_id: str,
            stripe_refund: stripe.Refund | None, error: str | None, permanent: bool) -> None:
    """Record an attempt's outcome (runs again from the start if the database blinked)."""
    refund = _locked(session, refund_id)
    if refund.status != "pending":
        return  # recorded by someone else meanwhile (or by our own try that did commit)
    if stripe_refund is not None:
        refund.stripe_refund_id = stripe_refund.id
    if error is None:
        _succeeded(session, refund)
    elif permanent:
        # Needs a person: retrying cannot help. Staff see it on the contract.
        log.error("refund for %s failed for good: %s", contract_id, error)
        refund.status, refund.last_error = "failed", error[:2000]
    else:
        log.warning("refund for %s will be retried: %s", contract_id, error)
        jobs.retry_later(refund, error, settings)
    session.add(refund)


def _record_error(session, *, settings: Settings, refund_id: int, error: str) -> None:
    """Note an attempt that broke unexpectedly; it is tried again after the backoff."""
    refund = _locked(session, refund_id)
    if refund.status == "pending":
        jobs.retry_later(refund, error, settings)
        session.add(refund)


def _attempt(settings: Settings, refund_id: int) -> None:
    """One claimed attempt at a pending refund; records the outcome."""
    # Reading and recording wait out a short database restart; not long, since the first
    # attempt runs inside the staff member's request. A refund recorded later is still
    # made once: the retry adopts Stripe's refund by its key.
    patience = RECORD_PATIENCE_SECONDS
    key, amount, payment_intent, contract_id = jobs.in_transaction(
        settings, partial(_read, refund_id=refund_id), patience=patience)
    error, permanent, stripe_refund = None, False, None
    try:
        stripe_refund = _find_or_create(stripe_client(settings), payment_intent=payment_intent,
                                        amount=amount, key=key, contract_id=contract_id)
        if stripe_refund.status in ("failed", "canceled"):
            error, permanent = f"Stripe refund {stripe_refund.id} {stripe_refund.status}", True
    except ExceedsPayment as exc:
        error, permanent = str(exc), True
    except stripe.StripeError as exc:
        error = f"{type(exc).__name__}: {exc.user_message or exc}"
    jobs.in_transaction(settings, partial(
        _record, settings=settings, refund_id=refund_id, contract_id=contract_id,
        stripe_refund=stripe_refund, error=error, permanent=permanent), patience=patience)


def _succeeded(session, refund: Refund) -> None:
    """Record a refund Stripe made, audit it and tell the store."""
    refund.status, refund.completed_at = "succeeded", utcnow()
    refund.last_error, refund.next_attempt_at = None, None
    contract = session.get(Contract, refund.contract_id)
    order = session.get(Order, refund.order_id)
    contracts.record(session=session, contract=contract, action="refund_succeeded",
                     actor="stripe", data={"amount": refund.amount, "currency": refund.currency,
                                           "stripe_refund_id": refund.stripe_refund_id})
    notifications.notify_refund_succeeded(session=session, contract=contract, order=order,
                                          refund=refund)


def execute_refund(*, settings: Settings, refund_id: int) -> bool:
    """Try a just-committed refund now; False if a worker holds it or it is not due."""
    if jobs.claim_next(settings=settings, model=Refund, lease_seconds=LEASE_SECONDS,
                       only_id=refund_id) is None:
        return False
    _attempt(settings, refund_id)
    return True


def run_refunds(*, settings: Settings, limit: int = 20) -> int:
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
            _attempt(settings, row.id)
        except jobs.DATABASE_UNAVAILABLE:
            raise  # not this refund's fault: the pass ends, the lease brings it back
        except Exception as exc:  # one refund's surprise is its own
            log.exception("refund %s: the attempt broke", row.id)
            jobs.in_transaction(settings, partial(
                _record_error, settings=settings, refund_id=row.id,
                error=f"{type(exc).__name__}: {exc}"), patience=RECORD_PATIENCE_SECONDS)
    return tried


def promised_on_order(session, order: Order) -> int:
    """Minor units already promised back on ``order`` (every refund not failed)."""
    amounts = session.exec(select(Refund.amount).where(Refund.order_id == order.id,
                                                       Refund.status != "failed")).all()
    return sum(amounts)
