"""Claims judged as of the incident date, through HTTP: the filing window after the term.

A plan for a TV bought 2023-06-01 has a 36-month term 2023-06-01..2026-05-31 and breakdown
cover from 2024-06-01 (12 months of manufacturer's warranty). These tests run against the
real today T (the service has no other clock), so the filing window is set from T: with a
window of (T − 2026-05-31) days the deadline is T itself, the window's last day; one day
less and T is the first day too late. The default window of 90 days is tested with fixed
dates through the domain in tests/claims/test_claim_rules.py.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlmodel import select

from tests.factories import add_staff, paid_order, stripe_paid_order
from tests.http.api.test_claims_api import customer_token
from tests.http.web.pages import csrf, multipart, sign_in_customer, sign_in_staff
from warranty.auth import credentials
from warranty.claims import filing
from warranty.claims.models import Claim, Payout
from warranty.contracts import lifecycle as contracts
from warranty.contracts.models import Contract, ContractEvent
from warranty.core import i18n
from warranty.core.dates import store_today
from warranty.http.app import create_app

BOUGHT = date(2023, 6, 1)
TERM_END = date(2026, 5, 31)
IN_TERM = "2026-05-20"  # breakdown, inside the term and after the manufacturer's warranty


def _today(settings) -> date:
    return store_today(settings.timezone)


def _window_ending_today(settings) -> int:
    """The filing window whose last day is today."""
    return (_today(settings) - TERM_END).days


def _app(settings, window: int):
    """An app whose filing window is ``window`` days after the term."""
    return create_app(settings.model_copy(update={"claim_filing_days_after_term": window}))


def _expired_plan(db, settings, **kwargs) -> Contract:
    """The 2023-06-01 plan, expired by the expiry job (what warranty worker runs)."""
    _, (contract,) = paid_order(db, purchase_date=BOUGHT, **kwargs)
    assert contract.term_end == TERM_END
    expired = contracts.expire_ended(session=db, today=_today(settings), limit=10)
    db.commit()
    assert [c.id for c in expired] == [contract.id] and contract.status == "expired"
    return contract


def _customer(settings, email="buyer@example.com"):
    """Headers of a store's form acting for a customer (a token as an admin would mint it)."""
    return {"X-Warranty-Key": settings.public_key,
            "X-Customer-Token": customer_token(settings, email)}


def _tokens(db):
    """Bearer headers of a support (staff) and a finance caller."""
    staff = credentials.issue_token(session=db, name="s", role="staff")
    finance = credentials.issue_token(session=db, name="f", role="finance")
    db.commit()
    return ({"Authorization": f"Bearer {staff}"}, {"Authorization": f"Bearer {finance}"})


def _claim(contract, incident=IN_TERM, lang="en", **extra):
    return {"contract_id": contract.public_id, "incident_date": incident,
            "failure_type": "breakdown", "description": "No picture.", "lang": lang, **extra}


def test_an_expired_plan_pays_a_claim_filed_on_the_windows_last_day(db, settings):
    contract = _expired_plan(db, settings)
    client = _app(settings, _window_ending_today(settings)).test_client()
    staff, finance = _tokens(db)
    (plan,) = client.get("/api/v1/customer/plans", headers=_customer(settings)).json["plans"]
    assert (plan["status"], plan["takes_claims"]) == ("expired", True)
    assert plan["claims_until"] == _today(settings).isoformat()
    filed = client.post("/api/v1/claims", json=_claim(contract), headers=_customer(settings))
    assert filed.status_code == 201, filed.json
    assert (filed.json["status"], filed.json["deny_code"]) == ("in_review", None)
    claim_id = filed.json["id"]
    approved = client.post(f"/api/v1/claims/{claim_id}/approve", headers=staff,
                           json={"decision": "repair", "amount": 30000})
    assert approved.status_code == 200, approved.json
    paid = client.post(f"/api/v1/claims/{claim_id}/payout", headers=finance,
                       json={"method": "repair_vendor", "reference": "RO-1"})
    assert paid.status_code == 200, paid.json
    assert (paid.json["status"], paid.json["payout"]["amount"]) == ("paid", 30000)
    db.expire_all()
    assert db.get(Contract, contract.id).status == "expired"  # stays expired
    # The expiry job runs again: nothing to do; an expired plan is never active again.
    assert contracts.expire_ended(session=db, today=_today(settings), limit=10) == []
    db.commit()
    transfer = client.post(f"/api/v1/contracts/{contract.public_id}/transfer",
                           headers={"Authorization": f"Bearer {settings.api_token}"},
                           json={"email": "new@example.com", "reason": "gift"})
    assert transfer.status_code == 409 and transfer.json["error"]["code"] == "transition_refused"
    assert db.get(Contract, contract.id).status == "expired"


