"""Staff contract pages under concurrency (PostgreSQL): two finance people confirming the same
cancellation, or transferring one plan twice, at the same moment, each in their own browser
session and database connection. One wins; the other reads why, and nothing is done twice."""

from __future__ import annotations

import stripe
from sqlmodel import select

from tests.factories import add_staff, stripe_paid_order
from tests.http.web.pages import PURCHASE
from tests.races import form_token, postgres_only, served, staff_browser, together
from warranty.contracts.models import Contract, ContractEvent
from warranty.orders.models import Refund


def test_two_confirms_of_one_cancellation_make_one_refund(db, mail_settings, database_url):
    postgres_only(database_url)
    order, (contract,) = stripe_paid_order(db, purchase_date=PURCHASE)
    for name in ("fin1", "fin2", "fin3"):
        add_staff(db, email=f"{name}@store.example", role="finance")
    with served(mail_settings) as base:
        url = f"{base}/staff/contracts/{contract.public_id}/cancel"
        browsers = [staff_browser(base, f"{name}@store.example")
                    for name in ("fin1", "fin2", "fin3")]
        forms = []
        for browser in browsers:
            page = browser.get(url, timeout=30).text
            amount = page.split('name="amount" value="', 1)[1].split('"', 1)[0]
            forms.append({"csrf_token": form_token(browser, url), "amount": amount,
                          "reason": "asked three times"})

        def confirm(browser, form):
            return lambda: browser.post(url, data=form, timeout=60, allow_redirects=False)

        answers = together(*(confirm(b, f) for b, f in zip(browsers, forms, strict=True)))
    codes = sorted(a.status_code for a in answers)
    assert codes == [303, 409, 409], [(a.status_code, a.text[:300]) for a in answers]
    for answer in answers:
        if answer.status_code == 409:
            assert 'id="cancel-message"' in answer.text  # a readable page, not a 500
    db.expire_all()
    assert len(db.exec(select(Refund)).all()) == 1
    assert len(db.exec(select(ContractEvent).where(ContractEvent.action == "cancelled")).all()) == 1
    assert len(stripe.Refund.list(payment_intent=order.stripe_payment_intent_id).data) == 1


def test_two_transfers_of_one_plan_at_once(db, mail_settings, database_url):
    postgres_only(database_url)
    _, (contract,) = stripe_paid_order(db, purchase_date=PURCHASE, email="owner@example.com")
    add_staff(db, email="s1@store.example", role="support")
    add_staff(db, email="s2@store.example", role="support")
    with served(mail_settings) as base:
        page = f"{base}/staff/contracts/{contract.public_id}"
        first, second = staff_browser(base, "s1@store.example"), staff_browser(
            base, "s2@store.example")
        tokens = [form_token(first, page), form_token(second, page)]
        answers = together(
            lambda: first.post(page + "/transfer", timeout=60, allow_redirects=False,
                               data={"csrf_token": tokens[0], "email": "a@example.com"}),
            lambda: second.post(page + "/transfer", timeout=60, allow_redirects=False,
                                data={"csrf_token": tokens[1], "email": "b@example.com"}))
    assert [a.status_code for a in answers] == [303, 303]
    db.expire_all()
    owner = db.exec(select(Contract.customer_email).where(Contract.id == contract.id)).one()
    moves = db.exec(select(ContractEvent).where(ContractEvent.action == "transferred")
                    .order_by(ContractEvent.id)).all()
    # Serialised by the contract's row lock: the second move starts from the first's owner.
    assert [m.data["from"] for m in moves] == ["owner@example.com", moves[0].data["to"]]
    assert owner == moves[1].data["to"]
