"""A plan bought after the product, within 60 days, with a 30-day waiting period."""

from __future__ import annotations

from datetime import timedelta

from tests.factories import add_product, load_rules
from tests.stripe_helpers import order_state, pay_hosted, wait_paid
from warranty.dates import add_months, store_today
from warranty.db import get_engine

URLS = {"success_url": "https://shop.example/ok", "cancel_url": "https://shop.example/no"}


def buy_tvs_without_plans(client, store_key, database_url, quantity=2):
    res = client.post("/api/v1/checkout/sessions", headers=store_key, json={
        "order_ref": "A-9", "customer_email": "late@example.com", **URLS,
        "lines": [{"type": "product", "line_id": "p", "sku": "TV-1", "quantity": quantity,
                   "unit_price": 120000}]})
    assert res.status_code == 201, res.json
    pay_hosted(res.json["checkout_url"])
    order, _ = wait_paid(database_url, res.json["order_id"], contracts=0)
    return order


def test_post_purchase_plan_has_waiting_period_and_original_term(
        stripe_live, stripe_app, database_url, db, store_key):
    client = stripe_app.test_client()
    load_rules(db)
    add_product(db)
    order = buy_tvs_without_plans(client, store_key, database_url)
    offers = client.get(f"/api/v1/orders/{order.public_id}/post-purchase-offers",
                        headers=store_key)
    assert offers.status_code == 200, offers.json
    (line,) = offers.json["lines"]
    assert line["line_no"] == 1 and line["covered_quantity"] == 0
    chosen = next(o for o in line["offers"] if o["plan_code"] == "accident-36")
    too_many = client.post("/api/v1/checkout/post-purchase", headers=store_key, json={
        "order_id": order.public_id, "line_no": 1, "offer_token": chosen["offer_token"],
        "quantity": 3, **URLS})
    assert too_many.status_code == 422 and too_many.json["error"]["code"] == "too_many_plans"
    res = client.post("/api/v1/checkout/post-purchase", headers=store_key, json={
        "order_id": order.public_id, "line_no": 1, "offer_token": chosen["offer_token"],
        "quantity": 2, **URLS})
    assert res.status_code == 201, res.json
    assert res.json["total"] == 2 * chosen["price"]
    pay_hosted(res.json["checkout_url"])
    plan_order, contracts = wait_paid(database_url, res.json["order_id"], contracts=2)
    today = store_today("Asia/Tokyo")
    for contract in contracts:
        assert contract.purchase_date == order.purchase_date
        assert contract.plan_sold_on == today
        assert contract.waiting_until == today + timedelta(days=30)
        assert contract.accident_start == today + timedelta(days=30)
        assert contract.term_end == add_months(order.purchase_date, 36) - timedelta(days=1)
        assert contract.product_line_id is not None
    again = client.get(f"/api/v1/orders/{order.public_id}/post-purchase-offers",
                       headers=store_key).json["lines"][0]
    assert again["covered_quantity"] == 2 and again["offers"] == []
    assert again["reason"]["code"] == "fully_covered"


def test_post_purchase_window_closes_after_60_days(stripe_live, stripe_app, database_url, db,
                                                   store_key):
    client = stripe_app.test_client()
    load_rules(db)
    add_product(db)
    order = buy_tvs_without_plans(client, store_key, database_url, quantity=1)
    with get_engine(database_url).begin() as conn:
        conn.exec_driver_sql("UPDATE orders SET purchase_date = :d WHERE id = :i".replace(
            ":d", "'" + (store_today("Asia/Tokyo") - timedelta(days=61)).isoformat() + "'")
            .replace(":i", str(order.id)))
    res = client.get(f"/api/v1/orders/{order.public_id}/post-purchase-offers",
                     headers=store_key)
    assert res.status_code == 409
    assert res.json["error"]["code"] == "post_purchase_window_closed"
    unknown = client.get("/api/v1/orders/ord_nope/post-purchase-offers", headers=store_key)
    assert unknown.status_code == 404
    assert order_state(database_url, order.public_id)[0].status == "paid"


def test_signed_link_page_buys_a_plan(stripe_live, stripe_app, database_url, db, store_key):
    import requests

    from warranty import checkout
    client = stripe_app.test_client()
    load_rules(db)
    add_product(db)
    order = buy_tvs_without_plans(client, store_key, database_url, quantity=1)
    links = client.get(f"/api/v1/orders/{order.public_id}/post-purchase-links",
                       headers=store_key).json["links"]
    assert [entry["line_no"] for entry in links] == [1]
    link = links[0]["url"]
    assert link == checkout.post_purchase_link(stripe_app.config["SETTINGS"], order, 1)
    path = link.split("127.0.0.1:5000")[1]
    token = path.split("token=")[1]
    browser_like = requests.Session()  # keeps the session cookie the CSRF token is tied to
    page = browser_like.get(stripe_live + path, timeout=10)
    assert page.status_code == 200 and "accident-36" in page.text and "¥2,980" not in page.text
    assert "¥9,960" in page.text  # 8.3% of ¥120,000
    bad = requests.get(stripe_live + path[:-4] + "AAAA", timeout=10,
                       headers={"Accept": "text/html"})
    assert bad.status_code == 403 and "<html" in bad.text
    from urllib.parse import unquote
    form = {"token": unquote(token), "plan_code": "accident-36", "quantity": "1"}
    forged = requests.post(f"{stripe_live}/plans/add", timeout=10, data=form,
                           allow_redirects=False)
    assert forged.status_code == 400  # no CSRF token: refused
    csrf = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    res = browser_like.post(f"{stripe_live}/plans/add", timeout=10, allow_redirects=False,
                            data={**form, "csrf_token": csrf})
    assert res.status_code == 303 and "/pay/cs_" in res.headers["Location"]
    paid = pay_hosted(res.headers["Location"])
    assert paid.status_code == 303 and paid.headers["Location"].endswith("/plans/added")
    from sqlmodel import Session, select

    from tests.stripe_helpers import wait_for
    from warranty.models import Contract
    def first_contract():
        with Session(get_engine(database_url)) as session:
            return session.exec(select(Contract)).first()
    contract = wait_for(first_contract)
    assert contract.coverage == "accident" and contract.waiting_until is not None
