"""Bad carts are refused with an error naming the line; nothing reaches Stripe."""

from __future__ import annotations

import copy
import time

import pytest
from sqlmodel import select

from tests.factories import add_product, load_rules
from warranty.http.app import create_app
from warranty.orders.models import Order

URLS = {"success_url": "https://shop.example/ok", "cancel_url": "https://shop.example/cart"}


@pytest.fixture
def token(stripe_app, db, store_key):
    load_rules(db)
    add_product(db, sku="TV-1", price=120000)
    add_product(db, sku="TV-2", price=30000)
    client = stripe_app.test_client()
    return client.get("/api/v1/offers?sku=TV-1", headers=store_key).json["offers"][0][
        "offer_token"]


def base_cart(token):
    return {"order_ref": "A-1", "customer_email": "a@example.com", **URLS,
            "lines": [{"type": "product", "line_id": "p1", "sku": "TV-1", "quantity": 1,
                       "unit_price": 120000},
                      {"type": "plan", "for_line": "p1", "quantity": 1, "offer_token": token}]}


def _expired_token(stripe_app, token):
    from warranty.offers import tokens
    claim_src = tokens.serializer(stripe_app.config["SETTINGS"].secret_key)
    payload = claim_src.loads(token)
    payload["exp"] = int(time.time()) - 1
    return claim_src.dumps(payload)


def _tampered_price(stripe_app, token):
    from itsdangerous import URLSafeSerializer
    payload = URLSafeSerializer("x", salt="warranty.offer").loads_unsafe(token)[1]
    payload["price"] = 10
    forged = URLSafeSerializer("x", salt="warranty.offer").dumps(payload)
    return forged.rsplit(".", 1)[0] + "." + token.rsplit(".", 1)[1]


