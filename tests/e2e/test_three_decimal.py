"""Three-decimal currencies (KWD, BHD, JOD, OMR, TND): only amounts Stripe accepts go to Stripe.

Stripe charges and refunds these currencies in multiples of 10 minor units (the last of the
three decimals must be 0). Each currency runs the whole path through HTTP and the real SDK on
the local stand-in (which refuses other amounts, as Stripe does): the catalog refuses a
12.345 product, checkout refuses to charge one, a rule set with a step of 5 is refused, a
sale is charged in tens, and a pro-rata cancellation refunds an amount rounded down to ten.
"""

from __future__ import annotations

import contextlib
from datetime import date

import pytest
import stripe
from sqlmodel import select

from tests.factories import add_product, load_rules, rules_doc, stripe_paid_order
from tests.stripe_helpers import pay_hosted, wait_paid
from warranty.catalog.models import Product
from warranty.core import money
from warranty.core.text import sku_key
from warranty.http.app import create_app
from warranty.orders.models import Order, Refund

THREE_DECIMAL = ["kwd", "bhd", "jod", "omr", "tnd"]


@pytest.fixture(params=THREE_DECIMAL)
def store(request, mail_settings, stripe_standin):
    """A store in one three-decimal currency, talking to the emptied stand-in."""
    currency = request.param
    settings = mail_settings.model_copy(update={"currency": currency})
    stripe_standin.reset()
    app = create_app(settings)
    yield currency, settings, app.test_client()
    stripe_standin.reset()


@pytest.fixture
def webhooks_to(stripe_standin):
    """Serve an app over HTTP with the stand-in's webhooks pointed at it."""
    from tests.conftest import serve

    @contextlib.contextmanager
    def served(app):
        with serve(app) as url:
            stripe_standin.register_webhook("warranty", f"{url}/stripe/webhook", "whsec_test")
            yield url

    return served


def _admin(settings):
    return {"Authorization": f"Bearer {settings.api_token}"}


def _upload_rules(client, settings, currency, **extra):
    """Upload the factory rule set in ``currency`` through the API."""
    return client.post("/api/v1/rule-sets", json={"rules": {**rules_doc(currency), **extra}},
                       headers=_admin(settings))


def _product(sku, price, **extra):
    return {"sku": sku, "title": "Test TV", "category": "tv", "price": price, **extra}


def test_rule_set_steps_must_be_tens(store, db):
    currency, settings, client = store
    odd = _upload_rules(client, settings, currency, rounding_step=5)
    assert odd.status_code == 422 and odd.json["error"]["code"] == "invalid_rules"
    (problem,) = odd.json["error"]["details"]
    assert problem["at"] == "rounding_step"
    assert "multiple of 10" in problem["message"] and "(it is 5)" in problem["message"]
    assert _upload_rules(client, settings, currency, rounding_step=50).status_code == 201
    # Without a step the currency's default is 10: 5% of 120.010 = 6.0005 → 6.010, not 6.001.
    assert _upload_rules(client, settings, currency).status_code == 201
    offers = client.get("/api/v1/offers?category=tv&price=120010",
                        headers={"X-Warranty-Key": settings.public_key}).json["offers"]
    standard = next(o for o in offers if o["plan_code"] == "standard-36")
    assert standard["price"] == 6010  # 120010 × 0.05 = 6000.5 → up to the next 10


