"""Stripe's payment page in the shopper's language: plan lines named in it, the Checkout
Session's locale set to it (the real SDK against the stand-in)."""

from __future__ import annotations

import pytest
import stripe

from tests.factories import add_product, load_rules

LINES = [{"type": "product", "line_id": "p1", "sku": "TV-1", "quantity": 1,
          "unit_price": 120000}]


def _checkout(client, store_key, *, lang=None, title=None):
    """Start a hosted checkout for a TV with a breakdown plan; the API's answer."""
    offers = client.get("/api/v1/offers?sku=TV-1", headers=store_key).json["offers"]
    token = next(o for o in offers if o["plan_code"] == "standard-36")["offer_token"]
    product = dict(LINES[0], **({"title": title} if title else {}))
    body = {"order_ref": "A-1", "customer_email": "buyer@example.com",
            "success_url": "https://shop.example/ok", "cancel_url": "https://shop.example/no",
            "lines": [product, {"type": "plan", "for_line": "p1", "quantity": 1,
                                "offer_token": token}]}
    if lang:
        body["lang"] = lang
    res = client.post("/api/v1/checkout/sessions", json=body, headers=store_key)
    assert res.status_code == 201, res.json
    return res.json


@pytest.mark.parametrize(("lang", "title", "names"), [
    ("ja", "有機ELテレビ", ["有機ELテレビ", "延長保証（故障）・36か月 — 有機ELテレビ"]),
    ("en", "OLED TV", ["OLED TV", "Breakdown protection, 36 months — OLED TV"]),
])
def test_plan_names_and_the_locale_follow_the_shoppers_language(stripe_server, stripe_app, db,
                                                                store_key, lang, title, names):
    load_rules(db)
    add_product(db, sku="TV-1", price=120000, title="有機ELテレビ / OLED TV")
    answer = _checkout(stripe_app.test_client(), store_key, lang=lang, title=title)
    session = stripe.checkout.Session.retrieve(answer["stripe_checkout_session_id"])
    assert session.locale == lang
    items = stripe.checkout.Session.list_line_items(session.id)
    assert [i.description for i in items.data] == names


def test_without_a_language_stripe_chooses_and_names_stay_as_before(stripe_server, stripe_app,
                                                                    db, store_key):
    load_rules(db)
    add_product(db, sku="TV-1", price=120000, title="Test TV")
    answer = _checkout(stripe_app.test_client(), store_key)
    session = stripe.checkout.Session.retrieve(answer["stripe_checkout_session_id"])
    assert session.locale is None
    items = stripe.checkout.Session.list_line_items(session.id)
    assert [i.description for i in items.data] == [
        "Test TV", "standard protection, 36 months — Test TV"]


def test_a_language_the_service_does_not_speak_is_refused(stripe_server, stripe_app, db,
                                                         store_key):
    load_rules(db)
    add_product(db)
    res = stripe_app.test_client().post("/api/v1/checkout/sessions", headers=store_key, json={
        "order_ref": "A-1", "customer_email": "buyer@example.com", "lang": "fr",
        "success_url": "https://shop.example/ok", "cancel_url": "https://shop.example/no",
        "lines": LINES})
    assert res.status_code == 422 and res.json["error"]["code"]
