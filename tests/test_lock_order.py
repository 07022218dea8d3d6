"""One lock order across paths (PostgreSQL): two different paths that change the same rows
never wait for each other in a circle (docs/concurrency.md, "Lock order").

A deadlock is not a lost update, PostgreSQL breaks it, but one of the two is rolled back: a
Stripe event answered 409 and delivered again later, a refund's outcome recorded on a
retry. Each test counts the deadlocks PostgreSQL detected in the test database.
"""

from __future__ import annotations

import threading
import time
from datetime import date, timedelta

import pytest
import sqlalchemy as sa
import stripe
from sqlmodel import select

from tests.factories import stripe_paid_order
from tests.payments.test_stripe_webhooks import post_event
from tests.races import postgres_only, wait_until_blocked
from tests.stripe_helpers import stripe_events, wait_for
from warranty.changes import cancellation
from warranty.claims import payouts
from warranty.contracts import lifecycle as contracts
from warranty.contracts.models import ContractEvent
from warranty.db.engine import Session, get_engine
from warranty.orders.models import Refund
from warranty.payments import refunds
from warranty.payments.client import make_client
from warranty.post_purchase import plans as post_purchase


def deadlocks(engine: sa.Engine) -> int:
    """Deadlocks PostgreSQL has detected in the test database so far."""
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT pg_stat_clear_snapshot()")
        return conn.exec_driver_sql("SELECT deadlocks FROM pg_stat_database "
                                    "WHERE datname = current_database()").scalar()


