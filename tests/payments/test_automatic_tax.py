"""Stripe Tax (automatic_tax) with tax-exclusive prices, offline: the real SDK against the
stand-in, which computes a fixed 7.25% (AUTOMATIC_TAX_RATE) per line, rounded half up. What
Stripe computed is what the order lines and contracts store (docs/domain/tax.md)."""

from decimal import Decimal

import pytest
import stripe
from pydantic import ValidationError
from sqlmodel import select

from devtools.settings import demo_settings
from devtools.stripe_standin import AUTOMATIC_TAX_RATE
from tests.conftest import serve
from tests.factories import add_product, rules_doc
from tests.stripe_helpers import pay_hosted, wait_paid
from warranty.core import money
from warranty.http.app import create_app
from warranty.orders.models import Order, OrderLine, Refund

PRODUCT = 129900  # $1,299.00: its standard-36 plan is 5% = $64.95 (rules_doc)
PLAN = 6495


@pytest.fixture
def auto_store(mail_settings, stripe_standin):
    """A USD store with exclusive prices and Stripe Tax on (its own rate 8.875% for
    PaymentIntents), talking to the emptied stand-in."""
    settings = mail_settings.model_copy(update={
        "currency": "usd", "tax_mode": "exclusive", "tax_rate": "0.08875",
        "tax_rounding": "half_up", "stripe_automatic_tax": True})
    stripe_standin.reset()
    app = create_app(settings)
    yield settings, app.test_client()
    stripe_standin.reset()


def _cart(client, settings, db, ref: str) -> dict:
    """A cart of two $1,299.00 TVs with two standard-36 plans, as the storefront sends it."""
    admin = {"Authorization": f"Bearer {settings.api_token}"}
    assert client.post("/api/v1/rule-sets", json={"rules": rules_doc("usd")},
                       headers=admin).status_code == 201
    add_product(db, sku="TV-1", price=PRODUCT, currency="usd")
    key = {"X-Warranty-Key": settings.public_key}
    offers = client.get("/api/v1/offers?sku=TV-1", headers=key).json
    assert offers["tax_mode"] == "exclusive"
    plan = next(o for o in offers["offers"] if o["plan_code"] == "standard-36")
    assert plan["price"] == PLAN
    return {"order_ref": ref, "customer_email": "a@example.com",
            "lines": [{"type": "product", "line_id": "p", "sku": "TV-1", "quantity": 2,
                       "unit_price": PRODUCT},
                      {"type": "plan", "for_line": "p", "quantity": 2,
                       "offer_token": plan["offer_token"]}]}


