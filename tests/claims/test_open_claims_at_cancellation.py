"""A plan with an open claim: staff decide the claim before they cancel the plan; a returned
product settles the plan's open claims with it.

The refund of a cancellation is worked out with the claims paid by then, and a cancelled
plan pays nothing more. So a claim in review or approved when the plan is cancelled would
either be paid on a plan already refunded (in the free look: refunded in full) or be stuck,
neither approvable nor payable. Staff cancellations are refused while a claim is open
(409 ``claims_open``, the quote names the claims); a return or a refund of the product
cannot be refused (the goods and the money went back), so it denies the plan's undecided
claims and closes its approved ones, each with ``product_returned``.
"""

from __future__ import annotations

from collections import Counter
from datetime import date

import pytest
import requests
from sqlmodel import select

from tests.claims.helpers import file
from tests.factories import stripe_paid_order
from tests.http.api.test_claims_api import customer_token
from tests.http.web.pages import PURCHASE
from tests.races import post, postgres_only, served, together
from warranty.claims import filing as claims_filing
from warranty.claims import models as claims_models
from warranty.claims import transitions, workflow
from warranty.claims.models import Claim, ClaimEvent
from warranty.contracts.models import Contract
from warranty.notify.models import MailMessage, OutboundWebhook
from warranty.orders.models import Refund

INCIDENT = date(2025, 3, 1)  # breakdown cover of a plan bought on PURCHASE has begun
FILED = date(2026, 1, 1)


def _claim(db, settings, contract, status="in_review"):
    claim = file(db, settings, contract, incident=INCIDENT, estimate=30000, today=FILED)
    assert claim.status == "in_review"
    if status == "approved":
        workflow.approve(session=db, settings=settings, claim=claim, decision="repair",
                       amount=30000, actor="staff:alice")
        db.commit()
    return claim


def _cancel(client, headers, contract, amount=None):
    quote = client.get(f"/api/v1/contracts/{contract.public_id}/cancellation-quote",
                       headers=headers)
    assert quote.status_code == 200, quote.json
    res = client.post(f"/api/v1/contracts/{contract.public_id}/cancel", headers=headers,
                      json={"amount": quote.json["amount"] if amount is None else amount,
                            "reason": "customer asked"})
    return quote.json, res


@pytest.mark.parametrize("status", ["in_review", "approved"])
def test_staff_cannot_cancel_a_plan_with_an_open_claim(stripe_app, stripe_standin, db,
                                                       staff_headers, status):
    settings = stripe_app.config["SETTINGS"]
    client = stripe_app.test_client()
    _, (contract,) = stripe_paid_order(db, purchase_date=PURCHASE)
    claim = _claim(db, settings, contract, status)
    quote, res = _cancel(client, staff_headers, contract)
    assert quote["open_claims"] == [{"claim": claim.public_id, "status": status,
                                     "incident_date": INCIDENT.isoformat()}]
    assert res.status_code == 409, res.json
    error = res.json["error"]
    assert error["code"] == "claims_open"
    assert claim.public_id in error["message"] and status in error["message"]
    assert error["details"]["claims"] == quote["open_claims"]
    db.expire_all()
    db.commit()  # a new transaction: what the requests committed
    assert db.get(Contract, contract.id).status == "active"
    assert db.exec(select(Refund)).all() == []


def test_once_the_open_claim_is_paid_the_cancellation_deducts_it(stripe_app, stripe_standin,
                                                                  db, staff_headers):
    settings = stripe_app.config["SETTINGS"]
    client = stripe_app.test_client()
    _, (contract,) = stripe_paid_order(db, purchase_date=PURCHASE)
    claim = _claim(db, settings, contract, "approved")
    before, _ = _cancel(client, staff_headers, contract, amount=0)
    paid = client.post(f"/api/v1/claims/{claim.public_id}/payout", headers=staff_headers,
                       json={"method": "bank_transfer", "reference": "T-1"})
    assert paid.status_code == 200, paid.json
    quote, res = _cancel(client, staff_headers, contract)
    assert res.status_code == 200, res.json
    assert quote["open_claims"] == [] and quote["claims_paid"] == 30000
    # The refund the customer gets is the one with the payout deducted, never the one
    # quoted while the claim was open.
    assert quote["amount"] == max(0, before["pro_rata_amount"] - 30000)
    assert res.json["refund"]["claims_paid"] == 30000


def test_once_the_open_claim_is_denied_the_plan_can_be_cancelled(stripe_app, stripe_standin,
                                                                 db, staff_headers):
    settings = stripe_app.config["SETTINGS"]
    client = stripe_app.test_client()
    _, (contract,) = stripe_paid_order(db, purchase_date=PURCHASE)
    claim = _claim(db, settings, contract)
    denied = client.post(f"/api/v1/claims/{claim.public_id}/deny", headers=staff_headers,
                         json={"reason": "the customer withdrew it"})
    assert denied.status_code == 200, denied.json
    quote, res = _cancel(client, staff_headers, contract)
    assert res.status_code == 200, res.json
    assert res.json["contract"]["status"] == "cancelled"
    assert quote["open_claims"] == []


