"""Pages after a payment tell the truth in the page's language: they wait for Stripe's word,
then say paid (a declined card and a successful retry never read "failed")."""

from __future__ import annotations

import re

import pytest

from tests.factories import paid_order
from warranty.http.web.pages import POLL_TIMES
from warranty.orders.models import Order


def _order_in(db, status: str) -> Order:
    """The demo shop's order A-1001, in ``status``."""
    order, _ = paid_order(db)
    order.status = status
    order.stripe_checkout_session_id = "cs_test_" + status
    db.add(order)
    db.commit()
    return order


@pytest.mark.parametrize(("status", "state", "en", "ja"), [
    ("pending", "waiting", "Confirming your payment…", "お支払いを確認しています…"),
    ("failed", "waiting", "Confirming your payment…", "お支払いを確認しています…"),
    ("paid", "paid", "Paid", "お支払いが完了しました"),
    ("expired", "expired", "Not paid", "お支払いは完了していません"),
])
def test_the_order_page_and_its_status_answer(client, db, status, state, en, ja):
    _order_in(db, status)
    page = client.get("/orders/A-1001/complete").get_data(as_text=True)  # the demo: ja first
    assert f'<strong id="order-status" data-state="{state}">{ja}</strong>' in page
    assert ("data-poll=" in page) == (state == "waiting")
    assert ('http-equiv="refresh"' in page) == (state == "waiting")  # without script
    assert ("failed" not in page.lower())
    client.get("/lang/en")
    answer = client.get("/orders/A-1001/state").json
    assert (answer["state"], answer["text"]) == (state, en)
    english = client.get("/orders/A-1001/complete").get_data(as_text=True)
    assert f">{en}</strong>" in english and '<html lang="en">' in english


def test_the_order_page_stops_asking_after_a_minute(client, db):
    _order_in(db, "pending")
    client.get("/lang/en")
    page = client.get(f"/orders/A-1001/complete?poll={POLL_TIMES}").get_data(as_text=True)
    assert "taking longer than usual" in page and "data-poll=" not in page
    assert 'http-equiv="refresh"' not in page


def test_the_page_after_a_post_purchase_payment_waits_then_leads_to_the_plans(client, db):
    order = _order_in(db, "pending")
    en = {"Accept-Language": "en"}
    waiting = client.get(f"/plans/added?session_id={order.stripe_checkout_session_id}",
                         headers=en).get_data(as_text=True)
    assert "Confirming your payment…" in waiting
    refresh = re.search(r'http-equiv="refresh" content="2;url=([^"]+)"', waiting).group(1)
    assert "poll=1" in refresh
    assert 'href="/my/plans"' in waiting and 'href="/static/style.css"' in waiting
    order.status = "paid"
    db.add(order)
    db.commit()
    paid = client.get(refresh.replace("&amp;", "&"), headers=en).get_data(as_text=True)
    assert ">Paid</strong>" in paid and 'http-equiv="refresh"' not in paid
    unknown = client.get("/plans/added?session_id=cs_nope", headers={"Accept-Language": "ja"})
    assert "お支払いの状況は、メールでお知らせします。" in unknown.get_data(as_text=True)
