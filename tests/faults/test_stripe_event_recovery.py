"""Stripe events stored but never applied (a killed app, Stripe down) are finished once."""

from __future__ import annotations

import os
import signal
import threading
from datetime import timedelta

import requests
import sqlalchemy as sa
import stripe
from sqlmodel import Session, func, select

from tests.e2e.test_stripe_webhooks import post_event
from tests.faults.conftest import gunicorn, wait_up, worker_pids
from tests.stripe_helpers import order_state, wait_for
from warranty import stripe_events
from warranty.db import get_engine
from warranty.models import MailMessage, StripeEvent


def _event(database_url: str, event_id: str) -> StripeEvent:
    """The stored event, read fresh."""
    with Session(get_engine(database_url)) as session:
        return session.get(StripeEvent, event_id)


def _age(database_url: str, seconds: float) -> None:
    """Time passes: every stored event was received ``seconds`` earlier."""
    with Session(get_engine(database_url)) as session:
        for row in session.exec(select(StripeEvent)).all():
            row.received_at -= timedelta(seconds=seconds)
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


def test_app_killed_mid_webhook_is_finished_once_by_the_worker(
        paid_without_webhooks, postgres_only, stripe_settings, database_url):
    _, order_id, completed, _ = paid_without_webhooks
    with gunicorn(stripe_settings) as (base, master):
        (victim,) = worker_pids(master)
        answers = []
        with postgres_only.connect() as hold:
            # Holding the order row makes the webhook stop after storing its event, in apply.
            hold.execute(sa.text("SELECT id FROM orders WHERE public_id = :p FOR UPDATE"),
                         {"p": order_id})

            def deliver():
                try:
                    answers.append(post_event(base, completed))
                except requests.RequestException as exc:
                    answers.append(exc)

            thread = threading.Thread(target=deliver)
            thread.start()
            wait_for(lambda: _backends(postgres_only, "wait_event_type = 'Lock'") or answers)
            assert not answers, answers[0].text
            assert _event(database_url, completed["id"]).processed_at is None
            os.kill(victim, signal.SIGKILL)
            thread.join(timeout=10)
            hold.rollback()
        assert isinstance(answers[0], requests.ConnectionError)
        wait_for(lambda: worker_pids(master) and worker_pids(master) != [victim])
        wait_up(base)
        # The dead worker's transaction never committed: stored, not applied.
        wait_for(lambda: not _backends(postgres_only, "state LIKE 'idle in transaction%%'"))
        assert _event(database_url, completed["id"]).processed_at is None
        assert order_state(database_url, order_id)[0].status == "pending"
        assert stripe_events.run_stripe_events(settings=stripe_settings, limit=10) == 0  # young
        _age(database_url, 60)
        assert stripe_events.run_stripe_events(settings=stripe_settings, limit=10) == 1
        order, contracts = order_state(database_url, order_id)
        assert order.status == "paid" and len(contracts) == 3
        assert stripe_events.run_stripe_events(settings=stripe_settings, limit=10) == 0
        mails = _mails(database_url)
        again = post_event(base, completed)  # Stripe's own redelivery, later
        assert again.status_code == 200 and again.json()["outcome"] == "duplicate"
    assert len(order_state(database_url, order_id)[1]) == 3 and _mails(database_url) == mails
    assert mails == 1


def test_stored_events_are_retried_with_backoff_while_stripe_is_down(
        paid_without_webhooks, stripe_settings, database_url, db):
    _, order_id, completed, succeeded = paid_without_webhooks
    for payload in (completed, succeeded):  # what a crash right after the insert leaves
        stripe_events.record(session=db, event=stripe.Event.construct_from(payload, "k"))
    db.commit()
    _age(database_url, 31)
    saved = stripe.api_base
    stripe.api_base = "http://127.0.0.1:9"  # Stripe unreachable
    try:
        assert stripe_events.run_stripe_events(settings=stripe_settings, limit=10) == 2
        assert stripe_events.run_stripe_events(settings=stripe_settings, limit=10) == 0
    finally:
        stripe.api_base = saved
    row = _event(database_url, completed["id"])
    assert row.processed_at is None and row.attempts == 1 and "stripe" in row.last_error.lower()
    assert order_state(database_url, order_id)[0].status == "pending"
    _age(database_url, stripe_settings.retry_base_seconds)  # the first backoff passes
    assert stripe_events.run_stripe_events(settings=stripe_settings, limit=1) == 1
    assert stripe_events.run_stripe_events(settings=stripe_settings, limit=10) == 1
    assert stripe_events.run_stripe_events(settings=stripe_settings, limit=10) == 0
    order, contracts = order_state(database_url, order_id)
    assert order.status == "paid" and len(contracts) == 3
    assert _event(database_url, succeeded["id"]).processed_at is not None
    assert _mails(database_url) == 1
