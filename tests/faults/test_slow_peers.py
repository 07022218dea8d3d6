"""Slow peers: an SMTP server, a store endpoint or Stripe that takes its time with every
request, and two workers at once. Each row is leased on its own, right before its work, so
none waits out its lease in a worker's hands and none goes out twice.

The leases are made short here (the module constants the workers read) so that a whole
pass outlasts one lease, as a real pass of 50 rows does against a peer taking seconds each.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import date, timedelta

import pytest
import sqlalchemy as sa
import stripe
from sqlmodel import func, select

from tests.contracts.test_cancellation import cancel_in_db, stripe_refunds
from tests.factories import stripe_paid_order
from tests.faults.conftest import GatedStripe
from warranty.contracts import notices as notifications
from warranty.contracts import refunds as contract_refunds
from warranty.core.dates import utcnow
from warranty.db.engine import Session, get_engine
from warranty.notify import mail
from warranty.notify import webhooks as store_webhooks
from warranty.notify.models import MailMessage, OutboundWebhook
from warranty.orders.models import Refund
from warranty.payments import events as stripe_events
from warranty.payments import refunds
from warranty.payments.client import make_client
from warranty.payments.models import StripeEvent

ROWS = 8
PEER_SECONDS = 0.3  # each mail, POST or Stripe request
LEASE = 1.5  # per row: ample for one; a pass of ROWS outlasts it many times


def _pending(database_url: str, model, pending) -> int:
    """How many rows still want work (a fresh read)."""
    with Session(get_engine(database_url)) as session:
        return session.exec(select(func.count()).select_from(model).where(pending)).one()


def two_workers(run, left, timeout: float = 30.0) -> None:
    """Two workers released together, each passing until nothing is ``left()``."""
    start = threading.Barrier(2)

    def work():
        start.wait()
        deadline = time.monotonic() + timeout
        while left() and time.monotonic() < deadline:
            if not run():
                time.sleep(0.05)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout + 10)
    assert not left(), "the workers did not finish"


def test_a_slow_smtp_server_gets_each_mail_once(db, mail_settings, smtp_sink, database_url,
                                               monkeypatch):
    monkeypatch.setattr(mail, "LEASE_SECONDS", LEASE)
    smtp_sink.delay_seconds = PEER_SECONDS
    for n in range(ROWS):
        notifications.queue_mail(session=db, to=f"c{n}@example.com", subject=f"m{n}",
                                 body="hello", kind="test")
    db.commit()
    two_workers(lambda: mail.run_mail(settings=mail_settings, limit=50),
                lambda: _pending(database_url, MailMessage, MailMessage.status == "pending"))
    received = Counter(m.subject for m in smtp_sink.wait_for(ROWS))
    assert received == Counter(f"m{n}" for n in range(ROWS))  # each exactly once
    db.expire_all()
    assert db.exec(select(MailMessage.status, MailMessage.attempts)).all() == [
        ("sent", 1)] * ROWS


def test_a_slow_store_gets_each_webhook_once(db, hook_settings, receiver, database_url,
                                            monkeypatch):
    _, got, status = receiver
    monkeypatch.setattr(store_webhooks, "LEASE_SECONDS", LEASE)
    status[0] = lambda: time.sleep(PEER_SECONDS) or 200
    for n in range(ROWS):
        store_webhooks.queue_event(session=db, type="contract.created", data={"n": n})
    db.commit()
    two_workers(lambda: store_webhooks.run_webhooks(settings=hook_settings, limit=50),
                lambda: _pending(database_url, OutboundWebhook,
                                 OutboundWebhook.status == "pending"))
    delivered = Counter(headers["Warranty-Event-Id"] for headers, _ in got)
    ids = db.exec(select(OutboundWebhook.event_id)).all()
    assert delivered == Counter(ids) and len(ids) == ROWS  # each exactly once
    db.expire_all()
    assert db.exec(select(OutboundWebhook.status, OutboundWebhook.attempts)).all() == [
        ("delivered", 1)] * ROWS


@pytest.fixture
def slow_stripe(mail_settings):
    """Settings whose Stripe (the stand-in) answers each request PEER_SECONDS late."""
    with GatedStripe(mail_settings.stripe_api_base, delay=PEER_SECONDS) as proxy:
        yield mail_settings.model_copy(update={"stripe_api_base": proxy.url})


def test_slow_stripe_gets_each_refund_retry_once(db, mail_settings, slow_stripe, database_url,
                                                 monkeypatch):
    monkeypatch.setattr(refunds, "LEASE_SECONDS", 3 * LEASE)  # 3 Stripe calls per refund
    order, created = stripe_paid_order(db, quantity=ROWS, plan_quantity=ROWS,
                                       purchase_date=date(2026, 1, 10))
    for contract in created:  # confirmed while Stripe was down: the worker retries them
        cancel_in_db(db, mail_settings, contract, date(2026, 7, 1))
    two_workers(lambda: refunds.run_refunds(settings=slow_stripe,
                                            stripe_client=make_client(slow_stripe), limit=50),
                lambda: _pending(database_url, Refund, Refund.status == "pending"), 60)
    assert sorted(stripe_refunds(order)) == sorted(
        (5058, contract_refunds.refund_key(c)) for c in created)  # one each
    db.expire_all()
    assert db.exec(select(Refund.status, Refund.attempts)).all() == [
        ("succeeded", 1)] * len(created)


def test_slow_stripe_gets_each_event_recovered_once(db, stripe_standin, slow_stripe,
                                                    database_url, monkeypatch):
    monkeypatch.setattr(stripe_events, "WORKER_LEASE_SECONDS", LEASE)
    for n in range(ROWS):  # payments of no order of ours: fetched, then acknowledged
        intent = stripe.PaymentIntent.create(amount=1000 + n, currency="jpy",
                                             payment_method="pm_card_visa", confirm=True)
        event = {"id": f"evt_slow_{n}", "object": "event", "type": "payment_intent.succeeded",
                 "created": 1, "data": {"object": {"id": intent.id,
                                                   "object": "payment_intent"}}}
        stripe_events.record(session=db, event=stripe.Event.construct_from(event, "k"))
    db.exec(sa.update(StripeEvent).values(next_attempt_at=utcnow() - timedelta(seconds=1)))
    db.commit()  # the deliveries that stored them died: due now
    slow = make_client(slow_stripe)
    two_workers(lambda: stripe_events.run_stripe_events(settings=slow_stripe,
                                                        stripe_client=slow, limit=50),
                lambda: _pending(database_url, StripeEvent, stripe_events.PENDING))
    db.expire_all()
    # One try by the delivery that stored it, one by the one worker that claimed it.
    assert db.exec(select(StripeEvent.attempts)).all() == [2] * ROWS
