"""A plan bought after the product, within 60 days, with a 30-day waiting period."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from tests.factories import add_product, load_rules
from tests.stripe_helpers import order_state, pay_hosted, wait_for, wait_paid
from warranty.contracts.models import Contract
from warranty.core.dates import add_months, store_today
from warranty.db.engine import Session, get_engine
from warranty.orders.models import Refund
from warranty.payments.client import make_client

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


def test_signed_link_page_buys_a_plan(stripe_live, stripe_app, database_url, db, store_key,
                                      staff_headers):
    import requests

    from warranty.post_purchase import plans as post_purchase
    client = stripe_app.test_client()
    load_rules(db)
    add_product(db)
    order = buy_tvs_without_plans(client, store_key, database_url, quantity=1)
    path = f"/api/v1/orders/{order.public_id}/post-purchase-links"
    # Each link acts for the customer: the storefront's public key is not enough.
    refused = client.get(path, headers=store_key)
    assert refused.status_code == 401 and refused.json["error"]["code"]
    links = client.get(path, headers=staff_headers).json["links"]
    assert [entry["line_no"] for entry in links] == [1]
    link = links[0]["url"]
    assert link == post_purchase.post_purchase_link(stripe_app.config["SETTINGS"], order, 1)
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
    # Back to the plans' page of this payment (Stripe fills in the session's id).
    assert paid.status_code == 303 and paid.headers["Location"].endswith(
        "/plans/added?session_id=" + res.headers["Location"].rsplit("/", 1)[1])
    from sqlmodel import select

    from tests.stripe_helpers import wait_for
    from warranty.contracts.models import Contract
    from warranty.db.engine import Session
    def first_contract():
        with Session(get_engine(database_url)) as session:
            return session.exec(select(Contract)).first()
    contract = wait_for(first_contract)
    assert contract.coverage == "accident" and contract.waiting_until is not None


def _start(client, store_key, order, offer, quantity=1):
    """Start a post-purchase hosted checkout for line 1 (not paid yet)."""
    res = client.post("/api/v1/checkout/post-purchase", headers=store_key, json={
        "order_id": order.public_id, "line_no": 1, "offer_token": offer["offer_token"],
        "quantity": quantity, **URLS})
    assert res.status_code == 201, res.json
    return res.json


def _offers(client, store_key, order):
    """Line 1 of the order's post-purchase offers."""
    res = client.get(f"/api/v1/orders/{order.public_id}/post-purchase-offers",
                     headers=store_key)
    assert res.status_code == 200, res.json
    return res.json["lines"][0]


def test_an_unpaid_post_purchase_checkout_hides_no_offers(stripe_live, stripe_app,
                                                          database_url, db, store_key,
                                                          staff_headers):
    import requests

    client = stripe_app.test_client()
    load_rules(db)
    add_product(db)
    order = buy_tvs_without_plans(client, store_key, database_url, quantity=1)
    first = _offers(client, store_key, order)["offers"][0]
    _start(client, store_key, order, first)  # abandoned on the payment page
    line = _offers(client, store_key, order)
    assert (line["covered_quantity"], line["reason"]) == (0, None)
    assert [o["plan_code"] for o in line["offers"]] == ["standard-36", "accident-36"]
    links = client.get(f"/api/v1/orders/{order.public_id}/post-purchase-links",
                       headers=staff_headers).json["links"]
    page = requests.get(stripe_live + links[0]["url"].split("127.0.0.1:5000")[1], timeout=10)
    assert page.status_code == 200 and "accident-36" in page.text
    _start(client, store_key, order, line["offers"][1])  # the shopper tries again: allowed


def test_post_purchase_sessions_expire_after_30_minutes(stripe_live, stripe_app, stripe_standin,
                                                        database_url, db, store_key):
    import stripe

    client = stripe_app.test_client()
    load_rules(db)
    add_product(db)
    order = buy_tvs_without_plans(client, store_key, database_url, quantity=1)
    started = _start(client, store_key, order, _offers(client, store_key, order)["offers"][0])
    session = stripe.checkout.Session.retrieve(started["stripe_checkout_session_id"])
    assert 30 * 60 <= session.expires_at - session.created <= 32 * 60
    purchase = stripe.checkout.Session.retrieve(order.stripe_checkout_session_id)
    assert purchase.expires_at - purchase.created == 24 * 3600  # other checkouts: Stripe's day
    stripe_standin.advance_clock(31 * 60)
    # Stripe expires it and says so: the plan order is kept as expired.
    expired = wait_for(lambda: (lambda o: o if o.status == "expired" else None)(
        order_state(database_url, started["order_id"])[0]))
    assert expired.total_amount == started["total"]
    assert pay_hosted_refused(started["checkout_url"])


