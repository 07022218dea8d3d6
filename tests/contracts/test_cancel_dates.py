"""How far back a cancellation may be dated, per role, through HTTP: the store's window
(WARRANTY_CANCEL_BACKDATE_DAYS, default 30), further only for admins with a reason, and
never into a closed month unless booked as an adjustment."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from tests.factories import stripe_paid_order
from warranty.auth.credentials import issue_token
from warranty.contracts.models import Contract, ContractEvent
from warranty.core.dates import store_today
from warranty.http.app import create_app
from warranty.orders.models import Refund


@pytest.fixture
def tokens(db):
    """Bearer headers per role (admin: an issued admin token, not the master one)."""
    headers = {}
    for role in ("support", "finance", "admin"):
        token = issue_token(session=db, name=f"{role}-desk", role=role)
        headers[role] = {"Authorization": f"Bearer {token}"}
    db.commit()
    return headers


def _app(stripe_settings, **changes):
    """A test client of an app on the Stripe stand-in, with settings changed."""
    return create_app(stripe_settings.model_copy(update=changes)).test_client()


def _paid(db, days_ago: int):
    """A plan bought ``days_ago`` days ago, paid on the stand-in."""
    today = store_today("Asia/Tokyo")
    _, (contract,) = stripe_paid_order(db, purchase_date=today - timedelta(days=days_ago))
    return contract


def _cancel(client, headers, contract, days_back: int, **extra):
    """Quote, then confirm a cancellation dated ``days_back`` days ago: both responses."""
    day = (store_today("Asia/Tokyo") - timedelta(days=days_back)).isoformat()
    url = f"/api/v1/contracts/{contract.public_id}"
    flag = "&book_as_adjustment=true" if extra.get("book_as_adjustment") else ""
    quote = client.get(f"{url}/cancellation-quote?cancel_date={day}{flag}", headers=headers)
    amount = quote.json.get("amount", 0) if quote.status_code == 200 else 0
    done = client.post(f"{url}/cancel", headers=headers,
                       json={"amount": amount, "cancel_date": day, "reason": "asked", **extra})
    return quote, done


def _still_active(db, contract) -> bool:
    """Nothing was written for a refused cancellation."""
    db.expire_all()
    active = db.get(Contract, contract.id).status == "active"
    refunds = db.exec(select(Refund).where(Refund.contract_id == contract.id)).all()
    db.commit()
    return active and not refunds


def test_finance_may_go_back_within_the_window_and_not_a_day_further(
        stripe_settings, stripe_standin, db, tokens):
    client = _app(stripe_settings)
    inside = _paid(db, 100)
    quote, done = _cancel(client, tokens["finance"], inside, 30)
    assert quote.status_code == 200 and done.status_code == 200, (quote.json, done.json)
    event = db.exec(select(ContractEvent).where(ContractEvent.action == "cancelled")).one()
    assert event.data["dating"] == {"days_back": 30, "window_days": 30,
                                    "booked_on": done.json["refund"]["cancel_date"]}
    outside = _paid(db, 100)
    quote, done = _cancel(client, tokens["finance"], outside, 31)
    for response in (quote, done):
        assert response.status_code == 403, response.json
        error = response.json["error"]
        assert error["code"] == "backdate_not_allowed"
        assert error["details"] == {"window_days": 30, "days_back": 31}
        assert "30 days" in error["message"] and "admin" in error["message"]
    assert _still_active(db, outside)


def test_admins_go_further_only_with_a_reason_which_is_audited(
        stripe_settings, stripe_standin, db, tokens):
    client = _app(stripe_settings)
    contract = _paid(db, 200)
    quote, done = _cancel(client, tokens["admin"], contract, 90)
    assert quote.status_code == 200, quote.json  # quoting needs no reason yet
    assert done.status_code == 422 and done.json["error"]["code"] == "backdate_reason_required"
    _, blank = _cancel(client, tokens["admin"], contract, 90, backdate_reason="   ")
    assert blank.status_code == 422 and blank.json["error"]["code"] == "backdate_reason_required"
    assert _still_active(db, contract)
    _, done = _cancel(client, tokens["admin"], contract, 90,
                      backdate_reason="customer's letter dated then, ticket 4411")
    assert done.status_code == 200, done.json
    assert done.json["refund"]["amount"] == quote.json["amount"]
    detail = client.get(f"/api/v1/contracts/{contract.public_id}", headers=tokens["admin"]).json
    (cancelled,) = [h for h in detail["history"] if h["action"] == "cancelled"]
    assert cancelled["actor"] == "token:admin-desk"
    assert cancelled["data"]["dating"]["backdate_reason"] == (
        "customer's letter dated then, ticket 4411")
    assert cancelled["data"]["dating"]["days_back"] == 90


def test_the_window_is_the_stores_setting(stripe_settings, stripe_standin, db, tokens):
    client = _app(stripe_settings, cancel_backdate_days=5)
    contract = _paid(db, 60)
    quote, done = _cancel(client, tokens["finance"], contract, 6)
    assert (quote.status_code, done.status_code) == (403, 403)
    assert done.json["error"]["details"]["window_days"] == 5
    _, done = _cancel(client, tokens["finance"], contract, 5)
    assert done.status_code == 200, done.json


def test_never_into_a_closed_month_unless_booked_as_an_adjustment(
        stripe_settings, stripe_standin, db, tokens):
    # A window wide enough that the last day of last month is always inside it.
    client = _app(stripe_settings, cancel_backdate_days=45)
    today = store_today("Asia/Tokyo")
    first_open = today.replace(day=1)
    last_month_end = first_open - timedelta(days=1)
    _, (contract,) = stripe_paid_order(db, purchase_date=last_month_end.replace(day=1))
    closed = client.post(f"/api/v1/periods/{last_month_end:%Y-%m}/close",
                         headers=tokens["finance"], json={})
    assert closed.status_code == 201, closed.json
    days_back = (today - last_month_end).days
    for role in ("finance", "admin"):
        quote, done = _cancel(client, tokens[role], contract, days_back,
                              backdate_reason="as asked")
        for response in (quote, done):
            assert response.status_code == 409, response.json
            error = response.json["error"]
            assert error["code"] == "period_closed"
            assert error["details"] == {"closed_month": f"{last_month_end:%Y-%m}",
                                        "first_open_day": first_open.isoformat()}
    assert _still_active(db, contract)
    # The first open day itself is fine.
    _, again = _cancel(client, tokens["finance"], _paid(db, 10), (today - first_open).days)
    assert again.status_code == 200, again.json
    quote, done = _cancel(client, tokens["finance"], contract, days_back,
                          book_as_adjustment=True)
    assert quote.json["adjustment"] is True and quote.json["booked_on"] == first_open.isoformat()
    assert done.status_code == 200, done.json
    assert (done.json["refund"]["cancel_date"], done.json["refund"]["booked_on"]) == (
        last_month_end.isoformat(), first_open.isoformat())


def test_a_cancellation_dated_inside_the_term_does_not_depend_on_the_expiry_job(
        stripe_settings, stripe_standin, db, tokens):
    """The customer asked to cancel ten days ago, inside the term, which has ended since;
    staff record it now. Whether the expiry job ran in between is no fact about the plan:
    both plans refund the same for the same date, and end cancelled."""
    from warranty.contracts import lifecycle as contracts
    from warranty.core.dates import add_months

    client = _app(stripe_settings)
    today = store_today("Asia/Tokyo")
    bought = add_months(today, -36) - timedelta(days=3)  # a 36-month term ended 4 days ago
    expired = _paid_on(db, bought)
    active = _paid_on(db, bought)
    assert expired.term_end < today and expired.term_end >= today - timedelta(days=10)
    assert [c.id for c in contracts.expire_ended(session=db, today=today, limit=1)] == [
        expired.id]
    db.commit()
    answers = [_cancel(client, tokens["finance"], c, 10) for c in (expired, active)]
    for quote, done in answers:
        assert quote.status_code == 200, quote.json
        assert done.status_code == 200, done.json
        assert done.json["contract"]["status"] == "cancelled"
    (q1, d1), (q2, d2) = answers
    assert q1.json["rule"] == "pro_rata" and q1.json["unused_days"] > 0
    assert d1.json["refund"]["amount"] == d2.json["refund"]["amount"] == q2.json["amount"] > 0
    history = db.exec(select(ContractEvent.action).where(
        ContractEvent.contract_id == expired.id).order_by(ContractEvent.id)).all()
    assert history[1:3] == ["expired", "cancelled"]


def test_an_expired_plan_is_not_cancelled_after_its_term(stripe_settings, stripe_standin, db,
                                                         tokens):
    from warranty.contracts import lifecycle as contracts
    from warranty.core.dates import add_months

    client = _app(stripe_settings)
    today = store_today("Asia/Tokyo")
    contract = _paid_on(db, add_months(today, -36) - timedelta(days=3))
    contracts.expire_ended(session=db, today=today, limit=1)
    db.commit()
    quote, done = _cancel(client, tokens["finance"], contract, 0)
    assert (quote.status_code, quote.json["error"]["code"]) == (409, "term_ended")
    assert (done.status_code, done.json["error"]["code"]) == (409, "term_ended")


def _paid_on(db, purchase_date):
    """A plan bought on ``purchase_date``, paid on the stand-in."""
    _, (contract,) = stripe_paid_order(db, purchase_date=purchase_date)
    return contract
