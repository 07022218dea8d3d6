"""A paid order whose amount doesn't match what was priced is never silent: it goes on the
staff attention queue with the figures (API, staff page, metric), and staff mark it handled
with a note, audited with who."""

from __future__ import annotations

import sqlalchemy as sa
import stripe
from sqlmodel import select

from tests.factories import add_product, add_staff, load_rules
from tests.http.test_metrics import samples
from tests.http.web.pages import csrf, sign_in_staff
from tests.stripe_helpers import order_state, pay_hosted, wait_for
from warranty.attention import services as attention
from warranty.attention.models import AttentionItem
from warranty.auth import credentials
from warranty.db.engine import Session, get_engine
from warranty.orders.models import OrderEvent
from warranty.payments.models import StripeEvent

URLS = {"success_url": "https://shop.example/ok", "cancel_url": "https://shop.example/no"}


def _items(database_url):
    """Every attention item, oldest first."""
    with Session(get_engine(database_url)) as session:
        return list(session.exec(select(AttentionItem).order_by(AttentionItem.id)))


def _mismatched_order(client, store_key, database_url):
    """A hosted checkout whose order total no longer matches what Stripe will charge."""
    load = client.get("/api/v1/offers?sku=TV-1", headers=store_key).json["offers"][0]
    res = client.post("/api/v1/checkout/sessions", headers=store_key, json={
        "order_ref": "M-1", "customer_email": "m@example.com", **URLS,
        "lines": [{"type": "product", "line_id": "p", "sku": "TV-1", "quantity": 1,
                   "unit_price": 120000},
                  {"type": "plan", "for_line": "p", "quantity": 1,
                   "offer_token": load["offer_token"]}]})
    assert res.status_code == 201, res.json
    # The ledger's total moved after Stripe was asked (a pricing bug, a hand edit, ...).
    with get_engine(database_url).begin() as conn:
        conn.execute(sa.text("UPDATE orders SET total_amount = 125000 WHERE public_id = :o"),
                     {"o": res.json["order_id"]})
    assert pay_hosted(res.json["checkout_url"]).status_code == 303
    return res.json


def test_an_amount_mismatch_goes_on_the_queue_with_its_figures(
        stripe_live, stripe_app, database_url, db, store_key, staff_headers):
    load_rules(db)
    add_product(db)
    client = stripe_app.test_client()
    started = _mismatched_order(client, store_key, database_url)
    (item,) = wait_for(lambda: _items(database_url))
    order, contracts = order_state(database_url, started["order_id"])
    assert (order.status, contracts) == ("pending", [])  # no contracts for a wrong amount
    intent = stripe.checkout.Session.retrieve(started["stripe_checkout_session_id"]).payment_intent
    assert item.kind == "amount_mismatch" and item.status == "open"
    figures = item.data
    assert (figures["order"], figures["expected_amount"], figures["expected_currency"],
            figures["charged_amount"], figures["charged_currency"]) == (
        order.public_id, 125000, "jpy", 126000, "jpy")
    assert figures["stripe_checkout_session_id"] == started["stripe_checkout_session_id"]
    assert figures["stripe_payment_intent_id"] == intent
    assert figures["stripe_charge_id"].startswith("ch_") and figures["charged_at"]
    assert "¥126,000" in item.summary and "¥125,000" in item.summary
    wait_for(lambda: len([e for e in _stored_events(database_url)
                          if e.outcome == "amount_mismatch"]) == 2)  # session + intent events
    assert len(_items(database_url)) == 1  # one problem, however often Stripe reports it
    assert all("amount mismatch" in e.last_error for e in _stored_events(database_url)
               if e.outcome == "amount_mismatch")
    with Session(get_engine(database_url)) as session:
        audit = session.exec(select(OrderEvent).where(OrderEvent.action == "amount_mismatch"))
        assert [e.data["charged_amount"] for e in audit] == [126000]
    assert order.stripe_payment_intent_id == intent  # reconciliation can name the order

    listed = client.get("/api/v1/attention", headers=staff_headers)
    assert listed.status_code == 200, listed.json
    (shown,) = listed.json["items"]
    assert (shown["id"], shown["kind"], shown["order"], shown["store_order_ref"]) == (
        item.public_id, "amount_mismatch", order.public_id, "M-1")
    assert shown["data"]["charged_amount"] == 126000
    assert listed.json["open_by_kind"]["amount_mismatch"] == 1
    metric = ("warranty_attention_open", (("kind", "amount_mismatch"),))
    assert samples(client.get("/metrics", headers=staff_headers).text)[metric] == 1

    url = f"/api/v1/attention/{item.public_id}/handle"
    support = credentials.issue_token(session=db, name="support", role="staff")
    db.commit()
    refused = client.post(url, headers={"Authorization": f"Bearer {support}"},
                          json={"note": "x"})
    assert refused.status_code == 403
    assert client.post(url, headers=staff_headers, json={"note": ""}).status_code == 422
    done = client.post(url, headers=staff_headers,
                       json={"note": "refunded ¥126,000 in the dashboard; order re-sent"})
    assert done.status_code == 200, done.json
    assert (done.json["status"], done.json["handled_by"], done.json["handled_note"]) == (
        "handled", "admin-token", "refunded ¥126,000 in the dashboard; order re-sent")
    again = client.post(url, headers=staff_headers, json={"note": "me too"})
    assert again.status_code == 409 and again.json["error"]["code"] == "already_handled"
    assert client.post("/api/v1/attention/att_nope/handle", headers=staff_headers,
                       json={"note": "x"}).status_code == 404
    assert client.get("/api/v1/attention", headers=staff_headers).json["items"] == []
    handled = client.get("/api/v1/attention?status=handled", headers=staff_headers).json
    assert [i["id"] for i in handled["items"]] == [item.public_id]
    assert samples(client.get("/metrics", headers=staff_headers).text)[metric] == 0


