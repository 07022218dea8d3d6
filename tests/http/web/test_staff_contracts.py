"""Staff contract pages through HTTP: search, the contract page, cancellation from its quote
(and the quote that moved), transfer, product returns, the customer history's refunds.

Cancellations and returns refund through the real stripe SDK against the Stripe stand-in.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
import stripe
from sqlmodel import select

from tests.factories import add_staff, paid_order, stripe_paid_order
from tests.http.web.pages import PURCHASE, csrf, sign_in_staff
from warranty.claims import filing
from warranty.contracts.models import Contract, ContractEvent
from warranty.core.dates import store_today
from warranty.http.app import create_app
from warranty.notify.models import MailMessage
from warranty.orders.models import Refund

TERM_END = date(2027, 1, 9)  # PURCHASE + 36 months − 1 day
SPAN = 1096  # 2024-01-10 .. 2027-01-09, both counted: 366 + 365 + 365 (2024 is a leap year)


@pytest.fixture
def ops(mail_settings):
    """The app on the Stripe stand-in, without rate limits."""
    return create_app(mail_settings.model_copy(update={"rate_limits_enabled": False}))


def staff(app, db, role: str):
    """A test client signed in as a staff member of ``role``."""
    email = f"{role}@store.example"
    add_staff(db, email=email, role=role)
    client = app.test_client()
    sign_in_staff(client, email)
    return client


def pro_rata(price: int, today: date) -> int:
    """The refund of a plan sold on PURCHASE cancelled ``today``, worked out by hand:
    price × unused days (today included, to the term end) / days of the span, rounded down."""
    unused = (TERM_END - today).days + 1
    return price * unused // SPAN


def yen(amount: int) -> str:
    """An amount as the pages write it."""
    return f"¥{amount:,}"


def test_search_by_number_email_order_and_sku(app, db, settings):
    order, (mine,) = paid_order(db, purchase_date=PURCHASE, email="Buyer@Example.com",
                                order_ref="A-1001", sku="TV-1")
    _, (other,) = paid_order(db, purchase_date=PURCHASE, email="other@example.com",
                             order_ref="Z-9", sku="TV-99")
    client = staff(app, db, "support")
    for term in (mine.public_id, "buyer@example.com", "BUYER@EXAMPLE.COM", "A-1001",
                 order.public_id, "TV-1", f"  {mine.public_id} "):
        page = client.get("/staff/contracts", query_string={"q": term}).get_data(as_text=True)
        assert mine.public_id in page and other.public_id not in page, term
        assert "1 found" in page
    everything = client.get("/staff/contracts").get_data(as_text=True)
    assert mine.public_id in everything and other.public_id in everything
    nothing = client.get("/staff/contracts?q=nobody").get_data(as_text=True)
    assert "No contracts match." in nothing
    ja = client.get("/staff/contracts?q=nobody&lang=ja").get_data(as_text=True)
    assert "該当する契約はありません。" in ja and '<html lang="ja">' in ja
    # The language stays chosen on the next page.
    assert "契約の検索" in client.get("/staff/contracts").get_data(as_text=True)


def test_the_contract_page_has_everything(app, db, settings):
    order, (contract,) = paid_order(db, purchase_date=PURCHASE, plan_code="accident-36")
    claim = filing.file_claim(session=db, settings=settings, contract=contract,
                              customer_email="buyer@example.com", incident_date=date(2025, 3, 1),
                              failure_type="accident", description="Dropped it.",
                              estimated_amount=30000, files=[], actor="customer:x",
                              today=date(2026, 1, 1))
    db.commit()
    client = staff(app, db, "finance")
    review = f"/staff/claims/{claim.public_id}"
    assert client.post(f"{review}/approve", data={
        "csrf_token": csrf(client, review), "decision": "repair", "amount": "25000"}
    ).status_code == 303
    assert client.post(f"{review}/pay", data={
        "csrf_token": csrf(client, review), "method": "repair_vendor", "reference": "RO-1"}
    ).status_code == 303
    page = client.get(f"/staff/contracts/{contract.public_id}").get_data(as_text=True)
    text = re.sub(r"<[^>]+>", " ", page)
    assert "A-1001" in page and order.public_id in page and "Test TV" in page
    assert "Breakdown and accident, 36 months" in text and "accident-36" not in text
    assert yen(contract.price) in page  # 120,000 × 8.3% = 9,960
    assert contract.price == 9960
    assert "2024-01-10 – 2027-01-09" in page  # the term
    assert re.search(r"Breakdown cover from</dt><dd[^>]*>2025-01-10<", page)
    assert re.search(r"Accident cover from</dt><dd[^>]*>2024-01-10<", page)
    # One cap per coverage year of the term, none past its end: [100, 100, 80] % of 120,000.
    caps = re.findall(r"<td[^>]*>(\d)</td><td[^>]*>(\S+ – \S+)</td>\s*<td[^>]*>(\d+)%</td>"
                      r"<td[^>]*>(¥[\d,]+)</td>", page)
    assert caps == [("1", "2024-01-10 – 2025-01-09", "100", "¥120,000"),
                    ("2", "2025-01-10 – 2026-01-09", "100", "¥120,000"),
                    ("3", "2026-01-10 – 2027-01-09", "80", "¥96,000")]
    assert claim.public_id in page and ">Paid<" in page
    assert "Repair vendor" in page and "RO-1" in page and "¥25,000" in page
    assert "No refund." in page
    assert ">Created<" in page  # the audit row of the contract's creation
    assert 'id="contract-documents"' in page  # the place for the certificate and serial
    ja = client.get(f"/staff/contracts/{contract.public_id}?lang=ja").get_data(as_text=True)
    assert "故障・事故保証 36か月" in ja and "保証年度ごとの上限額" in ja and "支払い済み" in ja


def test_finance_cancels_from_the_quote_and_stripe_refunds_it(ops, db, mail_settings):
    order, (contract,) = stripe_paid_order(db, purchase_date=PURCHASE, email="c@example.com")
    today = store_today(mail_settings.timezone)
    expected = pro_rata(6000, today)
    client = staff(ops, db, "finance")
    quote = client.get(f"/staff/contracts/{contract.public_id}/cancel")
    page = quote.get_data(as_text=True)
    assert quote.status_code == 200 and f'name="amount" value="{expected}"' in page
    assert f"Cancel and refund {yen(expected)}" in page and "Pro rata" in page
    unused = (TERM_END - today).days + 1
    assert f"{unused} unused days of {SPAN}" in page
    res = client.post(f"/staff/contracts/{contract.public_id}/cancel", data={
        "csrf_token": csrf(client, f"/staff/contracts/{contract.public_id}/cancel"),
        "amount": str(expected), "cancel_date": today.isoformat(), "reason": "moving abroad"})
    assert res.status_code == 303, res.get_data(as_text=True)
    done = client.get(res.headers["Location"]).get_data(as_text=True)
    assert f"Cancelled. Refund {yen(expected)} (Refunded)." in done
    listing = stripe.Refund.list(payment_intent=order.stripe_payment_intent_id)
    assert [r.amount for r in listing.data] == [expected]
    db.refresh(contract)
    assert contract.status == "cancelled"
    history = client.get("/staff/customers?email=c@example.com").get_data(as_text=True)
    assert "Refunds (1)" in history and "Cancellations (1)" in history
    assert yen(expected) in history and "moving abroad" in history and "Plan cancelled" in history
    # Cancelled: no second cancellation, and the form is gone.
    again = client.get(f"/staff/contracts/{contract.public_id}/cancel").get_data(as_text=True)
    assert 'id="confirm-cancel"' not in again and 'id="quote-error"' in again


def test_a_quote_that_moved_is_a_readable_message_and_nothing_changes(ops, db, mail_settings):
    order, (contract,) = stripe_paid_order(db, purchase_date=PURCHASE)
    today = store_today(mail_settings.timezone)
    client = staff(ops, db, "finance")
    url = f"/staff/contracts/{contract.public_id}/cancel"
    token = csrf(client, url)
    shown = pro_rata(6000, today)
    assert f'name="amount" value="{shown}"' in client.get(url).get_data(as_text=True)
    # Meanwhile a claim on the plan is paid: ¥100 comes off the refund.
    claim = filing.file_claim(session=db, settings=mail_settings, contract=contract,
                              customer_email="buyer@example.com", incident_date=date(2025, 3, 1),
                              failure_type="breakdown", description="Dead.",
                              estimated_amount=None, files=[], actor="customer:x",
                              today=today)
    db.commit()
    review = f"/staff/claims/{claim.public_id}"
    client.post(f"{review}/approve", data={"csrf_token": csrf(client, review),
                                           "decision": "repair", "amount": "100"})
    client.post(f"{review}/pay", data={"csrf_token": csrf(client, review),
                                       "method": "repair_vendor"})
    assert shown > 100  # the term's last weeks still refund more than the claim paid
    now = shown - 100
    res = client.post(url, data={"csrf_token": token, "amount": str(shown),
                                 "cancel_date": today.isoformat(), "reason": "asked"})
    page = res.get_data(as_text=True)
    assert res.status_code == 409
    assert (f"The refund changed since the quote ({yen(shown)} → {yen(now)}): check the new "
            "amount and confirm again.") in page
    assert f'name="amount" value="{now}"' in page and "asked" in page  # the reason kept
    assert db.exec(select(Refund)).all() == []
    db.refresh(contract)
    assert contract.status == "active"
    ja = client.post(url + "?lang=ja", data={"csrf_token": token, "amount": str(shown),
                                             "cancel_date": today.isoformat(), "reason": "x"})
    assert ja.status_code == 409 and "見積もり後に返金額が変わりました" in ja.get_data(as_text=True)
    ok = client.post(url, data={"csrf_token": token, "amount": str(now),
                                "cancel_date": today.isoformat(), "reason": "asked"})
    assert ok.status_code == 303
    assert [r.amount for r in stripe.Refund.list(
        payment_intent=order.stripe_payment_intent_id).data] == [now]


def test_support_sees_the_quote_but_cannot_confirm(app, db, settings):
    _, (contract,) = paid_order(db, purchase_date=PURCHASE)
    client = staff(app, db, "support")
    page = client.get(f"/staff/contracts/{contract.public_id}/cancel").get_data(as_text=True)
    assert 'id="quote-amount"' in page and 'id="confirm-cancel"' not in page
    assert "Finance and admin accounts confirm cancellations." in page
    res = client.post(f"/staff/contracts/{contract.public_id}/cancel", data={
        "csrf_token": csrf(client, f"/staff/contracts/{contract.public_id}"), "amount": "1",
        "reason": "x"})
    assert res.status_code == 403
    db.refresh(contract)
    assert contract.status == "active"


def test_bad_cancel_dates_are_readable(ops, db, mail_settings):
    _, (contract,) = stripe_paid_order(db, purchase_date=PURCHASE)
    client = staff(ops, db, "finance")
    url = f"/staff/contracts/{contract.public_id}/cancel"
    tomorrow = store_today(mail_settings.timezone) + timedelta(days=1)
    future = client.get(url, query_string={"cancel_date": tomorrow.isoformat()})
    assert future.status_code == 422 and "is in the future" in future.get_data(as_text=True)
    garbage = client.get(url, query_string={"cancel_date": "<b>soon</b>"})
    assert garbage.status_code == 422 and "<b>soon" not in garbage.get_data(as_text=True)
    far = client.get(url, query_string={"cancel_date": "2026-01-10"})
    assert far.status_code == 403 and "only an admin can do" in far.get_data(as_text=True)


def test_transfer_to_a_new_owner(app, db, settings):
    _, (contract,) = paid_order(db, purchase_date=PURCHASE, email="old@example.com")
    client = staff(app, db, "support")
    page = f"/staff/contracts/{contract.public_id}"
    bad = client.post(f"{page}/transfer", data={"csrf_token": csrf(client, page),
                                                 "email": "not an address"})
    assert bad.status_code == 422 and "Enter a valid email address." in bad.get_data(
        as_text=True)
    same = client.post(f"{page}/transfer", data={"csrf_token": csrf(client, page),
                                                  "email": "OLD@example.com"})
    assert same.status_code == 409 and "already belongs to" in same.get_data(as_text=True)
    same_ja = client.post(f"{page}/transfer?lang=ja", data={"csrf_token": csrf(client, page),
                                                             "email": "old@example.com"})
    assert same_ja.status_code == 409
    assert "すでにこのメールアドレスの契約です。" in same_ja.get_data(as_text=True)
    client.get("/staff/contracts?lang=en")
    res = client.post(f"{page}/transfer", data={"csrf_token": csrf(client, page),
                                                "email": "New@Example.com",
                                                "reason": "gift"})
    assert res.status_code == 303
    shown = client.get(res.headers["Location"]).get_data(as_text=True)
    assert "The plan now belongs to new@example.com." in shown
    assert "old@example.com → new@example.com" in shown and "Transferred" in shown
    db.refresh(contract)
    assert contract.customer_email == "new@example.com"
    kinds = {(m.to, m.kind) for m in db.exec(select(MailMessage)).all()}
    assert {("new@example.com", "transfer_in"), ("old@example.com", "transfer_out")} <= kinds


def test_a_product_return_cancels_the_plans_beyond_the_units_kept(ops, db, mail_settings):
    order, (first, second) = stripe_paid_order(db, purchase_date=PURCHASE, quantity=2,
                                               plan_quantity=2)
    client = staff(ops, db, "finance")
    page = f"/staff/contracts/{first.public_id}"
    html = client.get(page).get_data(as_text=True)
    assert "Units returned (2 kept)" in html
    action = f"/staff/orders/{order.public_id}/lines/1/returns"
    zero = client.post(action, data={"csrf_token": csrf(client, page), "quantity": "0",
                                     "contract": first.public_id})
    assert zero.status_code == 422 and "Enter a number of units, 1 or more." in zero.get_data(
        as_text=True)
    too_many = client.post(action, data={"csrf_token": csrf(client, page), "quantity": "3",
                                         "contract": first.public_id})
    assert too_many.status_code == 409 and "cannot return 3" in too_many.get_data(as_text=True)
    res = client.post(action, data={"csrf_token": csrf(client, page), "quantity": "1",
                                    "contract": first.public_id, "reason": "broken box"})
    assert res.status_code == 303 and res.headers["Location"].endswith(
        f"/staff/contracts/{first.public_id}?done=returned")
    db.expire_all()
    statuses = {c.public_id: c.status for c in db.exec(select(Contract)).all()}
    # The latest unit's plan goes first: one active, one cancelled with the whole price.
    assert sorted(statuses.values()) == ["active", "cancelled"]
    (refund,) = db.exec(select(Refund)).all()
    assert (refund.amount, refund.status) == (6000, "succeeded")
    assert [r.amount for r in stripe.Refund.list(
        payment_intent=order.stripe_payment_intent_id).data] == [6000]
    events = db.exec(select(ContractEvent).where(ContractEvent.action == "product_returned"))
    assert [e.reason for e in events] == ["broken box"]
