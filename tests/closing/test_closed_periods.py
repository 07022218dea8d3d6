"""Closed months through HTTP: close in order, then a back-dated cancellation into a closed
month is an adjustment in the first open month, and the closed months' reports and exports
read exactly as before (every figure computed by hand)."""

from __future__ import annotations

import io
import threading
from datetime import date

import pytest
import requests
import stripe
from openpyxl import load_workbook
from sqlmodel import select

from tests.conftest import serve
from tests.factories import stripe_paid_order
from tests.report_history import plan_sale
from warranty.auth.credentials import issue_token
from warranty.contracts.models import ContractEvent
from warranty.core.dates import month_end, utcnow
from warranty.orders.models import Refund
from warranty.periods.models import ClosedMonth

EXPORTS = ["finance", "journal", "contracts", "movements", "orders"]
BACKDATED = "the customer's letter of 2026-01-20 reached us late"


def _paid_intent(amount: int) -> str:
    """A succeeded PaymentIntent on the stand-in."""
    return stripe.PaymentIntent.create(amount=amount, currency="jpy",
                                       payment_method="pm_card_visa", confirm=True).id


def _finance_headers(db) -> dict:
    """A finance bearer token (closes months, reads reports)."""
    token = issue_token(session=db, name="books", role="finance")
    db.commit()
    return {"Authorization": f"Bearer {token}"}


def exports(client, headers, start: str, end: str) -> dict:
    """Every report of the period in every format: JSON and CSV bytes, XLSX cell values."""
    out = {}
    for name in EXPORTS:
        url = f"/api/v1/reports/{name}?from={start}&to={end}"
        for fmt in ("json", "csv"):
            response = client.get(f"{url}&format={fmt}", headers=headers)
            assert response.status_code == 200, (name, fmt, response.data[:300])
            out[(name, fmt)] = response.get_data()
        response = client.get(f"{url}&format=xlsx", headers=headers)
        sheet = load_workbook(io.BytesIO(response.get_data())).active
        out[(name, "xlsx")] = list(sheet.values)
    return out


@pytest.fixture
def api(stripe_app, stripe_standin):
    """A test client of the app that talks to the Stripe stand-in."""
    stripe_standin.reset()
    yield stripe_app.test_client()
    stripe_standin.reset()