def _stored_events(database_url):
    """Every stored Stripe event."""
    with Session(get_engine(database_url)) as session:
        return list(session.exec(select(StripeEvent)))


def _raise(db, kind="refund_failed", key="r1", amount=6000):
    """An open item, as the domain raises them."""
    attention.raise_item(session=db, kind=kind, key=key,
                         summary=f"The ¥{amount:,} refund for ct_1 failed at Stripe",
                         data={"amount": amount, "currency": "jpy", "stripe_refund_id": "re_1"})
    db.commit()
    return db.exec(select(AttentionItem).where(AttentionItem.key == f"{kind}:{key}")).one()


def test_the_staff_page_lists_items_and_finance_marks_them_handled(client, db):
    item = _raise(db)
    add_staff(db, email="fin@store.example", role="finance")
    add_staff(db, email="sup@store.example", role="staff")
    sign_in_staff(client, "sup@store.example")
    page = client.get("/staff/attention").get_data(as_text=True)
    assert 'id="nav-attention"' in page and "Attention <span" in page
    assert item.summary in page and "¥6,000" in page and "re_1" in page
    assert "Mark handled" not in page  # support reads; finance and admin handle
    forbidden = client.post(f"/staff/attention/{item.public_id}/handle",
                            data={"note": "x", "csrf_token": csrf(client, "/staff/attention")})
    assert forbidden.status_code == 403
    client.post("/staff/logout", data={"csrf_token": csrf(client, "/staff/attention")})

    sign_in_staff(client, "fin@store.example")
    token = csrf(client, "/staff/attention")
    empty = client.post(f"/staff/attention/{item.public_id}/handle",
                        data={"note": "  ", "csrf_token": token})
    assert empty.status_code == 422 and "a note is required" in empty.get_data(as_text=True)
    done = client.post(f"/staff/attention/{item.public_id}/handle",
                       data={"note": "paid the customer by bank transfer", "csrf_token": token})
    assert done.status_code == 303
    db.refresh(item)
    db.commit()
    assert (item.status, item.handled_by, item.handled_note) == (
        "handled", "staff:fin@store.example", "paid the customer by bank transfer")
    assert "Nothing needs attention here." in client.get("/staff/attention").get_data(
        as_text=True)
    handled = client.get("/staff/attention?status=handled").get_data(as_text=True)
    assert "staff:fin@store.example" in handled and "paid the customer by bank transfer" in handled
    twice = client.post(f"/staff/attention/{item.public_id}/handle",
                        data={"note": "again", "csrf_token": token})
    assert twice.status_code == 409 and "already handled" in twice.get_data(as_text=True)
    no_csrf = client.post(f"/staff/attention/{item.public_id}/handle", data={"note": "x"})
    assert no_csrf.status_code == 400


def test_an_item_is_raised_once_per_problem(db):
    first = attention.raise_item(session=db, kind="amount_mismatch", key="ord_1:pi_1",
                                 summary="one", data={})
    second = attention.raise_item(session=db, kind="amount_mismatch", key="ord_1:pi_1",
                                  summary="two", data={})
    db.commit()
    assert (first, second) == (True, False)
    assert [i.summary for i in db.exec(select(AttentionItem))] == ["one"]
