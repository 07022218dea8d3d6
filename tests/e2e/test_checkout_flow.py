"""Offer → checkout → pay on the stand-in → signed webhook → contracts, in JPY and USD."""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests
import stripe
from sqlmodel import select

from tests.factories import add_product, load_rules
from tests.stripe_helpers import order_state, pay_hosted, wait_for, wait_paid
from warranty.core import money
from warranty.core.dates import add_months, store_today
from warranty.notify.models import MailMessage, OutboundWebhook


def offer(client, store_key, sku, plan="standard-36"):
    offers = client.get(f"/api/v1/offers?sku={sku}", headers=store_key).json["offers"]
    return next(o for o in offers if o["plan_code"] == plan)


def cart(token, *, qty=2, plans=2, price=120000, sku="TV-1", email="Buyer@Example.com"):
    return {"order_ref": "A-1001", "customer_email": email, "visitor_id": "v-1",
            "success_url": "https://shop.example/thanks?session={CHECKOUT_SESSION_ID}",
            "cancel_url": "https://shop.example/cart",
            "lines": [{"type": "product", "line_id": "p1", "sku": sku, "quantity": qty,
                       "unit_price": price},
                      {"type": "plan", "for_line": "p1", "quantity": plans,
                       "offer_token": token, "placement": "cart"}]}


@pytest.mark.parametrize(("currency", "price", "plan_price"), [
    ("jpy", 120000, 6000),   # 5% of ¥120,000
    ("usd", 120000, 6000),   # 5% of $1,200.00 = $60.00 (cents)
])
def test_hosted_checkout_creates_one_contract_per_unit(
        stripe_live, stripe_settings, database_url, db, currency, price, plan_price):
    from warranty.http.app import create_app
    settings = stripe_settings.model_copy(update={"currency": currency})
    app = create_app(settings)
    client = app.test_client()
    key = {"X-Warranty-Key": settings.public_key}
    load_rules(db, currency=currency)
    add_product(db, sku="TV-1", price=price, currency=currency)
    chosen = offer(client, key, "TV-1")
    assert chosen["price"] == plan_price
    res = client.post("/api/v1/checkout/sessions", json=cart(chosen["offer_token"], price=price),
                      headers=key)
    assert res.status_code == 201, res.json
    body = res.json
    assert body["total"] == 2 * price + 2 * plan_price and body["currency"] == currency
    order, _ = order_state(database_url, body["order_id"])
    assert order.status == "pending"  # stored before the shopper pays
    stripe_session = stripe.checkout.Session.retrieve(body["stripe_checkout_session_id"])
    assert stripe_session.amount_total == body["total"]  # Stripe charges the order total
    paid = pay_hosted(body["checkout_url"])
    assert paid.status_code == 303
    assert paid.headers["Location"].endswith(body["stripe_checkout_session_id"])
    order, contracts = wait_paid(database_url, body["order_id"], contracts=2)
    assert len(contracts) == 2 and order.stripe_payment_intent_id
    today = store_today(settings.timezone)
    for unit, contract in enumerate(contracts):
        assert contract.unit_index == unit
        assert contract.price == plan_price and contract.currency == currency
        assert contract.customer_email == "buyer@example.com"
        assert contract.purchase_date == today
        assert contract.term_end == add_months(today, 36) - timedelta(days=1)
        assert contract.breakdown_start == add_months(today, 12)
        assert contract.accident_start is None and contract.waiting_until is None
    intent = stripe.PaymentIntent.retrieve(order.stripe_payment_intent_id)
    assert intent.amount == body["total"] and intent.status == "succeeded"
    # Paid ⇒ one purchase mail and one contract.created store event per contract, queued
    # in the same transaction as the contracts.
    mails = db.exec(select(MailMessage).where(MailMessage.kind == "purchase")).all()
    assert [m.to for m in mails] == ["buyer@example.com"]
    assert money.format_amount(plan_price, currency) in mails[0].body
    events = db.exec(select(OutboundWebhook).where(OutboundWebhook.type == "contract.created"))
    assert len(events.all()) == 2


def test_payment_intent_flow_and_accident_cover(stripe_live, stripe_app, database_url, db,
                                                 store_key):
    client = stripe_app.test_client()
    load_rules(db)
    add_product(db, sku="TV-1", price=30000)
    chosen = offer(client, store_key, "TV-1", plan="accident-36")
    body = cart(chosen["offer_token"], qty=1, plans=1, price=30000)
    del body["success_url"], body["cancel_url"]
    res = client.post("/api/v1/checkout/payment-intents", json=body, headers=store_key)
    assert res.status_code == 201, res.json
    assert res.json["total"] == 30000 + 2980 and res.json["client_secret"]
    # The store's own form confirms the intent with the shopper's card.
    stripe.PaymentIntent.modify(res.json["payment_intent_id"], payment_method="pm_card_visa")
    stripe.PaymentIntent.confirm(res.json["payment_intent_id"])
    order, (contract,) = wait_paid(database_url, res.json["order_id"], contracts=1)
    assert contract.coverage == "accident" and contract.accident_start == contract.purchase_date


def test_declined_card_creates_no_contract(stripe_live, stripe_app, database_url, db, store_key):
    client = stripe_app.test_client()
    load_rules(db)
    add_product(db)
    res = client.post("/api/v1/checkout/sessions", headers=store_key,
                      json=cart(offer(client, store_key, "TV-1")["offer_token"]))
    declined = pay_hosted(res.json["checkout_url"], card="pm_card_chargeCustomerFail")
    assert declined.status_code == 402 and "declined" in declined.text
    order, _ = wait_for(lambda: (lambda o: o if o[0].status == "failed" else None)(
        order_state(database_url, res.json["order_id"])))
    assert order.status == "failed"
    _, contracts = order_state(database_url, res.json["order_id"])
    assert contracts == []
    # The shopper tries another card on the same page: now it is paid, once.
    assert pay_hosted(res.json["checkout_url"]).status_code == 303
    _, contracts = wait_paid(database_url, res.json["order_id"], contracts=2)
    assert len(contracts) == 2


def test_expired_session_is_kept_as_expired(stripe_live, stripe_app, database_url, db,
                                            store_key):
    client = stripe_app.test_client()
    load_rules(db)
    add_product(db)
    res = client.post("/api/v1/checkout/sessions", headers=store_key,
                      json=cart(offer(client, store_key, "TV-1")["offer_token"]))
    stripe.checkout.Session.expire(res.json["stripe_checkout_session_id"])
    order = wait_for(lambda: (lambda o: o if o.status == "expired" else None)(
        order_state(database_url, res.json["order_id"])[0]))
    assert order.total_amount == res.json["total"]
    assert requests.post(res.json["checkout_url"], data={"payment_method": "pm_card_visa"},
                         allow_redirects=False, timeout=10).status_code == 409