def pay_hosted_refused(checkout_url: str) -> bool:
    """The expired payment page takes no payment."""
    import requests

    page = requests.get(checkout_url, timeout=10)
    paid = requests.post(checkout_url, data={"payment_method": "pm_card_visa"},
                         allow_redirects=False, timeout=10)
    return "has expired" in page.text and paid.status_code == 409


def _excess_state(database_url):
    """Contracts, refunds, attention items, plan-refund mails and order audit rows."""
    from sqlmodel import select

    from warranty.attention.models import AttentionItem
    from warranty.contracts.models import Contract
    from warranty.db.engine import Session
    from warranty.notify.models import MailMessage
    from warranty.orders.models import OrderEvent, Refund

    with Session(get_engine(database_url)) as session:
        return {
            "contracts": list(session.exec(select(Contract))),
            "refunds": list(session.exec(select(Refund))),
            "attention": list(session.exec(select(AttentionItem))),
            "mails": list(session.exec(select(MailMessage).where(
                MailMessage.kind == "plan_refunded"))),
            "audit": list(session.exec(select(OrderEvent).where(
                OrderEvent.action == "excess_plan_refunded"))),
        }


def _check_one_contract_one_refund(database_url, plan_orders, stripe_settings, db):
    """Exactly one plan order became a contract; the other was refunded in full, once."""
    import stripe

    from warranty.payments import refunds
    from warranty.reports import Context, parse_period, run_report

    # Both plan orders are paid (Stripe took both payments) ...
    for order in plan_orders:
        wait_for(lambda order=order: order_state(database_url, order["order_id"])[0].status
                 in ("paid", "refunded"), timeout=20)
    # ... and the line has one plan for its one unit, never two.
    made = [c for o in plan_orders for c in order_state(database_url, o["order_id"])[1]]
    assert len(made) == 1, f"{len(made)} contracts for 1 unit"

    def settled():
        state = _excess_state(database_url)
        return state if [r for r in state["refunds"] if r.status == "succeeded"] else None

    state = wait_for(settled, timeout=20)
    (contract,) = state["contracts"]
    (refund,) = state["refunds"]
    by_id = {order["order_id"]: order for order in plan_orders}
    orders = {oid: order_state(database_url, oid)[0] for oid in by_id}
    kept = next(o for o in orders.values() if o.id == contract.order_id)
    refunded = next(o for o in orders.values() if o.id != contract.order_id)
    assert (refund.kind, refund.contract_id, refund.order_id, refund.amount) == (
        "excess_plan", None, refunded.id, by_id[refunded.public_id]["total"])
    assert refund.idempotency_key == refunds.excess_refund_key(refunded)
    listed = stripe.Refund.list(payment_intent=refunded.stripe_payment_intent_id).data
    assert [(r.amount, r.metadata.to_dict().get(refunds.METADATA_KEY)) for r in listed] == [
        (refunded.total_amount, refund.idempotency_key)]
    assert stripe.Refund.list(payment_intent=kept.stripe_payment_intent_id).data == []
    (item,) = state["attention"]
    assert (item.kind, item.order_id, item.data["amount"], item.data["units_with_a_plan"]) == (
        "excess_plan_refunded", refunded.id, refunded.total_amount, 1)
    (mail,) = state["mails"]
    assert mail.to == "late@example.com" and "¥" in mail.subject
    assert len(state["audit"]) == 1
    wait_for(lambda: order_state(database_url, refunded.public_id)[0].status == "refunded")
    # Finance: one plan sold; the refund of a plan never made is money back, not a plan refund.
    day = store_today(stripe_settings.timezone)
    db.commit()
    ctx = Context(session=db, settings=stripe_settings,
                  stripe_client=make_client(stripe_settings), period=parse_period(day, day))
    total = run_report("finance", ctx).extra["total"]
    assert (total["plans_sold"], total["gross_sales"], total["refunds"]) == (
        1, contract.price, 0)
    rows = {row["order"]: row for row in run_report("reconciliation", ctx).rows}
    row = rows[refunded.public_id]
    assert (row["refunded_stripe"], row["refunded_ledger"], row["difference"], row["issue"]) == (
        refunded.total_amount, refunded.total_amount, 0, None)
    assert "plan refunded automatically" in row["note"]


