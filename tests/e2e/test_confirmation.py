"""The final-confirmation items reach the cart's answer and Stripe's payment page (through
the real SDK and the stand-in), in the shopper's language; the paid contracts keep the
terms version the page named."""

from __future__ import annotations

import requests
import stripe

from tests.e2e.test_checkout_flow import cart, offer
from tests.factories import add_product, load_rules
from tests.stripe_helpers import pay_hosted, wait_paid
from warranty.core.dates import store_today
from warranty.coverage.dates import coverage_dates
from warranty.pricing import terms


def test_the_cart_answer_and_the_payment_page_show_each_plans_items(
        stripe_live, stripe_settings, stripe_app, database_url, db, store_key):
    client = stripe_app.test_client()
    version = load_rules(db)
    add_product(db)
    chosen = offer(client, store_key, "TV-1", plan="accident-36")
    body = dict(cart(chosen["offer_token"], qty=1, plans=1), lang="en")
    res = client.post("/api/v1/checkout/sessions", json=body, headers=store_key)
    assert res.status_code == 201, res.json
    (item,) = res.json["confirmation"]
    today = store_today(stripe_settings.timezone)
    dates = coverage_dates(purchase_date=today, term_months=36, manufacturer_months=12,
                           coverage="accident")
    label = terms.current_label(version, stripe_settings)
    # ¥9,960 (8.3% of ¥120,000, rounded up to ¥10) tax included: ¥905 of tax.
    assert {k: item[k] for k in ("line_no", "plan_code", "price_with_tax", "tax", "term_start",
                                 "term_end", "breakdown_cover_start", "accident_cover_start",
                                 "free_look_days", "cancellation_fee", "terms_version")} == {
        "line_no": 2, "plan_code": "accident-36", "price_with_tax": 9960, "tax": 905,
        "term_start": today.isoformat(), "term_end": dates.term_end.isoformat(),
        "breakdown_cover_start": dates.breakdown_start.isoformat(),
        "accident_cover_start": today.isoformat(), "free_look_days": 30,
        "cancellation_fee": 0, "terms_version": label}
    assert item["terms_url"].endswith(f"/terms/{label}/electronics/accident-36")
    assert item["items"][1] == "Price (tax included): ¥9,960 (tax ¥905)"
    # Stripe's session: the plan line described by its items, the conditions above Pay.
    session = stripe.checkout.Session.retrieve(res.json["stripe_checkout_session_id"])
    assert "Cancellation: Cancel within 30 days" in session.custom_text.submit.message
    assert item["terms_url"] in session.custom_text.submit.message
    page = requests.get(res.json["checkout_url"], timeout=10).text
    assert "Price (tax included): ¥9,960 (tax ¥905)" in page
    assert f"Term: {today.isoformat()} to {dates.term_end.isoformat()} (36 months)" in page
    assert "Accidental damage cover starts: " + today.isoformat() in page
    assert 'class="custom-text-submit"' in page and item["terms_url"] in page
    assert pay_hosted(res.json["checkout_url"]).status_code == 303
    _order, (contract,) = wait_paid(database_url, res.json["order_id"], contracts=1)
    assert contract.terms_version == label  # what the page named is what was sold


def test_a_japanese_cart_gets_japanese_items(stripe_live, stripe_app, db, store_key):
    client = stripe_app.test_client()
    load_rules(db)
    add_product(db)
    chosen = offer(client, store_key, "TV-1")
    res = client.post("/api/v1/checkout/payment-intents",
                      json={k: v for k, v in cart(chosen["offer_token"], qty=1, plans=1).items()
                            if k not in ("success_url", "cancel_url")}, headers=store_key)
    assert res.status_code == 201, res.json
    (item,) = res.json["confirmation"]
    assert item["items"][0] == "故障保証 36か月"
    assert item["items"][1] == "価格(税込): ¥6,000(うち消費税 ¥545)"
    assert item["items"][-1].startswith("保証規約(バージョン ")


def test_plans_bought_later_show_their_waiting_period(stripe_live, stripe_app, database_url,
                                                      db, store_key):
    from datetime import timedelta

    from tests.e2e.test_post_purchase import URLS, buy_tvs_without_plans
    from warranty.post_purchase import plans as post_purchase

    client = stripe_app.test_client()
    load_rules(db)
    add_product(db)
    order = buy_tvs_without_plans(client, store_key, database_url, quantity=1)
    offers = client.get(f"/api/v1/orders/{order.public_id}/post-purchase-offers",
                        headers=store_key).json
    assert offers["terms"]["free_look_days"] == 30 and offers["terms"]["version"]
    chosen = next(o for o in offers["lines"][0]["offers"] if o["plan_code"] == "standard-36")
    res = client.post("/api/v1/checkout/post-purchase", headers=store_key, json={
        "order_id": order.public_id, "line_no": 1, "offer_token": chosen["offer_token"],
        "quantity": 1, "lang": "en", **URLS})
    assert res.status_code == 201, res.json
    (item,) = res.json["confirmation"]
    waiting = (store_today(stripe_app.config["SETTINGS"].timezone) + timedelta(days=30))
    assert item["waiting_until"] == waiting.isoformat()
    assert f"Waiting period: no claims for incidents before {waiting.isoformat()}" in item[
        "items"]
    assert item["terms_version"] == offers["terms"]["version"]
    # The signed link's page lists the same items, in the page's language (ja or en).
    link = post_purchase.post_purchase_link(stripe_app.config["SETTINGS"], order, 1)
    path = link.split("127.0.0.1:5000")[1]
    sep = "&" if "?" in path else "?"
    page = client.get(f"{path}{sep}lang=en").get_data(as_text=True)
    ja = client.get(f"{path}{sep}lang=ja").get_data(as_text=True)
    assert 'id="confirm-standard-36"' in page and 'id="confirm-standard-36"' in ja
    assert "Price (tax included): ¥6,000 (tax ¥545)" in page and "価格(税込): ¥6,000" in ja
    assert f"/terms/{item['terms_version']}/electronics/standard-36" in page