def test_a_returned_product_settles_the_plans_open_claims(stripe_app, stripe_standin, db,
                                                          staff_headers):
    """Two claims on the plan, one in review and one approved, when the TV goes back: the
    plan is cancelled with a full refund, the claim in review denied and the approved one
    closed, each told to the customer in the claim's language and to the store."""
    settings = stripe_app.config["SETTINGS"]
    client = stripe_app.test_client()
    order, (contract,) = stripe_paid_order(db, purchase_date=PURCHASE)
    review = _claim(db, settings, contract)
    approved = _claim(db, settings, contract, "approved")
    mails_before = Counter(m.kind for m in db.exec(select(MailMessage)).all())
    res = client.post(f"/api/v1/orders/{order.public_id}/lines/1/returns",
                      headers=staff_headers, json={"quantity": 1, "reason": "returned"})
    assert res.status_code == 200, res.json
    (cancelled,) = res.json["cancelled"]
    assert cancelled["refund"]["amount"] == contract.price  # the whole price
    db.expire_all()
    db.commit()  # a new transaction: what the requests committed
    review, approved = db.get(Claim, review.id), db.get(Claim, approved.id)
    assert (review.status, review.deny_code) == ("denied", "product_returned")
    assert approved.status == "closed"
    for claim in (review, approved):
        (event,) = db.exec(select(ClaimEvent).where(ClaimEvent.claim_id == claim.id,
                                                    ClaimEvent.action == "product_returned"))
        assert event.actor  # who recorded the return
        assert "returned" in event.reason
    # A cancelled plan's claims can never be paid afterwards.
    assert workflow.open_claims(db, contract) == []
    mails = Counter(m.kind for m in db.exec(select(MailMessage)).all()) - mails_before
    assert (mails["claim_denied"], mails["claim_closed"], mails["claim_nps"]) == (1, 1, 2)
    hooks = Counter(h.type for h in db.exec(select(OutboundWebhook)).all())
    assert (hooks["claim.denied"], hooks["claim.closed"]) == (1, 1)
    denial = next(m for m in db.exec(select(MailMessage).where(
        MailMessage.kind == "claim_denied")))
    assert "returned or refunded" in denial.body  # the claim was filed in English


def test_the_customer_reads_why_in_japanese(stripe_app, stripe_standin, db, staff_headers):
    settings = stripe_app.config["SETTINGS"]
    client = stripe_app.test_client()
    order, (contract,) = stripe_paid_order(db, purchase_date=PURCHASE)
    claim = claims_filing.file_claim(session=db, settings=settings, contract=contract,
                              customer_email=contract.customer_email, incident_date=INCIDENT,
                              failure_type="breakdown", description="壊れました",
                              estimated_amount=None, files=[], actor="customer", today=FILED,
                              lang="ja")
    db.commit()
    res = client.post(f"/api/v1/orders/{order.public_id}/lines/1/returns",
                      headers=staff_headers, json={"quantity": 1})
    assert res.status_code == 200, res.json
    db.expire_all()
    db.commit()
    (mail,) = db.exec(select(MailMessage).where(MailMessage.kind == "claim_denied")).all()
    assert "返品・返金" in mail.body
    assert transitions.deny_text(db.get(Claim, claim.id), "en").startswith(
        "The product was returned")


def test_a_claim_and_a_cancellation_at_once_never_leave_an_open_claim_on_a_cancelled_plan(
        mail_settings, database_url, db, store_key, staff_headers):
    """Four rounds of a customer filing a claim while staff confirm the cancellation, each
    over its own HTTP connection: either the claim is judged on a cancelled plan (denied),
    or it is open and the cancellation is refused, never both an open claim and a cancelled
    plan."""
    postgres_only(database_url)
    outcomes = set()
    with served(mail_settings) as base:
        for _ in range(4):
            _, (contract,) = stripe_paid_order(db, purchase_date=PURCHASE)
            token = customer_token(mail_settings, contract.customer_email)
            amount = requests.get(
                f"{base}/api/v1/contracts/{contract.public_id}/cancellation-quote",
                headers=staff_headers, timeout=30).json()["amount"]
            filing = lambda contract=contract, token=token: post(  # noqa: E731
                f"{base}/api/v1/claims", headers={**store_key, "X-Customer-Token": token},
                json={"contract_id": contract.public_id, "incident_date": INCIDENT.isoformat(),
                      "failure_type": "breakdown", "description": "It died.", "lang": "en"})
            cancelling = lambda contract=contract, amount=amount: post(  # noqa: E731
                f"{base}/api/v1/contracts/{contract.public_id}/cancel", headers=staff_headers,
                json={"amount": amount, "reason": "customer asked"})
            filed, cancelled = together(filing, cancelling)
            assert filed.status_code == 201, filed.text
            db.expire_all()
            db.commit()
            plan = db.get(Contract, contract.id)
            claim = db.exec(select(Claim).where(Claim.contract_id == contract.id)).one()
            if cancelled.status_code == 200:
                assert plan.status == "cancelled" and claim.status == "denied"
                outcomes.add("cancelled first")
            else:
                assert cancelled.status_code == 409, cancelled.text
                assert cancelled.json()["error"]["code"] == "claims_open"
                assert plan.status == "active" and claim.status in claims_models.OPEN
                outcomes.add("filed first")
    assert outcomes  # at least one round ran either way