def test_two_paid_checkouts_for_the_last_unit_make_one_contract_and_one_refund(
        stripe_live, stripe_app, stripe_settings, database_url, db, store_key):
    client = stripe_app.test_client()
    load_rules(db)
    add_product(db)
    order = buy_tvs_without_plans(client, store_key, database_url, quantity=1)
    offer = _offers(client, store_key, order)["offers"][0]
    first, second = _start(client, store_key, order, offer), _start(client, store_key, order,
                                                                     offer)
    assert pay_hosted(first["checkout_url"]).status_code == 303
    wait_paid(database_url, first["order_id"], contracts=1)
    assert pay_hosted(second["checkout_url"]).status_code == 303
    _check_one_contract_one_refund(database_url, [first, second], stripe_settings, db)
    again = _offers(client, store_key, order)
    assert again["covered_quantity"] == 1 and again["reason"]["code"] == "fully_covered"


def test_concurrent_checkouts_for_the_last_unit_make_one_contract(
        stripe_live, stripe_app, stripe_settings, database_url, db, store_key):
    import threading

    import pytest
    import requests

    if not database_url.startswith("postgresql"):
        pytest.skip("a race on PostgreSQL: SQLite serialises every write")
    client = stripe_app.test_client()
    load_rules(db)
    add_product(db)
    order = buy_tvs_without_plans(client, store_key, database_url, quantity=1)
    offer = _offers(client, store_key, order)["offers"][0]
    start, results = threading.Barrier(2), []

    def shopper():
        http = requests.Session()  # each shopper: own HTTP connection, own app thread
        start.wait()
        res = http.post(f"{stripe_live}/api/v1/checkout/post-purchase", headers=store_key,
                        timeout=30, json={"order_id": order.public_id, "line_no": 1,
                                          "offer_token": offer["offer_token"], **URLS})
        paid = pay_hosted(res.json()["checkout_url"]) if res.status_code == 201 else None
        results.append((res.status_code, res.json(), paid.status_code if paid else None))

    threads = [threading.Thread(target=shopper) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert [(status, paid) for status, _, paid in results] == [(201, 303), (201, 303)], results
    _check_one_contract_one_refund(database_url, [body for _, body, _ in results],
                                   stripe_settings, db)


def test_two_payments_for_the_last_unit_delivered_at_once_make_one_contract(
        stripe_server, stripe_app, stripe_settings, database_url, db, store_key):
    """Both plan orders are paid before Stripe tells us, then both payment events arrive at
    the same moment, each on its own connection: the line's lock at payment lets one of
    them take the last unit; the other is refunded in full."""
    import pytest

    from tests.factories import paid_order
    from tests.payments.test_stripe_webhooks import post_event
    from tests.races import together
    from tests.stripe_helpers import stripe_events

    if not database_url.startswith("postgresql"):
        pytest.skip("a race on PostgreSQL: SQLite serialises every write")
    client = stripe_app.test_client()
    load_rules(db)
    add_product(db)
    for round_no in range(3):
        # Two TVs, one with a plan: one unit open for a post-purchase plan.
        order, _ = paid_order(db, quantity=2, plan_quantity=1, email="late@example.com",
                              purchase_date=store_today(stripe_settings.timezone),
                              order_ref=f"A-{round_no}")
        offer = _offers(client, store_key, order)["offers"][0]
        started = [_start(client, store_key, order, offer) for _ in range(2)]
        events = []
        for plan_order in started:
            assert pay_hosted(plan_order["checkout_url"]).status_code == 303
            events += wait_for(lambda s=plan_order["stripe_checkout_session_id"]: stripe_events(
                "checkout.session.completed", s))
        answers = together(*(lambda e=e: post_event(stripe_server, e) for e in events))
        assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
        with Session(get_engine(database_url)) as session:
            made = session.exec(select(Contract).where(
                Contract.product_line_id == _line_id(session, order),
                Contract.status != "cancelled")).all()
            excess = session.exec(select(Refund).where(Refund.kind == "excess_plan",
                                                       Refund.order_id.in_(
                [_order_id(session, o["order_id"]) for o in started]))).all()
        assert (len(made), len(excess)) == (2, 1), f"round {round_no}"


def _line_id(session, order):
    from warranty.orders.models import OrderLine

    return session.exec(select(OrderLine.id).where(OrderLine.order_id == order.id,
                                                   OrderLine.kind == "product")).one()


def _order_id(session, public_id):
    from warranty.orders.models import Order

    return session.exec(select(Order.id).where(Order.public_id == public_id)).one()