CASES = {
    "more plans than units": (lambda c, t, a: c["lines"][1].update(quantity=2),
                              422, "too_many_plans", "lines.1"),
    "plans split over lines exceed units": (
        lambda c, t, a: c["lines"].append(copy.deepcopy(c["lines"][1])),
        422, "too_many_plans", "lines.2"),
    "plan for a missing line": (lambda c, t, a: c["lines"][1].update(for_line="p9"),
                                422, "invalid_cart", "lines.1"),
    "product price differs from catalog": (lambda c, t, a: c["lines"][0].update(unit_price=1),
                                           422, "price_mismatch", "lines.0"),
    "offer for another product": (
        lambda c, t, a: c["lines"][0].update(sku="TV-2", unit_price=30000),
        422, "offer_product_mismatch", "lines.1"),
    "expired offer": (lambda c, t, a: c["lines"][1].update(offer_token=_expired_token(a, t)),
                      422, "offer_expired", "lines.1"),
    "tampered plan price": (lambda c, t, a: c["lines"][1].update(
        offer_token=_tampered_price(a, t)), 422, "offer_bad_signature", "lines.1"),
    "garbage token": (lambda c, t, a: c["lines"][1].update(offer_token="abc"),
                      422, "offer_bad_signature", "lines.1"),
    "foreign currency": (lambda c, t, a: c.update(currency="usd"), 422, "currency_mismatch",
                         None),
    "duplicate line id": (lambda c, t, a: c["lines"].insert(1, copy.deepcopy(c["lines"][0])),
                          422, "invalid_cart", "lines.1"),
    "negative quantity": (lambda c, t, a: c["lines"][0].update(quantity=-1),
                          422, "invalid_request", "lines.0"),
    "client sets plan price": (lambda c, t, a: c["lines"][1].update(unit_price=1),
                               422, "invalid_request", "lines.1"),
    "bad email": (lambda c, t, a: c.update(customer_email="nobody"), 422, "invalid_request",
                  "customer_email"),
    "javascript url": (lambda c, t, a: c.update(success_url="javascript:alert(1)"),
                       422, "invalid_request", "success_url"),
    "no lines": (lambda c, t, a: c.update(lines=[]), 422, "invalid_request", "lines"),
    "unknown line type": (lambda c, t, a: c["lines"].append({"type": "gift"}),
                          422, "invalid_request", "lines.2"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_carts_are_refused_naming_the_line(stripe_app, db, store_key, token, case):
    mutate, status, code, where = CASES[case]
    cart = base_cart(token)
    mutate(cart, token, stripe_app)
    res = stripe_app.test_client().post("/api/v1/checkout/sessions", json=cart,
                                        headers=store_key)
    assert res.status_code == status, res.json
    assert res.json["error"]["code"] == code
    if where:
        assert where in res.json["error"]["message"] or any(
            d["at"].startswith(where) for d in res.json["error"].get("details") or [])
    assert db.exec(select(Order)).all() == []  # nothing stored, nothing sent to Stripe


def test_stripe_refusing_keeps_the_order_as_failed(stripe_settings, db, store_key, token):
    down = create_app(stripe_settings.model_copy(update={"stripe_api_base": "http://127.0.0.1:9"}))
    res = down.test_client().post("/api/v1/checkout/payment-intents",
                                  json={k: v for k, v in base_cart(token).items()
                                        if k not in URLS}, headers=store_key)
    assert res.status_code == 502 and res.json["error"]["code"] == "payment_provider_error"
    (order,) = db.exec(select(Order)).all()
    assert order.status == "failed" and order.total_amount == 126000


def test_ad_hoc_products_bind_the_offer_to_category_and_price(stripe_app, db, store_key):
    load_rules(db)
    client = stripe_app.test_client()
    token = client.get("/api/v1/offers?category=tv&price=40000",
                       headers=store_key).json["offers"][0]["offer_token"]
    cart = {"order_ref": "B-1", "customer_email": "b@example.com", **URLS,
            "lines": [{"type": "product", "line_id": "x", "sku": "NOT-IN-CATALOG",
                       "quantity": 1, "unit_price": 40000, "category": "tv"},
                      {"type": "plan", "for_line": "x", "quantity": 1, "offer_token": token}]}
    ok = client.post("/api/v1/checkout/sessions", json=cart, headers=store_key)
    assert ok.status_code == 201 and ok.json["total"] == 40000 + 1980
    cart["lines"][0]["unit_price"] = 20000  # cheaper product, same plan token
    refused = client.post("/api/v1/checkout/sessions", json=cart, headers=store_key)
    assert refused.json["error"]["code"] == "offer_price_mismatch"


def test_only_signed_visitor_ids_attribute_an_order(stripe_app, db, store_key, token,
                                                    staff_headers):
    from tests.factories import signed_visitor
    from warranty.core.dates import store_today

    client = stripe_app.test_client()
    signed = signed_visitor("checkout-visitor")
    sent = {"A-1": signed, "A-2": "v-1", "A-3": signed_visitor("x", secret="other-key"),
            "A-4": None}
    for ref, visitor in sent.items():
        cart = {k: v for k, v in base_cart(token).items() if k not in URLS}
        cart.update(order_ref=ref, visitor_id=visitor, lines=cart["lines"][:1])
        # The sale goes through either way: an id we did not sign is only not attributed.
        res = client.post("/api/v1/checkout/payment-intents", json=cart, headers=store_key)
        assert res.status_code == 201, res.json
    stored = dict(db.exec(select(Order.store_order_ref, Order.visitor_id)).all())
    assert stored == {"A-1": signed, "A-2": None, "A-3": None, "A-4": None}
    today = store_today(stripe_app.config["SETTINGS"].timezone).isoformat()
    refused = client.get(f"/api/v1/reports/conversion?from={today}&to={today}",
                         headers=staff_headers).json["refused_visitor_ids"]
    assert (refused["events"], refused["checkouts"]) == (0, 2)
    assert {(r["source"], r["reason"], r["count"]) for r in refused["by_day"]} == {
        ("checkout", "unsigned", 1), ("checkout", "foreign", 1)}


@pytest.mark.parametrize("field", ["success_url", "cancel_url"])
@pytest.mark.parametrize("url", ["https://evil.example/phish", "https://shop.example.evil.test/",
                                 "http://shop.example/ok", "https://shop.example:8443/ok"])
def test_return_urls_off_the_stores_origins_are_refused(client, db, store_key, token, field,
                                                        url):
    res = client.post("/api/v1/checkout/sessions", headers=store_key,
                      json={**base_cart(token), field: url})
    assert res.status_code == 400, res.json
    assert res.json["error"]["code"] == "return_url_not_allowed"
    assert field in res.json["error"]["message"]
    assert db.exec(select(Order)).all() == []  # nothing stored, nothing sent to Stripe


def test_return_urls_on_the_services_own_address_are_allowed(stripe_app, store_key, token):
    own = stripe_app.config["SETTINGS"].base_url
    res = stripe_app.test_client().post("/api/v1/checkout/sessions", headers=store_key, json={
        **base_cart(token), "success_url": f"{own}/thanks", "cancel_url": f"{own}/cart"})
    assert res.status_code == 201, res.json