def test_backdated_cancellation_into_a_closed_month_is_a_february_adjustment(
        api, db, staff_headers):
    finance = _finance_headers(db)
    # A: ¥3,650 for 12 months from 2026-01-10 (365 days: ¥10 a day), never cancelled.
    plan_sale(db, price=3650, sold_on=date(2026, 1, 10), category="electronics",
              payment_intent_id=_paid_intent(53650), product_price=50000)
    # B: ¥7,300 for 12 months from 2025-11-15 (term to 2026-11-14, 365 days: ¥20 a day).
    (b,) = plan_sale(db, price=7300, sold_on=date(2025, 11, 15), category="phones",
                     payment_intent_id=_paid_intent(57300), product_price=50000)

    # Months close in order: January cannot close while November (which has activity) is open.
    early = api.post("/api/v1/periods/2026-01/close", headers=finance, json={})
    assert early.status_code == 409, early.json
    assert early.json["error"]["code"] == "earlier_month_open"
    assert early.json["error"]["details"] == {"open_month": "2025-11"}
    assert api.post("/api/v1/periods/2025-11/close", headers=finance, json={}).status_code == 201
    dec = api.post("/api/v1/periods/2025-12/close", headers=finance, json={})
    assert dec.status_code == 201, dec.json
    closed = api.post("/api/v1/periods/2026-01/close", headers=finance,
                      json={"note": "January books reviewed"})
    assert closed.status_code == 201, closed.json
    jan = closed.json["figures"]
    # January: sold A ¥3,650; earned A 22 days × 10 = 220 and B 31 × 20 = 620 → 840; deferred
    # at Dec 31: B 7,300 − 47 days × 20 = 6,360; at Jan 31: A 3,430 + B 7,300 − 78 × 20 = 5,740.
    assert (jan["gross_sales"], jan["refunds"], jan["earned_revenue"], jan["deferred_opening"],
            jan["deferred_revenue"]) == (3650, 0, 840, 6360, 9170)
    again = api.post("/api/v1/periods/2026-01/close", headers=finance, json={})
    assert again.status_code == 409 and again.json["error"]["code"] == "already_closed"
    state = api.get("/api/v1/periods", headers=finance).json
    assert (state["closed_through"], state["first_open_day"]) == ("2026-01", "2026-02-01")
    assert [c["month"] for c in state["closed"]] == ["2026-01", "2025-12", "2025-11"]
    assert state["closed"][0]["note"] == "January books reviewed"

    before = exports(api, finance, "2026-01-01", "2026-01-31")
    before_all = exports(api, finance, "2025-11-01", "2026-01-31")

    # B is cancelled with a date in closed January: refused unless booked as an adjustment.
    url = f"/api/v1/contracts/{b.public_id}"
    body = {"amount": 5980, "cancel_date": "2026-01-20", "reason": "customer asked",
            "backdate_reason": BACKDATED}
    refused = api.post(f"{url}/cancel", headers=staff_headers, json=body)
    assert refused.status_code == 409, refused.json
    assert refused.json["error"]["code"] == "period_closed"
    assert refused.json["error"]["details"] == {"closed_month": "2026-01",
                                                "first_open_day": "2026-02-01"}
    assert "2026-01" in refused.json["error"]["message"]
    quote = api.get(f"{url}/cancellation-quote?cancel_date=2026-01-20&book_as_adjustment=true",
                    headers=staff_headers).json
    # Past the free look: unused 2026-01-20..2026-11-14 = 299 of 365 days → 7300 × 299 / 365.
    assert (quote["rule"], quote["unused_days"], quote["amount"]) == ("pro_rata", 299, 5980)
    assert (quote["booked_on"], quote["adjustment"]) == ("2026-02-01", True)
    done = api.post(f"{url}/cancel", headers=staff_headers,
                    json={**body, "book_as_adjustment": True})
    assert done.status_code == 200, done.json
    assert (done.json["refund"]["cancel_date"], done.json["refund"]["booked_on"],
            done.json["refund"]["status"]) == ("2026-01-20", "2026-02-01", "succeeded")
    event = db.exec(select(ContractEvent).where(ContractEvent.action == "cancelled")).one()
    assert event.data["dating"]["adjustment"] is True
    assert event.data["dating"]["backdate_reason"] == BACKDATED

    # The closed months read exactly as before, in every report and format.
    assert exports(api, finance, "2026-01-01", "2026-01-31") == before
    assert exports(api, finance, "2025-11-01", "2026-01-31") == before_all
    report = api.get("/api/v1/reports/finance?from=2026-01-01&to=2026-01-31",
                     headers=finance).json
    assert {k: report["by_month"][0][k] for k in jan} == jan

    # February carries the adjustment, naming the January date.
    feb = api.get("/api/v1/reports/finance?from=2026-02-01&to=2026-02-28",
                  headers=finance).json
    month = feb["by_month"][0]
    # Refund ¥5,980 (B). Earned: A 28 × 10 = 280; B on 2026-02-01 has earned 7,300 − 5,980 =
    # 1,320 in all, of which the books had 1,560 by Jan 31 → −240 (Jan 20..31 reversed).
    assert (month["refunds"], month["cancellations"], month["earned_revenue"]) == (5980, 1, 40)
    # Deferred: 9,170 + 0 − 5,980 − 40 = 3,150 = A 3,650 − 50 × 10; B nothing.
    assert (month["deferred_opening"], month["deferred_revenue"]) == (9170, 3150)
    assert (month["deferred_opening"] + month["gross_sales"] - month["refunds"]
            - month["earned_revenue"]) == month["deferred_revenue"]
    assert feb["adjustments"] == [
        {"booked_on": "2026-02-01", "effective_date": "2026-01-20", "type": "refund",
         "contract": b.public_id, "category": "phones", "amount": 5980,
         "tax": 0, "earned_revenue": -240, "earned_tax": 0}]
    moves = api.get("/api/v1/reports/movements?from=2026-02-01&to=2026-02-28",
                    headers=finance).json["rows"]
    assert [(m["date"], m["type"], m["amount"], m["effective_date"], m["adjustment"])
            for m in moves] == [("2026-02-01", "refund", -5980, "2026-01-20", True)]
    journal = api.get("/api/v1/reports/journal?from=2026-02-01&to=2026-02-28",
                      headers=finance).json["rows"]
    adjusting = [r for r in journal if r["effective_date"] == "2026-01-20"]
    assert [(r["date"], r["account"], r["debit"], r["credit"]) for r in adjusting] == [
        ("2026-02-01", "deferred_revenue", 5980, None), ("2026-02-01", "cash", None, 5980),
        ("2026-02-01", "earned_revenue", 240, None),
        ("2026-02-01", "deferred_revenue", None, 240)]
    assert all("2026-01-20" in r["memo"] for r in adjusting)
    assert sum(r["debit"] or 0 for r in journal) == sum(r["credit"] or 0 for r in journal)
    contracts = api.get("/api/v1/reports/contracts?from=2025-11-01&to=2026-02-28",
                        headers=finance).json["rows"]
    row = next(r for r in contracts if r["contract"] == b.public_id)
    assert (row["status"], row["cancel_date"], row["refund_booked_on"], row["refund"],
            row["earned_to_date"], row["deferred_at_end"]) == (
        "cancelled", "2026-01-20", "2026-02-01", 5980, 1320, 0)
    # Over the whole history the identity holds on the reported figures.
    total = api.get("/api/v1/reports/finance?from=2025-11-01&to=2026-02-28",
                    headers=finance).json["total"]
    assert (total["gross_sales"] - total["refunds"]
            == total["earned_revenue"] + total["deferred_revenue"] == 3650 + 7300 - 5980)


