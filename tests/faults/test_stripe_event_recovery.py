"""Stripe events stored but never applied (a killed app, Stripe down) are finished once."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sqlite3
import threading
import time
from datetime import timedelta

import requests
import sqlalchemy as sa
import stripe
from sqlmodel import func, select

from tests.faults.conftest import GatedStripe, gunicorn, wait_up, worker_pids
from tests.payments.test_stripe_webhooks import post_event
from tests.stripe_helpers import order_state, wait_for
from warranty.core.dates import utcnow
from warranty.db import outbox as jobs
from warranty.db.engine import Session, get_engine
from warranty.notify.models import MailMessage
from warranty.payments import events as stripe_events
from warranty.payments.client import make_client
from warranty.payments.models import StripeEvent


def _event(database_url: str, event_id: str) -> StripeEvent:
    """The stored event, read fresh."""
    with Session(get_engine(database_url)) as session:
        return session.get(StripeEvent, event_id)


def _age(database_url: str, seconds: float) -> None:
    """Time passes: every stored event was received, and is due, ``seconds`` earlier."""
    with Session(get_engine(database_url)) as session:
        for row in session.exec(select(StripeEvent)).all():
            row.received_at -= timedelta(seconds=seconds)
            row.next_attempt_at -= timedelta(seconds=seconds)
            session.add(row)
        session.commit()


def _backends(engine: sa.Engine, condition: str) -> int:
    """How many connections to the test database match ``condition`` (a fresh snapshot)."""
    with engine.connect() as conn:
        return conn.exec_driver_sql("SELECT count(*) FROM pg_stat_activity WHERE datname = "
                                    f"current_database() AND {condition}").scalar()


def _mails(database_url: str) -> int:
    """How many mails are queued or sent."""
    with Session(get_engine(database_url)) as session:
        return session.exec(select(func.count()).select_from(MailMessage)).one()


def _hold_postgres(held: contextlib.ExitStack, database_url: str, order_id: str,
                   _stripe: GatedStripe, deliver, answers: list) -> None:
    """Hold the order row: the webhook stores its event, then waits for the row in apply."""
    engine = get_engine(database_url)
    hold = held.enter_context(engine.connect())
    hold.execute(sa.text("SELECT id FROM orders WHERE public_id = :p FOR UPDATE"),
                 {"p": order_id})
    deliver()
    wait_for(lambda: _backends(engine, "wait_event_type = 'Lock'") or answers)


def _hold_sqlite(held: contextlib.ExitStack, database_url: str, _order_id: str,
                 stripe_gate: GatedStripe, deliver, answers: list) -> None:
    """Hold SQLite's write lock from another connection (BEGIN IMMEDIATE), taken while the
    webhook fetches from Stripe after storing its event: its apply then waits for the lock."""
    stripe_gate.gate.clear()
    deliver()
    wait_for(lambda: stripe_gate.received or answers)  # stored, now fetching from Stripe
    lock = sqlite3.connect(sa.make_url(database_url).database, isolation_level=None)
    held.callback(lock.close)
    lock.execute("BEGIN IMMEDIATE")
    held.callback(lock.execute, "ROLLBACK")
    stripe_gate.gate.set()
    wait_for(lambda: stripe_gate.answered >= 2 and stripe_gate.answered == stripe_gate.received
             or answers)  # the session and its PaymentIntent fetched: on into apply
    time.sleep(0.5)


def test_app_killed_mid_webhook_is_finished_once_by_the_worker(
        paid_without_webhooks, stripe_settings, database_url):
    _, order_id, completed, _ = paid_without_webhooks
    postgres = database_url.startswith("postgresql")
    hold = _hold_postgres if postgres else _hold_sqlite
    with GatedStripe(stripe_settings.stripe_api_base) as stripe_gate, gunicorn(
            stripe_settings.model_copy(update={"stripe_api_base": stripe_gate.url})) as (
            base, master):
        (victim,) = worker_pids(master)
        answers = []

        def deliver():
            try:
                answers.append(post_event(base, completed))
            except requests.RequestException as exc:
                answers.append(exc)

        thread = threading.Thread(target=deliver)
        with contextlib.ExitStack() as held:
            hold(held, database_url, order_id, stripe_gate, thread.start, answers)
            assert not answers, answers[0].text
            assert _event(database_url, completed["id"]).processed_at is None
            os.kill(victim, signal.SIGKILL)
            thread.join(timeout=10)
        assert isinstance(answers[0], requests.ConnectionError)
        wait_for(lambda: worker_pids(master) and worker_pids(master) != [victim])
        wait_up(base)
        if postgres:  # the dead worker's transaction is rolled back when its backend ends
            engine = get_engine(database_url)
            wait_for(lambda: not _backends(engine, "state LIKE 'idle in transaction%%'"))
        else:
            with get_engine(database_url).connect() as conn:
                assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
        # Stored, not applied.
        assert _event(database_url, completed["id"]).processed_at is None
        assert order_state(database_url, order_id)[0].status == "pending"
        api = make_client(stripe_settings)
        assert stripe_events.run_stripe_events(settings=stripe_settings, stripe_client=api,
                                               limit=10) == 0  # leased
        _age(database_url, 60)
        assert stripe_events.run_stripe_events(settings=stripe_settings, stripe_client=api,
                                               limit=10) == 1
        order, contracts = order_state(database_url, order_id)
        assert order.status == "paid" and len(contracts) == 3
        assert stripe_events.run_stripe_events(settings=stripe_settings, stripe_client=api,
                                               limit=10) == 0
        mails = _mails(database_url)
        again = post_event(base, completed)  # Stripe's own redelivery, later
        assert again.status_code == 200 and again.json()["outcome"] == "duplicate"
    assert len(order_state(database_url, order_id)[1]) == 3 and _mails(database_url) == mails
    assert mails == 1


def _due_in(database_url: str, event_id: str) -> float:
    """Seconds until the stored event is due for the worker."""
    return (_event(database_url, event_id).next_attempt_at - utcnow()).total_seconds()


def test_a_failing_event_is_retried_at_the_backoff_times_and_not_before(
        paid_without_webhooks, stripe_settings, database_url, db):
    _, order_id, completed, _ = paid_without_webhooks
    # What a delivery that died right after storing the event leaves: its lease, one try.
    stripe_events.record(session=db, event=stripe.Event.construct_from(completed, "k"))
    db.commit()
    event_id = completed["id"]
    assert abs(_due_in(database_url, event_id) - stripe_events.DELIVERY_LEASE_SECONDS) < 5
    run = functools.partial(stripe_events.run_stripe_events, settings=stripe_settings,
                            stripe_client=make_client(stripe_settings), limit=10)
    # Stripe unreachable for five worker tries: the worker's client reaches nothing.
    unreachable = stripe_settings.model_copy(update={"stripe_api_base": "http://127.0.0.1:9"})
    run_down = functools.partial(stripe_events.run_stripe_events, settings=stripe_settings,
                                 stripe_client=make_client(unreachable), limit=10)
    waits = []
    for _ in range(5):
        wait = _due_in(database_url, event_id)
        waits.append(round(wait))
        _age(database_url, wait - 2)
        assert run_down() == 0  # two seconds early: not yet
        _age(database_url, 2)
        assert run_down() == 1  # due: tried, and it fails again
        row = _event(database_url, event_id)
        assert row.processed_at is None and "stripe" in row.last_error.lower()
    base = stripe_settings.retry_base_seconds
    assert waits == [stripe_events.DELIVERY_LEASE_SECONDS] + [base * 2 ** n
                                                               for n in range(1, 5)]
    assert _event(database_url, event_id).attempts == 6  # the delivery, then five tries
    assert round(_due_in(database_url, event_id)) == base * 2 ** 5  # 16 min after the last
    assert order_state(database_url, order_id)[0].status == "pending"
    _age(database_url, _due_in(database_url, event_id))
    assert run() == 1  # Stripe is back: applied
    assert run() == 0
    _age(database_url, stripe_settings.retry_cap_seconds)
    assert run() == 0  # processed events are never tried again
    order, contracts = order_state(database_url, order_id)
    assert order.status == "paid" and len(contracts) == 3
    assert _event(database_url, event_id).processed_at is not None
    assert _mails(database_url) == 1


def test_concurrent_workers_claim_and_apply_each_event_once(
        paid_without_webhooks, stripe_settings, database_url, db):
    _, order_id, completed, succeeded = paid_without_webhooks
    others = [{"id": f"evt_other_{n}", "object": "event", "type": "customer.updated",
               "created": 1, "data": {"object": {"id": f"cus_{n}", "object": "customer"}}}
              for n in range(30)]
    for payload in [completed, succeeded, *others]:  # stored by deliveries that died
        stripe_events.record(session=db, event=stripe.Event.construct_from(payload, "k"))
    db.commit()
    _age(database_url, stripe_events.DELIVERY_LEASE_SECONDS)
    start = threading.Barrier(4)
    tried: list[int] = []

    def worker():
        start.wait()
        while done := stripe_events.run_stripe_events(
                settings=stripe_settings, stripe_client=make_client(stripe_settings), limit=3):
            tried.append(done)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sum(tried) == 32 and len(tried) >= 11  # every event claimed by one worker only
    db.expire_all()
    rows = db.exec(select(StripeEvent)).all()
    assert {(r.attempts, r.processed_at is not None) for r in rows} == {(2, True)}
    order, contracts = order_state(database_url, order_id)
    assert order.status == "paid" and len(contracts) == 3 and _mails(database_url) == 1


def test_the_claim_query_reads_the_partial_due_index(database_url):
    engine = get_engine(database_url)
    query = jobs.due_query(StripeEvent, now=utcnow(), limit=50, pending=stripe_events.PENDING)
    with engine.connect() as conn:
        sql = str(query.compile(conn, compile_kwargs={"literal_binds": True}))
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql("SET enable_seqscan = off")  # an empty table: force the choice
            plan = conn.exec_driver_sql(f"EXPLAIN {sql}").scalars().all()
        else:
            plan = [row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")]
        conn.rollback()
    assert any("ix_stripe_event_due" in line for line in plan), plan


def _broken_order(db) -> dict:
    """A pending order Stripe charged, whose plan line is corrupt (arranged: its plan code
    names no plan), and the payment_intent.succeeded event about it. Applying it raises."""
    from sqlmodel import select as select_

    from warranty.orders.models import Order, OrderLine
    from warranty.pricing.models import RuleSet

    version = db.exec(select_(RuleSet.version)).first()
    order = Order(store_order_ref="B-1", customer_email="b@example.com", currency="jpy",
                  total_amount=126000, channel="payment_intent")
    db.add(order)
    db.flush()
    product = OrderLine(order_id=order.id, line_no=1, kind="product", sku="TV-1", title="TV",
                        quantity=1, unit_price=120000, amount=120000, gross=120000,
                        net=120000,
                        manufacturer_warranty_months=12, warranty_category="electronics")
    db.add(product)
    db.flush()
    db.add(OrderLine(order_id=order.id, line_no=2, kind="plan", sku="TV-1", title="plan",
                     quantity=1, unit_price=6000, amount=6000, gross=6000, tax=545,
                     net=5455, warranty_category="electronics",
                     plan_code="corrupt", rule_set_version=version, covers_line_id=product.id))
    intent = stripe.PaymentIntent.create(amount=126000, currency="jpy",
                                         payment_method="pm_card_visa", confirm=True,
                                         metadata={"order_id": order.public_id})
    order.stripe_payment_intent_id = intent.id
    db.add(order)
    db.commit()
    return {"id": "evt_broken", "object": "event", "type": "payment_intent.succeeded",
            "created": int(time.time()), "data": {"object": {"id": intent.id,
                                                             "object": "payment_intent"}}}


def test_an_event_whose_processing_raises_is_recorded_and_the_others_still_go(
        paid_without_webhooks, stripe_settings, database_url, db):
    _, order_id, completed, succeeded = paid_without_webhooks
    broken = _broken_order(db)
    for payload in [broken, completed, succeeded]:  # the broken one is due first
        stripe_events.record(session=db, event=stripe.Event.construct_from(payload, "k"))
        db.commit()
        time.sleep(0.01)
    _age(database_url, stripe_events.DELIVERY_LEASE_SECONDS)
    eager = stripe_settings.model_copy(update={"retry_base_seconds": 60})
    assert stripe_events.run_stripe_events(settings=eager,
                                           stripe_client=make_client(eager), limit=10) == 3
    order, contracts = order_state(database_url, order_id)
    assert order.status == "paid" and len(contracts) == 3
    row = _event(database_url, "evt_broken")
    assert row.processed_at is None and row.attempts == 2
    assert row.last_error.startswith("ValueError: ")
    backoff = jobs.backoff_seconds(row.attempts, eager)  # delivery's try and the worker's
    assert backoff - 10 < (row.next_attempt_at - utcnow()).total_seconds() <= backoff
    # Its transaction was rolled back: the order it names is untouched.
    assert db.exec(sa.text("SELECT status FROM orders WHERE store_order_ref = 'B-1'")
                   ).scalar() == "pending"
    assert stripe_events.run_stripe_events(settings=eager,
                                           stripe_client=make_client(eager), limit=10) == 0