def test_a_claim_in_review_when_the_plan_expires_is_still_approved_and_paid(db, settings):
    _, (contract,) = paid_order(db, purchase_date=BOUGHT)
    # Filed five days before the term ended; still in review when the expiry job runs.
    claim = filing.file_claim(session=db, settings=settings, contract=contract,
                              customer_email=contract.customer_email,
                              incident_date=date(2026, 5, 20), failure_type="breakdown",
                              description="No picture.", estimated_amount=None, files=[],
                              actor="customer:test", today=date(2026, 5, 26), lang="en")
    db.commit()
    assert claim.status == "in_review"
    contracts.expire_ended(session=db, today=_today(settings), limit=10)
    db.commit()
    # Whatever the window, approval and payout don't depend on it: the claim was in time.
    client = _app(settings, 90).test_client()
    staff, finance = _tokens(db)
    approved = client.post(f"/api/v1/claims/{claim.public_id}/approve", headers=staff,
                           json={"decision": "reimburse", "amount": 12000})
    assert approved.status_code == 200, approved.json
    paid = client.post(f"/api/v1/claims/{claim.public_id}/payout", headers=finance,
                       json={"method": "bank_transfer"})
    assert paid.status_code == 200 and paid.json["payout"]["amount"] == 12000
    db.expire_all()
    assert db.get(Contract, contract.id).status == "expired"


def test_an_incident_after_the_term_is_denied(db, settings):
    contract = _expired_plan(db, settings)
    client = _app(settings, _window_ending_today(settings)).test_client()
    after = client.post("/api/v1/claims", json=_claim(contract, incident="2026-06-01"),
                        headers=_customer(settings))
    assert (after.json["status"], after.json["deny_code"]) == ("denied", "outside_term")
    assert after.json["deny_reason"] == "The incident is outside the plan's term."


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_a_claim_filed_after_the_window_is_denied_with_its_own_reason(db, settings, lang):
    contract = _expired_plan(db, settings)
    client = _app(settings, _window_ending_today(settings) - 1).test_client()
    (plan,) = client.get("/api/v1/customer/plans", headers=_customer(settings)).json["plans"]
    assert plan["takes_claims"] is False
    assert plan["claims_until"] == (_today(settings) - timedelta(days=1)).isoformat()
    late = client.post("/api/v1/claims", json=_claim(contract, lang=lang),
                       headers=_customer(settings))
    assert late.status_code == 201
    assert (late.json["status"], late.json["deny_code"]) == ("denied", "filed_too_late")
    assert late.json["deny_reason"] == i18n.t(lang, "deny.filed_too_late")
    assert late.json["deny_reason"] == {
        "en": "The claim was filed too late. Incidents inside the term can be claimed for a "
              "set time after the term ends, and this claim came after that time.",
        "ja": "申請期限を過ぎています。保証期間内の故障・事故は、保証期間の終了後も所定の期間内"
              "であれば申請できますが、その期限を過ぎてからの申請です。"}[lang]
    staff_view = client.get(f"/api/v1/claims/{late.json['id']}",
                            headers={"Authorization": f"Bearer {settings.api_token}"}).json
    rules_event = staff_view["timeline"][-1]
    deadline = (_today(settings) - timedelta(days=1)).isoformat()
    assert rules_event["by"] == "rules" and f"filed until {deadline}" in rules_event["reason"]


def test_customer_pages_let_an_expired_plan_claim_within_the_window(db, settings):
    contract = _expired_plan(db, settings)
    today = _today(settings)
    client = _app(settings, _window_ending_today(settings)).test_client()
    sign_in_customer(client, settings)
    path = f"/my/plans/{contract.public_id}/claims/new"
    for lang, text in (("en", f"Incidents up to 2026-05-31 can be claimed until {today}."),
                       ("ja", f"保証期間内(2026-05-31まで)に起きた故障・事故は{today}まで"
                              "申請できます。")):
        plans = client.get(f"/my/plans?lang={lang}").get_data(as_text=True)
        assert text in plans and f'href="{path}"' in plans
        assert text in client.get(path).get_data(as_text=True)
    response = client.post(path, **multipart({
        "csrf_token": csrf(client, path), "incident_date": IN_TERM, "failure_type": "breakdown",
        "description": "画面が映らなくなりました。", "estimated_amount": ""}))
    assert response.status_code == 303
    db.commit()
    claim = db.exec(select(Claim)).one()
    assert (claim.status, claim.deny_code) == ("in_review", None)
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "審査中" in page


def test_customer_pages_refuse_a_new_claim_after_the_window(db, settings):
    contract = _expired_plan(db, settings)
    client = _app(settings, _window_ending_today(settings) - 1).test_client()
    sign_in_customer(client, settings)
    path = f"/my/plans/{contract.public_id}/claims/new"
    plans = client.get("/my/plans?lang=en").get_data(as_text=True)
    assert contract.product_title in plans and f'href="{path}"' not in plans
    form = client.get(path).get_data(as_text=True)
    assert "This plan takes no new claims." in form and 'name="incident_date"' not in form
    assert "このご契約では新たな申請はお受けできません。" in client.get(
        f"{path}?lang=ja").get_data(as_text=True)