def test_reports_of_a_closed_month_ignore_late_payments_refund_outcomes_and_payouts(
        api, db, staff_headers):
    """Facts recorded after the close that are not cancellations: a payment for a closed
    month (a Stripe event processed late), a refund that completes at Stripe later, a payout."""
    finance = _finance_headers(db)
    order, (a,) = stripe_paid_order(db, purchase_date=date(2026, 1, 10))
    # A cancellation in January whose refund is still pending at Stripe when January closes.
    (c,) = plan_sale(db, price=3650, sold_on=date(2026, 1, 5), cancel=(date(2026, 1, 25), 3650),
                     refund_status="pending", payment_intent_id=_paid_intent(53650),
                     product_price=50000)
    assert api.post("/api/v1/periods/2026-01/close", headers=finance, json={}).status_code == 201
    before = exports(api, finance, "2026-01-01", "2026-01-31")
    # A plan paid on 2026-01-31 whose payment is recorded now: booked on 2026-02-01.
    (late,) = plan_sale(db, price=7300, sold_on=date(2026, 1, 31), product_price=50000,
                        payment_intent_id=_paid_intent(57300))
    assert late.booked_on == date(2026, 2, 1)
    # C's refund succeeds at Stripe now.
    refund = db.exec(select(Refund).where(Refund.contract_id == c.id)).one()
    refund.status, refund.completed_at, refund.stripe_refund_id = "succeeded", utcnow(), "re_x"
    db.commit()
    assert exports(api, finance, "2026-01-01", "2026-01-31") == before
    feb = api.get("/api/v1/reports/finance?from=2026-02-01&to=2026-02-28",
                  headers=finance).json
    # The late sale: ¥7,300 booked 2026-02-01 with 2026-01-31's accrual (1 day × ¥20) moved
    # onto it.
    assert feb["adjustments"] == [
        {"booked_on": "2026-02-01", "effective_date": "2026-01-31", "type": "sale",
         "contract": late.public_id, "category": "electronics", "amount": 7300,
         "tax": 0, "earned_revenue": 20, "earned_tax": 0}]
    assert feb["by_month"][0]["gross_sales"] == 7300
    orders = api.get("/api/v1/reports/orders?from=2026-02-01&to=2026-02-28",
                     headers=finance).json["rows"]
    assert [(o["purchase_date"], o["booked_on"]) for o in orders] == [
        ("2026-01-31", "2026-02-01")]
    assert order.id is not None and a.id is not None


