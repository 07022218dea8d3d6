"""Stripe answers that will never succeed are not outages: the event or refund is failed for
a person (attention queue and metrics), never retried; transient answers keep retrying.

Every answer comes from the stand-in through the real SDK: a 404 for an object it doesn't
hold, and 4xx/429/5xx injected on demand (``StripeStandin.fail_next``).
"""

from __future__ import annotations

import time
from datetime import date, timedelta

import pytest
import sqlalchemy as sa
import stripe
from sqlmodel import select

from tests.factories import stripe_paid_order
from tests.http.test_metrics import samples
from tests.payments.test_stripe_webhooks import post_event
from tests.stripe_helpers import order_state
from warranty.attention.models import AttentionItem
from warranty.core.dates import utcnow
from warranty.db.engine import Session, get_engine
from warranty.http.app import create_app
from warranty.orders.models import Refund
from warranty.payments import events as stripe_events
from warranty.payments.client import make_client
from warranty.payments.models import StripeEvent
from warranty.payments.refunds import run_refunds


def _event(database_url, event_id) -> StripeEvent:
    """The stored event, read fresh."""
    with Session(get_engine(database_url)) as session:
        return session.get(StripeEvent, event_id)


def _items(database_url, kind):
    """Attention items of one kind."""
    with Session(get_engine(database_url)) as session:
        return list(session.exec(select(AttentionItem).where(AttentionItem.kind == kind)))


def _gauges(client, staff_headers) -> dict:
    """The dead-letter and attention gauges of /metrics."""
    found = samples(client.get("/metrics", headers=staff_headers).text)
    return {(name, labels[0][1]): value for (name, labels), value in found.items()
            if name in ("warranty_dead_letters", "warranty_attention_open")}


def test_an_event_for_an_object_stripe_does_not_know_is_failed_for_a_person(
        stripe_server, stripe_app, stripe_settings, database_url, staff_headers):
    event = {"id": "evt_ghost", "object": "event", "type": "payment_intent.succeeded",
             "created": int(time.time()),
             "data": {"object": {"id": "pi_ghost", "object": "payment_intent"}}}
    res = post_event(stripe_server, event)
    assert res.status_code == 200, res.text
    assert res.json() == {"received": True, "outcome": "failed"}
    row = _event(database_url, "evt_ghost")
    assert row.processed_at is not None and row.outcome == "failed"
    assert "resource_missing" in row.last_error and "pi_ghost" in row.last_error
    (item,) = _items(database_url, "stripe_object_missing")
    assert (item.stripe_event_id, item.data["object"], item.data["http_status"],
            item.data["stripe_code"]) == ("evt_ghost", "pi_ghost", 404, "resource_missing")
    # Never retried: the worker has nothing to do, and Stripe's redelivery changes nothing.
    with Session(get_engine(database_url)) as session:
        session.exec(sa.update(StripeEvent).values(next_attempt_at=utcnow() - timedelta(1)))
        session.commit()
    assert stripe_events.run_stripe_events(settings=stripe_settings,
                                           stripe_client=make_client(stripe_settings)) == 0
    assert post_event(stripe_server, event).json()["outcome"] == "duplicate"
    assert _event(database_url, "evt_ghost").attempts == 1  # a processed event counts no more
    assert len(_items(database_url, "stripe_object_missing")) == 1
    gauges = _gauges(stripe_app.test_client(), staff_headers)
    assert gauges[("warranty_dead_letters", "stripe_events")] == 1
    assert gauges[("warranty_attention_open", "stripe_object_missing")] == 1


@pytest.mark.parametrize("status", [429, 500, 503])
def test_a_stripe_outage_while_fetching_is_retried_not_given_up(
        paid_without_webhooks, stripe_standin, database_url, status):
    base_url, order_id, completed, _ = paid_without_webhooks
    # More failures than the SDK's own retries of one call: the delivery sees the error.
    stripe_standin.fail_next("GET", "/v1/checkout/sessions/", status, times=5)
    down = post_event(base_url, completed)
    assert down.status_code == 503 and down.json()["error"]["code"] == "stripe_unavailable"
    row = _event(database_url, completed["id"])
    assert row.processed_at is None and row.outcome is None and str(status) in row.last_error
    assert _items(database_url, "stripe_object_missing") == []
    stripe_standin.reset_faults()
    assert post_event(base_url, completed).json()["outcome"] == "paid"
    assert len(order_state(database_url, order_id)[1]) == 3