def blocked(engine: sa.Engine) -> int:
    """Connections to the test database waiting for a lock."""
    with engine.connect() as conn:
        return conn.exec_driver_sql(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock'").scalar()


def wait_blocked(engine: sa.Engine, count: int, thread: threading.Thread,
                 timeout: float = 20.0) -> None:
    """Wait until ``count`` connections wait for a lock, or ``thread`` (the last request
    started) is done: it needed none of the rows held."""
    deadline = time.monotonic() + timeout
    while blocked(engine) < count and thread.is_alive():
        assert time.monotonic() < deadline, f"fewer than {count} connections waited"
        time.sleep(0.05)


@pytest.fixture
def pg(database_url):
    postgres_only(database_url)
    return get_engine(database_url)


def test_a_refund_event_and_the_refunds_own_answer_never_deadlock(
        pg, stripe_server, stripe_settings, db):
    """Stripe's refund.created arrives while the attempt that made the refund records
    Stripe's answer, and a staff request holds the plan for a moment (a claim decision):
    the attempt waits for the plan, the event takes the order and the refund. Both must
    come through; the refund succeeds once, with one audit row."""
    _, (contract,) = stripe_paid_order(db, purchase_date=date(2026, 1, 10))
    refund = cancellation.cancel_contract(
        session=db, settings=stripe_settings, contract_id=contract.public_id,
        cancel_date=date(2026, 1, 20), today=date(2026, 1, 25), actor="staff", reason="r")
    db.commit()
    order_intent = db.get(Refund, refund.id)
    intent = db.exec(sa.text("SELECT stripe_payment_intent_id FROM orders WHERE id = :id"),
                     params={"id": order_intent.order_id}).scalar()
    # Stripe made the refund (our key in its metadata); our answer is not recorded yet.
    made = stripe.Refund.create(payment_intent=intent, amount=refund.amount,
                                metadata={refunds.METADATA_KEY: refund.idempotency_key})
    (event,) = wait_for(lambda: stripe_events("refund.created", made.id))
    before = deadlocks(pg)

    answers: dict = {}
    with Session(pg) as holder:  # a staff request holding the plan for a moment
        contracts.lock(holder, contract.id)
        attempt = threading.Thread(target=lambda: answers.setdefault(
            "attempt", refunds._attempt(stripe_settings, make_client(stripe_settings), refund.id)))
        attempt.start()
        wait_until_blocked(pg)  # the attempt waits for the plan to record Stripe's answer
        delivery = threading.Thread(target=lambda: answers.setdefault(
            "event", post_event(stripe_server, event)))
        delivery.start()
        wait_blocked(pg, 2, delivery)  # the event waits too, or needs nothing held
        holder.rollback()
    attempt.join(30)
    delivery.join(30)
    assert not attempt.is_alive() and not delivery.is_alive()
    assert answers["event"].status_code == 200, answers["event"].text
    time.sleep(0.6)  # statistics are flushed at most every 0.5 s
    assert deadlocks(pg) == before
    db.expire_all()
    assert db.get(Refund, refund.id).status == "succeeded"
    audit = db.exec(select(ContractEvent.action).where(
        ContractEvent.contract_id == contract.id)).all()
    assert audit.count("refund_succeeded") == 1


def test_a_post_purchase_checkout_and_a_return_of_the_same_line_never_deadlock(
        pg, stripe_server, stripe_settings, db, store_key, staff_headers):
    """A shopper buys a plan for the line's open unit while staff record a return of
    another unit, and a third request holds the line for a moment: the checkout waits for
    the line, then the return (holding the order) waits for it too. The checkout stores its
    plan order, which refers to the original order: that must not wait for the return."""
    import requests

    from tests.factories import paid_order
    from warranty.core.dates import store_today
    from warranty.orders.models import Order, OrderLine

    today = store_today(stripe_settings.timezone)
    order, _ = paid_order(db, quantity=3, plan_quantity=1, purchase_date=today)
    line = db.exec(select(OrderLine).where(OrderLine.order_id == order.id,
                                           OrderLine.kind == "product")).one()
    offers = requests.get(f"{stripe_server}/api/v1/orders/{order.public_id}/"
                          "post-purchase-offers", headers=store_key, timeout=30).json()
    token = offers["lines"][0]["offers"][0]["offer_token"]
    before = deadlocks(pg)
    answers: dict = {}

    def buy():
        answers["buy"] = requests.post(
            f"{stripe_server}/api/v1/checkout/post-purchase", headers=store_key, timeout=60,
            json={"order_id": order.public_id, "line_no": 1, "offer_token": token,
                  "success_url": "https://shop.example/ok",
                  "cancel_url": "https://shop.example/no"})

    def give_back():
        answers["return"] = requests.post(
            f"{stripe_server}/api/v1/orders/{order.public_id}/lines/1/returns",
            headers=staff_headers, timeout=60, json={"quantity": 1, "reason": "returned"})

    with Session(pg) as holder:
        post_purchase.lock_line(holder, line.id)
        shopper = threading.Thread(target=buy)
        shopper.start()
        wait_until_blocked(pg)
        staff = threading.Thread(target=give_back)
        staff.start()
        wait_blocked(pg, 2, staff)
        holder.rollback()
    shopper.join(60)
    staff.join(60)
    assert answers["buy"].status_code == 201, answers["buy"].text
    assert answers["return"].status_code == 200, answers["return"].text
    time.sleep(0.6)
    assert deadlocks(pg) == before
    db.expire_all()
    assert db.get(OrderLine, line.id).refunded_quantity == 1
    assert db.exec(select(Order).where(Order.parent_order_id == order.id)).one()


def test_every_path_on_one_order_at_once_never_deadlocks(
        pg, stripe_server, stripe_settings, db, store_key, staff_headers):
    """Three rounds of eight paths on one order released together, each on its own
    connection: a staff cancellation, a claim payout, a transfer, a product return, Stripe's
    event for a refund made in its dashboard, a month close, the expiry job and the refund
    worker. Each either does its work or is refused with its own reason; PostgreSQL never
    has to break a circle of locks."""
    import requests

    from tests.claims.helpers import file
    from tests.factories import load_rules, paid_order
    from tests.races import post, together
    from warranty import worker
    from warranty.auth.credentials import issue_token
    from warranty.core.dates import store_today

    load_rules(db)
    finance = {"Authorization": f"Bearer {issue_token(session=db, name='books', role='finance')}"}
    db.commit()
    today = store_today(stripe_settings.timezone)
    bought = today.replace(day=1) - timedelta(days=20)  # last month: it can be closed
    month = f"{bought:%Y-%m}"
    before = deadlocks(pg)

    def one_round(round_no: int) -> list:
        order, plans = paid_order(db, quantity=3, plan_quantity=3, purchase_date=bought,
                                  order_ref=f"L-{round_no}")
        intent = stripe.PaymentIntent.create(amount=order.total_amount, currency="jpy",
                                             payment_method="pm_card_visa", confirm=True)
        order.stripe_payment_intent_id = intent.id
        db.add(order)
        db.commit()
        claim = file(db, stripe_settings, plans[1], incident=bought, failure="breakdown",
                     today=today)
        claim.status, claim.decision, claim.approved_amount = "approved", "repair", 2000
        db.add(claim)
        db.commit()
        assert payouts.payout_quote(db, plans[1], claim).amount == 2000 - plans[1].deductible
        outside = stripe.Refund.create(payment_intent=intent.id, amount=120000)
        (event,) = wait_for(lambda: stripe_events("refund.created", outside.id))
        base = stripe_server
        amount = requests.get(
            f"{base}/api/v1/contracts/{plans[0].public_id}/cancellation-quote",
            headers=staff_headers, timeout=30).json()["amount"]
        return together(
            lambda: post(f"{base}/api/v1/contracts/{plans[0].public_id}/cancel",
                         headers=staff_headers, json={"amount": amount, "reason": "asked"}),
            lambda: post(f"{base}/api/v1/claims/{claim.public_id}/payout",
                         headers=staff_headers, json={"method": "bank_transfer",
                                                      "reference": "T"}),
            lambda: post(f"{base}/api/v1/contracts/{plans[2].public_id}/transfer",
                         headers=staff_headers, json={"email": f"new{round_no}@example.com"}),
            lambda: post(f"{base}/api/v1/orders/{order.public_id}/lines/1/returns",
                         headers=staff_headers, json={"quantity": 1}),
            lambda: post_event(base, event),
            lambda: post(f"{base}/api/v1/periods/{month}/close", headers=finance, json={}),
            lambda: worker.run_expiry(settings=stripe_settings),
            lambda: refunds.run_refunds(settings=stripe_settings,
                                        stripe_client=make_client(stripe_settings)))

    for round_no in range(3):
        for answer in one_round(round_no):
            if isinstance(answer, requests.Response):
                assert answer.status_code < 500, answer.text
                if answer.status_code == 409:
                    assert answer.json()["error"]["code"] != "concurrent_change", answer.text
    time.sleep(0.6)
    assert deadlocks(pg) == before