def test_closing_needs_a_finance_or_admin_token_and_an_ended_month(client, db, staff_headers):
    plan_sale(db, price=3650, sold_on=date(2026, 1, 10))
    support = issue_token(session=db, name="desk", role="staff")
    db.commit()
    url = "/api/v1/periods/2026-01/close"
    assert client.post(url, json={}).status_code == 401
    assert client.post(url, headers={"Authorization": f"Bearer {support}"},
                       json={}).status_code == 403
    assert client.get("/api/v1/periods",
                      headers={"Authorization": f"Bearer {support}"}).status_code == 403
    future = client.post("/api/v1/periods/2999-01/close", headers=staff_headers, json={})
    assert future.status_code == 409 and future.json["error"]["code"] == "month_not_over"
    bad = client.post("/api/v1/periods/2026-13/close", headers=staff_headers, json={})
    assert bad.status_code == 422 and bad.json["error"]["code"] == "invalid_month"
    state = client.get("/api/v1/periods", headers=staff_headers).json
    assert (state["closed_through"], state["next_to_close"]) == (None, "2026-01")
    assert client.post(url, headers=staff_headers, json={}).status_code == 201
    # Nothing else is active before February closes: February is next (once it has ended).
    assert client.get("/api/v1/periods", headers=staff_headers).json["next_to_close"] == \
        "2026-02"
    assert db.exec(select(ClosedMonth)).one().closed_by == "admin-token"