@pytest.fixture
def refund_api(mail_settings):
    """An app on the stand-in whose SDK calls are not retried by the SDK itself."""
    settings = mail_settings.model_copy(update={"stripe_max_network_retries": 0})
    return settings, create_app(settings).test_client()


def _cancel(api, staff_headers, contract):
    """Confirm a pro-rata cancellation (¥5,058) through the API."""
    res = api.post(f"/api/v1/contracts/{contract.public_id}/cancel", headers=staff_headers,
                   json={"amount": 5058, "cancel_date": "2026-07-01", "reason": "asked",
                         "backdate_reason": "a test dated on a fixed day"})
    assert res.status_code == 200, res.json
    return res.json["refund"]


def _due_now(db):
    """Time passes: every refund's next try is due."""
    db.exec(sa.update(Refund).values(next_attempt_at=utcnow() - timedelta(seconds=1)))
    db.commit()


@pytest.mark.parametrize("code", ["charge_already_refunded", "amount_too_large"])
def test_a_refund_stripe_refuses_is_failed_for_a_person(db, refund_api, stripe_standin,
                                                       staff_headers, code):
    settings, api = refund_api
    order, (contract,) = stripe_paid_order(db, purchase_date=date(2026, 1, 10))
    stripe_standin.fail_next("POST", "/v1/refunds", 400, code=code, message=f"Refused: {code}")
    refund = _cancel(api, staff_headers, contract)
    assert (refund["status"], refund["stripe_refund_id"]) == ("failed", None)
    assert code in refund["last_error"] and "400" in refund["last_error"]
    (item,) = _items(settings.database_url, "refund_refused")
    assert (item.data["amount"], item.data["contract"], item.data["stripe_payment_intent_id"]) \
        == (5058, contract.public_id, order.stripe_payment_intent_id)
    assert code in item.summary
    _due_now(db)
    assert run_refunds(settings=settings, stripe_client=make_client(settings)) == 0  # never retried
    assert stripe.Refund.list(payment_intent=order.stripe_payment_intent_id).data == []
    gauges = _gauges(api, staff_headers)
    assert gauges[("warranty_dead_letters", "refunds")] == 1
    assert gauges[("warranty_attention_open", "refund_refused")] == 1


def test_a_refund_of_a_payment_stripe_does_not_know_is_failed_for_a_person(
        db, refund_api, staff_headers):
    settings, api = refund_api
    order, (contract,) = stripe_paid_order(db, purchase_date=date(2026, 1, 10))
    order.stripe_payment_intent_id = "pi_from_another_account"
    db.add(order)
    db.commit()
    refund = _cancel(api, staff_headers, contract)
    assert refund["status"] == "failed" and "resource_missing" in refund["last_error"]
    assert len(_items(settings.database_url, "refund_refused")) == 1
    _due_now(db)
    assert run_refunds(settings=settings, stripe_client=make_client(settings)) == 0


@pytest.mark.parametrize("status", [429, 500])
def test_a_transient_refund_error_is_retried_with_backoff(db, refund_api, stripe_standin,
                                                         staff_headers, status):
    settings, api = refund_api
    order, (contract,) = stripe_paid_order(db, purchase_date=date(2026, 1, 10))
    stripe_standin.fail_next("POST", "/v1/refunds", status)
    before = utcnow()
    refund = _cancel(api, staff_headers, contract)
    assert (refund["status"], refund["attempts"]) == ("pending", 1)
    assert str(status) in refund["last_error"]
    row = db.get(Refund, 1)
    db.refresh(row)
    db.commit()
    assert 29 <= (row.next_attempt_at - before).total_seconds() <= 31  # the first backoff
    assert _items(settings.database_url, "refund_refused") == []
    assert run_refunds(settings=settings, stripe_client=make_client(settings)) == 0  # not due yet
    _due_now(db)
    assert run_refunds(settings=settings, stripe_client=make_client(settings)) == 1
    db.refresh(row)
    db.commit()
    assert (row.status, row.attempts, row.last_error) == ("succeeded", 2, None)
    assert [r.amount for r in stripe.Refund.list(
        payment_intent=order.stripe_payment_intent_id).data] == [5058]