def test_catalog_refuses_prices_stripe_cannot_charge(store, db, tmp_path, monkeypatch):
    currency, settings, client = store
    refused = client.post("/api/v1/products", headers=_admin(settings), json={"products": [
        _product("TV-1", 120000), _product("TV-2", 12345)]})
    assert refused.status_code == 422, refused.json
    error = refused.json["error"]
    assert error["code"] == "price_not_chargeable"
    assert "products.1" in error["message"] and "'TV-2'" in error["message"]
    assert f"{currency.upper()} 12.345" in error["message"]
    assert error["details"][0]["at"] == "products.1.price"
    assert db.exec(select(Product)).all() == []  # nothing half-written
    # The CSV import names the line.
    from click.testing import CliRunner

    from warranty.cli import main

    monkeypatch.setenv("WARRANTY_ENV", "test")
    monkeypatch.setenv("WARRANTY_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("WARRANTY_CURRENCY", currency)
    csv_file = tmp_path / "products.csv"
    csv_file.write_text("sku,title,category,price\nTV-1,TV,tv,120000\nTV-2,TV,tv,12345\n")
    res = CliRunner().invoke(main, ["import-products", str(csv_file)], catch_exceptions=False)
    assert res.exit_code == 1
    assert "CSV line 3: price:" in res.output and f"{currency.upper()} 12.345" in res.output
    db.commit()
    assert db.exec(select(Product)).all() == []
    ok = client.post("/api/v1/products", headers=_admin(settings),
                     json={"products": [_product("TV-1", 120000)]})
    assert ok.status_code == 200 and ok.json["created"] == 1


def test_checkout_refuses_a_price_stripe_cannot_charge(store, db):
    currency, settings, client = store
    assert _upload_rules(client, settings, currency).status_code == 201
    key = {"X-Warranty-Key": settings.public_key}
    # A product sold without the catalog, and one stored before the catalog checked prices.
    db.add(Product(sku="OLD-1", sku_key=sku_key("OLD-1"), title="Old TV", store_category="tv",
                   unit_price=12345, currency=currency, manufacturer_warranty_months=12))
    db.commit()
    for line in ({"sku": "NEW-1", "category": "tv"}, {"sku": "OLD-1"}):
        res = client.post("/api/v1/checkout/payment-intents", headers=key, json={
            "order_ref": "K-1", "customer_email": "a@example.com", "lines": [
                {"type": "product", "line_id": "p", "quantity": 1, "unit_price": 12345,
                 **line}]})
        assert res.status_code == 422, res.json
        assert res.json["error"]["code"] == "price_not_chargeable"
        assert "lines.0.unit_price" in res.json["error"]["message"]
    assert db.exec(select(Order)).all() == []
    assert stripe.PaymentIntent.list(limit=100).data == []  # Stripe was never asked


def test_a_sale_is_charged_in_tens(store, db, webhooks_to, database_url):
    currency, settings, client = store
    assert _upload_rules(client, settings, currency).status_code == 201
    add_product(db, sku="TV-1", price=120010, currency=currency)
    key = {"X-Warranty-Key": settings.public_key}
    offers = client.get("/api/v1/offers?sku=TV-1", headers=key).json["offers"]
    standard = next(o for o in offers if o["plan_code"] == "standard-36")
    assert standard["price"] == 6010  # 5% of 120.010 = 6.0005 → 6.010
    res = client.post("/api/v1/checkout/sessions", headers=key, json={
        "order_ref": "K-2", "customer_email": "a@example.com",
        "success_url": "https://shop.example/ok", "cancel_url": "https://shop.example/no",
        "lines": [{"type": "product", "line_id": "p", "sku": "TV-1", "quantity": 2,
                   "unit_price": 120010},
                  {"type": "plan", "for_line": "p", "quantity": 2,
                   "offer_token": standard["offer_token"]}]})
    assert res.status_code == 201, res.json
    assert res.json["total"] == 2 * 120010 + 2 * 6010 == 252040
    items = stripe.checkout.Session.list_line_items(res.json["stripe_checkout_session_id"])
    assert [(i.price.unit_amount, i.quantity) for i in items.data] == [(120010, 2), (6010, 2)]
    with webhooks_to(client.application):
        assert pay_hosted(res.json["checkout_url"]).status_code == 303
        order, contracts = wait_paid(database_url, res.json["order_id"], contracts=2)
    intent = stripe.PaymentIntent.retrieve(order.stripe_payment_intent_id)
    assert (intent.amount, intent.currency) == (252040, currency)
    assert all(c.price == 6010 and c.currency == currency for c in contracts)


def test_a_pro_rata_refund_goes_to_stripe_rounded_down_to_ten(store, db):
    currency, settings, client = store
    # 6.000 plan on a 120.000 product bought 2026-01-10 (term to 2029-01-09, 1,096 days),
    # paid on the stand-in; cancelled 2026-10-01: 832 days unused (264 used).
    load_rules(db, currency=currency)
    order, (contract,) = stripe_paid_order(db, currency=currency, purchase_date=date(2026, 1, 10))
    assert (contract.price, order.total_amount) == (6000, 126000)
    quote = client.get(f"/api/v1/contracts/{contract.public_id}/cancellation-quote"
                       "?cancel_date=2026-10-01", headers=_admin(settings))
    assert quote.status_code == 200, quote.json
    # 6000 × 832 / 1096 = 4554.7… → 4,554 fils; Stripe takes tens → 4,550 (4.550).
    assert (quote.json["rule"], quote.json["unused_days"], quote.json["span_days"]) == (
        "pro_rata", 832, 1096)
    assert (quote.json["pro_rata_amount"], quote.json["amount"]) == (4554, 4550)
    res = client.post(f"/api/v1/contracts/{contract.public_id}/cancel", headers=_admin(settings),
                      json={"amount": 4550, "cancel_date": "2026-10-01", "reason": "asked",
                            "backdate_reason": "a test dated on a fixed day"})
    assert res.status_code == 200, res.json
    assert (res.json["refund"]["status"], res.json["refund"]["amount"]) == ("succeeded", 4550)
    (sent,) = stripe.Refund.list(payment_intent=order.stripe_payment_intent_id, limit=10).data
    assert (sent.amount, sent.currency, sent.status) == (4550, currency, "succeeded")
    assert sent.amount % money.stripe_step(currency) == 0
    refund = db.exec(select(Refund)).one()
    assert refund.amount == 4550