def _race(base: str, finance: dict, admin: dict, month: date, contract, cancel_day: date):
    """Close ``month`` and cancel ``contract`` on ``cancel_day`` at once, each over its own
    HTTP connection, released together; the two responses."""
    start, results = threading.Barrier(2), {}

    def close():
        with requests.Session() as http:
            start.wait()
            results["close"] = http.post(f"{base}/api/v1/periods/{month:%Y-%m}/close",
                                         headers=finance, json={}, timeout=60)

    def cancel():
        with requests.Session() as http:
            start.wait()
            results["cancel"] = http.post(
                f"{base}/api/v1/contracts/{contract.public_id}/cancel", headers=admin,
                timeout=60, json={"amount": contract.price, "cancel_date": cancel_day.isoformat(),
                                  "reason": "race", "backdate_reason": "race test",
                                  "book_as_adjustment": True})

    threads = [threading.Thread(target=close), threading.Thread(target=cancel)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


@pytest.mark.parametrize("rounds", [4])
def test_a_close_racing_a_backdated_cancellation_never_half_lands(
        stripe_app, stripe_standin, db, settings, staff_headers, rounds):
    """PostgreSQL: close month M and confirm a cancellation dated in M at the same moment,
    each over its own HTTP connection. Either the cancellation commits first (booked in M,
    part of the figures kept with the close) or after (booked on the first open day as an
    adjustment); M's report always equals the figures kept at its close."""
    if not settings.database_url.startswith("postgresql"):
        pytest.skip("SQLite serialises every writer; the race needs PostgreSQL")
    stripe_standin.reset()
    finance = _finance_headers(db)
    outcomes, carried = [], (0, 0)  # the previous round's adjustment lands in this month
    with serve(stripe_app) as base:
        for i in range(rounds):
            month = date(2026, 1 + i, 1)
            _, (contract,) = stripe_paid_order(db, purchase_date=month.replace(day=5),
                                               email=f"race{i}@example.com")
            cancel_day = month.replace(day=20)  # in the 30-day free look: a full refund
            results = _race(base, finance, staff_headers, month, contract, cancel_day)
            assert results["close"].status_code == 201, results["close"].text
            assert results["cancel"].status_code == 200, results["cancel"].text
            booked = date.fromisoformat(results["cancel"].json()["refund"]["booked_on"])
            figures = results["close"].json()["figures"]
            last = month_end(month)
            report = requests.get(f"{base}/api/v1/reports/finance?from={month}&to={last}",
                                  headers=finance, timeout=60).json()["by_month"][0]
            assert {k: report[k] for k in figures} == figures, (booked, figures, report)
            if booked == cancel_day:
                outcomes.append("before")
                assert (figures["refunds"], figures["cancellations"]) == (
                    carried[0] + contract.price, carried[1] + 1)
                carried = (0, 0)
            else:
                outcomes.append("after")
                assert booked == date(2026, 2 + i, 1)
                assert (figures["refunds"], figures["cancellations"]) == carried
                carried = (contract.price, 1)
                nxt = requests.get(f"{base}/api/v1/reports/finance?from={booked}&to={booked}",
                                   headers=finance, timeout=60).json()
                assert [(a["type"], a["effective_date"]) for a in nxt["adjustments"]] == [
                    ("refund", cancel_day.isoformat())]
    assert len(outcomes) == rounds, outcomes
    stripe_standin.reset()


def test_a_closed_months_exports_keep_each_status_as_it_stood_at_its_end(
        stripe_live, stripe_app, stripe_standin, db):
    """After January closes, Stripe fails a refund it reported succeeded in January, and a
    January order is refunded in full in Stripe's dashboard (its plan cancelled, booked in the
    open month). January's exports show the refund succeeded and the order paid, as they did
    at the close: those changes belong to the months they happen in."""
    from tests.stripe_helpers import wait_for
    from warranty.orders.models import Order
    from warranty.payments import refunds

    api = stripe_app.test_client()
    finance = _finance_headers(db)
    intent = stripe.PaymentIntent.create(amount=53650, currency="jpy",
                                         payment_method="pm_card_refundFail", confirm=True)
    (x,) = plan_sale(db, price=3650, sold_on=date(2026, 1, 5), cancel=(date(2026, 1, 25), 3650),
                     payment_intent_id=intent.id, product_price=50000)
    refund = db.exec(select(Refund).where(Refund.contract_id == x.id)).one()
    made = stripe.Refund.create(payment_intent=intent.id, amount=3650,
                                metadata={refunds.METADATA_KEY: refund.idempotency_key})
    refund.stripe_refund_id, refund.stripe_status = made.id, made.status
    db.commit()
    order, _ = stripe_paid_order(db, purchase_date=date(2026, 1, 10))
    assert api.post("/api/v1/periods/2026-01/close", headers=finance, json={}).status_code == 201
    before = exports(api, finance, "2026-01-01", "2026-01-31")
    contracts_rows = {r["contract"]: r for r in api.get(
        "/api/v1/reports/contracts?from=2026-01-01&to=2026-01-31", headers=finance).json["rows"]}
    assert contracts_rows[x.public_id]["refund_status"] == "succeeded"

    stripe_standin.settle_refund(made.id, "failed")
    stripe.Refund.create(payment_intent=order.stripe_payment_intent_id)  # the dashboard
    def settled():
        db.rollback()  # a fresh snapshot each time
        return (db.get(Refund, refund.id, populate_existing=True).status == "failed"
                and db.get(Order, order.id, populate_existing=True).status == "refunded")

    wait_for(settled, timeout=20)
    db.commit()
    after = exports(api, finance, "2026-01-01", "2026-01-31")
    for key in before:
        assert after[key] == before[key], key