def test_staff_pages_approve_and_pay_a_claim_on_an_expired_plan(db, settings):
    contract = _expired_plan(db, settings, plan_code="accident-36")
    claim = filing.file_claim(session=db, settings=settings, contract=contract,
                              customer_email=contract.customer_email,
                              incident_date=date(2026, 5, 30), failure_type="accident",
                              description="Dropped.", estimated_amount=None, files=[],
                              actor="customer:test", today=_today(settings), lang="en")
    db.commit()
    assert claim.status == "in_review"  # filed within the tests' long window (conftest)
    app = _app(settings, 90)
    add_staff(db)
    add_staff(db, email="fin@store.example", role="finance")
    support, finance = app.test_client(), app.test_client()
    sign_in_staff(support)
    sign_in_staff(finance, "fin@store.example")
    page = f"/staff/claims/{claim.public_id}"
    review = support.get(page).get_data(as_text=True)
    # The plan's status as a label ("Expired"); claims filed until 31 May + 90.
    assert "(Expired)" in review and "2026-08-29" in review
    approved = support.post(f"{page}/approve", data={
        "csrf_token": csrf(support, page), "decision": "repair", "amount": "25,000"})
    assert approved.status_code == 303, approved.get_data(as_text=True)
    paid = finance.post(f"{page}/pay", data={"csrf_token": csrf(finance, page),
                                             "method": "repair_vendor", "reference": "RO-9"})
    assert paid.status_code == 303, paid.get_data(as_text=True)
    db.expire_all()
    assert db.get(Claim, claim.id).status == "paid"
    assert db.exec(select(Payout.amount)).one() == 25000
    assert db.get(Contract, contract.id).status == "expired"


@pytest.fixture
def ops(mail_settings):
    """A client of the app talking to the Stripe stand-in (cancellations refund)."""
    return create_app(mail_settings).test_client()


def test_a_cancelled_plan_takes_no_new_claims(ops, db, mail_settings, staff_headers):
    # An accident plan bought 2026-01-10 (¥9,960), cancelled back-dated to 2026-06-01.
    _, (contract,) = stripe_paid_order(db, purchase_date=date(2026, 1, 10),
                                       plan_code="accident-36")
    quote = ops.get(f"/api/v1/contracts/{contract.public_id}/cancellation-quote"
                    "?cancel_date=2026-06-01", headers=staff_headers).json
    done = ops.post(f"/api/v1/contracts/{contract.public_id}/cancel", headers=staff_headers,
                    json={"amount": quote["amount"], "cancel_date": "2026-06-01",
                          "reason": "asked", "backdate_reason": "a test dated on a fixed day"})
    assert done.status_code == 200, done.json
    headers = _customer(mail_settings)
    (plan,) = ops.get("/api/v1/customer/plans", headers=headers).json["plans"]
    assert (plan["status"], plan["takes_claims"]) == ("cancelled", False)
    body = {"contract_id": contract.public_id, "failure_type": "accident", "lang": "en",
            "description": "Dropped."}
    # Before the cancellation date: the refund settled the plan, no new claims.
    before = ops.post("/api/v1/claims", headers=headers,
                      json={**body, "incident_date": "2026-05-31"}).json
    assert (before["status"], before["deny_code"]) == ("denied", "plan_cancelled")
    assert before["deny_reason"] == ("The plan has been cancelled. A cancelled plan takes no "
                                     "new claims.")
    # On or after it: the plan was not active on the incident date.
    after = ops.post("/api/v1/claims", headers=headers,
                     json={**body, "incident_date": "2026-06-01", "lang": "ja"}).json
    assert (after["status"], after["deny_code"]) == ("denied", "not_active")
    assert after["deny_reason"] == "発生日にご契約が有効ではありません。"


def test_a_fulfilled_plan_takes_no_new_claims(client, db, settings, staff_headers):
    _, (contract,) = paid_order(db, purchase_date=BOUGHT, plan_code="accident-36")
    first = client.post("/api/v1/claims", headers=_customer(settings),
                        json={**_claim(contract, incident="2025-03-01"),
                              "failure_type": "accident"}).json
    client.post(f"/api/v1/claims/{first['id']}/approve", headers=staff_headers,
                json={"decision": "replace", "amount": 90000})
    paid = client.post(f"/api/v1/claims/{first['id']}/payout", headers=staff_headers,
                       json={"method": "replacement", "reference": "SN-2"})
    assert paid.status_code == 200
    second = client.post("/api/v1/claims", headers=_customer(settings),
                         json={**_claim(contract, incident="2025-02-01", lang="ja"),
                               "failure_type": "accident"}).json
    assert (second["status"], second["deny_code"]) == ("denied", "plan_fulfilled")
    assert second["deny_reason"] == i18n.t("ja", "deny.plan_fulfilled")
    event = db.exec(select(ContractEvent).where(ContractEvent.action == "fulfilled")).one()
    assert event.reason == "product replaced"
