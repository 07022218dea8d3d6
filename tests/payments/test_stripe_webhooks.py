"""The Stripe webhook: signatures, duplicates, concurrency, out-of-order events."""

from __future__ import annotations

import random
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlmodel import func, select

from tests.conftest import serve
from tests.stripe_helpers import order_state, signed
from warranty.contracts.models import ContractEvent
from warranty.db.engine import Session, get_engine
from warranty.http.app import create_app
from warranty.payments.models import StripeEvent


def post_event(base_url, payload, **kwargs):
    body, headers = signed(payload, **kwargs)
    return requests.post(f"{base_url}/stripe/webhook", data=body, headers=headers, timeout=30)


def test_concurrent_duplicate_and_out_of_order_deliveries_create_contracts_once(
        paid_without_webhooks, database_url):
    base_url, order_id, completed, succeeded = paid_without_webhooks
    deliveries = [completed] * 8 + [succeeded] * 8
    random.Random(7).shuffle(deliveries)
    with ThreadPoolExecutor(max_workers=16) as pool:
        responses = list(pool.map(lambda event: post_event(base_url, event), deliveries))
    assert [r.status_code for r in responses] == [200] * 16, [r.text for r in responses]
    outcomes = sorted(r.json()["outcome"] for r in responses)
    assert outcomes.count("paid") == 1  # one delivery did the work; the rest saw it done
    order, contracts = order_state(database_url, order_id)
    assert order.status == "paid" and len(contracts) == 3
    assert sorted(c.unit_index for c in contracts) == [0, 1, 2]
    with Session(get_engine(database_url)) as session:
        created = session.exec(select(func.count()).select_from(ContractEvent)
                               .where(ContractEvent.action == "created")).one()
        stored = session.exec(select(StripeEvent.id)).all()
    assert created == 3
    assert sorted(stored) == sorted({completed["id"], succeeded["id"]})


def test_late_events_never_move_a_paid_order_back(paid_without_webhooks, database_url):
    base_url, order_id, completed, _ = paid_without_webhooks
    assert post_event(base_url, completed).json()["outcome"] == "paid"
    # A signed "expired" event for the same session: the service asks Stripe, which says paid.
    fake_expired = {**completed, "id": "evt_late_expired", "type": "checkout.session.expired"}
    assert post_event(base_url, fake_expired).json()["outcome"] in ("duplicate", "unchanged")
    failed = {**completed, "id": "evt_late_failed", "type": "payment_intent.payment_failed",
              "data": {"object": {"id": completed["data"]["object"]["payment_intent"]}}}
    assert post_event(base_url, failed).status_code == 200
    order, contracts = order_state(database_url, order_id)
    assert order.status == "paid" and len(contracts) == 3


def test_unknown_event_types_are_stored_and_acknowledged(paid_without_webhooks, database_url):
    base_url = paid_without_webhooks[0]
    res = post_event(base_url, {"id": "evt_other", "object": "event", "type": "customer.created",
                                "created": int(time.time()),
                                "data": {"object": {"id": "cus_1", "object": "customer"}}})
    assert res.status_code == 200 and res.json()["outcome"] == "ignored"
    with Session(get_engine(database_url)) as session:
        assert session.get(StripeEvent, "evt_other").processed_at is not None


@pytest.mark.parametrize("case", ["unsigned", "wrong_secret", "stale", "tampered", "garbage",
                                  "not_an_event"])
def test_bad_signatures_are_400(paid_without_webhooks, database_url, case):
    base_url, order_id, completed, _ = paid_without_webhooks
    url = f"{base_url}/stripe/webhook"
    if case == "unsigned":
        res = requests.post(url, json=completed, timeout=10)
    elif case == "wrong_secret":
        res = post_event(base_url, completed, secret="whsec_guess")
    elif case == "stale":
        res = post_event(base_url, completed, timestamp=int(time.time()) - 3600)
    elif case == "tampered":
        body, headers = signed(completed)
        res = requests.post(url, data=body.replace("a@example.com", "b@example.com"),
                            headers=headers, timeout=10)
    elif case == "garbage":
        body, headers = signed({"x": 1})
        res = requests.post(url, data="{not json", headers=headers, timeout=10)
    else:
        body, headers = signed({"hello": "world"})
        res = requests.post(url, data=body, headers=headers, timeout=10)
    assert res.status_code == 400, res.text
    assert res.json()["error"]["code"] in ("invalid_signature", "invalid_payload")
    order, contracts = order_state(database_url, order_id)
    assert order.status == "pending" and contracts == []


def test_stripe_down_while_fetching_leaves_the_event_for_a_retry(paid_without_webhooks,
                                                                database_url, stripe_settings):
    base_url, order_id, completed, _ = paid_without_webhooks
    # An app whose Stripe is the discard port (nothing listens there) takes the delivery.
    unreachable = stripe_settings.model_copy(update={"stripe_api_base": "http://127.0.0.1:9"})
    with serve(create_app(unreachable)) as down_url:
        down = post_event(down_url, completed)
    assert down.status_code == 503 and down.json()["error"]["code"] == "stripe_unavailable"
    with Session(get_engine(database_url)) as session:
        row = session.get(StripeEvent, completed["id"])
        assert row.processed_at is None and row.attempts == 1 and row.last_error
    assert order_state(database_url, order_id)[0].status == "pending"
    again = post_event(base_url, completed)  # Stripe delivers it again later
    assert again.json()["outcome"] == "paid"
    assert len(order_state(database_url, order_id)[1]) == 3