def test_stripe_tax_is_what_the_order_lines_and_contracts_store(auto_store, db, database_url,
                                                                stripe_standin):
    settings, client = auto_store
    assert Decimal("0.0725") == AUTOMATIC_TAX_RATE
    key = {"X-Warranty-Key": settings.public_key}
    res = client.post("/api/v1/checkout/sessions", headers=key, json={
        **_cart(client, settings, db, "AT-1"), "success_url": "https://shop.example/ok",
        "cancel_url": "https://shop.example/no"})
    assert res.status_code == 201, res.json
    # Before the hosted page, the service adds no tax of its own: Stripe will.
    assert res.json["total"] == 2 * PRODUCT + 2 * PLAN
    assert (res.json["tax"]["source"], res.json["tax"]["tax"]) == ("stripe", 0)
    session = stripe.checkout.Session.retrieve(res.json["stripe_checkout_session_id"])
    assert session.automatic_tax.enabled is True
    # Stripe Tax on the plans: 2 × $64.95 = 12,990 cents × 7.25% = 941.775 → 942 cents (half
    # up); the TVs are the store's own sale, sent as nontaxable (txcd_00000000): no tax.
    items = stripe.checkout.Session.list_line_items(session.id).data
    assert [(i.price.unit_amount, i.quantity, i.amount_tax) for i in items] == [
        (PRODUCT, 2, 0), (PLAN, 2, 942)]
    assert session.total_details.amount_tax == 942
    assert session.amount_total == 2 * PRODUCT + 2 * PLAN + 942 == 273732
    with serve(client.application) as url:
        stripe_standin.register_webhook("warranty", f"{url}/stripe/webhook", "whsec_test")
        page = pay_hosted(res.json["checkout_url"])
        assert page.status_code == 303
        order, contracts = wait_paid(database_url, res.json["order_id"], contracts=2)
    # The amount check held against Stripe's total, and the lines store Stripe's tax.
    assert order.total_amount == 273732
    assert stripe.PaymentIntent.retrieve(order.stripe_payment_intent_id).amount == 273732
    db.rollback()
    lines = db.exec(select(OrderLine).where(OrderLine.order_id == order.id)
                    .order_by(OrderLine.line_no)).all()
    assert [(ln.kind, ln.gross, ln.tax, ln.net) for ln in lines] == [
        ("product", 2 * PRODUCT, 0, 2 * PRODUCT), ("plan", 12990 + 942, 942, 12990)]
    # Each unit's share: 942 split equally, 471 + 471; a contract's price is its unit's gross.
    assert sorted((c.price, c.tax) for c in contracts) == [(PLAN + 471, 471)] * 2
    assert db.get(Order, order.id).tax_source == "stripe"
    # A free-look cancellation refunds the whole price with Stripe's tax in it.
    admin = {"Authorization": f"Bearer {settings.api_token}"}
    contract = contracts[0]
    done = client.post(f"/api/v1/contracts/{contract.public_id}/cancel", headers=admin,
                       json={"amount": contract.price, "reason": "changed mind"})
    assert done.status_code == 200, done.json
    db.rollback()
    refund = db.exec(select(Refund).where(Refund.contract_id == contract.id)).one()
    assert (refund.amount, refund.tax) == (PLAN + 471, 471)
    report = client.get(f"/api/v1/reports/finance?from={order.purchase_date}"
                        f"&to={order.purchase_date}", headers=admin).json["total"]
    assert (report["gross_sales"], report["sales_tax"]) == (2 * PLAN + 942, 942)


def test_a_payment_intent_has_no_stripe_tax_and_takes_the_stores_own_rate(auto_store, db):
    settings, client = auto_store
    key = {"X-Warranty-Key": settings.public_key}
    res = client.post("/api/v1/checkout/payment-intents", headers=key,
                      json=_cart(client, settings, db, "AT-2"))
    assert res.status_code == 201, res.json
    # 12,990 × 8.875% = 1,152.86… → 1,153 cents (half up), added by the service.
    assert res.json["tax"]["source"] == "service"
    assert res.json["tax"]["tax"] == 1153 == money.round_fraction(
        money.Fraction(12990 * 8875, 100000), "half_up")
    assert res.json["total"] == 2 * PRODUCT + 12990 + 1153


def test_stripe_tax_needs_exclusive_prices():
    with pytest.raises(ValidationError, match="WARRANTY_STRIPE_AUTOMATIC_TAX needs "
                                              "WARRANTY_TAX_MODE=exclusive"):
        demo_settings(stripe_automatic_tax=True)
    assert demo_settings(currency="usd", tax_mode="exclusive",
                         stripe_automatic_tax=True).tax.automatic is True


def test_without_stripe_tax_the_session_asks_for_none(mail_settings, stripe_standin, db):
    settings = mail_settings.model_copy(update={
        "currency": "usd", "tax_mode": "exclusive", "tax_rate": "0.08875",
        "tax_rounding": "half_up"})
    stripe_standin.reset()
    client = create_app(settings).test_client()
    key = {"X-Warranty-Key": settings.public_key}
    res = client.post("/api/v1/checkout/sessions", headers=key, json={
        **_cart(client, settings, db, "AT-3"), "success_url": "https://shop.example/ok",
        "cancel_url": "https://shop.example/no"})
    assert res.status_code == 201, res.json
    session = stripe.checkout.Session.retrieve(res.json["stripe_checkout_session_id"])
    assert session.automatic_tax.enabled is False
    assert session.total_details.amount_tax == 0
    assert res.json["tax"]["source"] == "service"
    stripe_standin.reset()
