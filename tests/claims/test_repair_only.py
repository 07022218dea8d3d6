"""Repair-or-replace-only stores (WARRANTY_REPAIR_ONLY): no cash reimbursement, anywhere."""

from __future__ import annotations

from datetime import date

import pytest
from sqlmodel import select

from tests.claims.helpers import file
from tests.factories import add_staff, paid_order
from tests.http.web.pages import csrf, sign_in_staff
from warranty.claims.models import Claim, Payout
from warranty.http.app import create_app


@pytest.fixture
def repair_settings(settings):
    """A store that settles claims by repair or replacement only."""
    return settings.model_copy(update={"repair_only": True})


def _claim_in_review(db, settings):
    """A breakdown claim in review on a ¥120,000 TV's plan."""
    _order, (contract,) = paid_order(db, purchase_date=date(2026, 1, 10))
    return contract, file(db, settings, contract, estimate=30000)


def test_the_api_refuses_a_reimbursement_and_takes_a_repair(db, repair_settings,
                                                             staff_headers):
    client = create_app(repair_settings).test_client()
    _contract, claim = _claim_in_review(db, repair_settings)
    assert claim.status == "in_review"
    refused = client.post(f"/api/v1/claims/{claim.public_id}/approve", headers=staff_headers,
                          json={"decision": "reimburse", "amount": 30000})
    assert refused.status_code == 422, refused.json
    assert refused.json["error"]["code"] == "repair_or_replace_only"
    assert "repair or replacement only" in refused.json["error"]["message"]
    db.expire_all()
    assert db.get(Claim, claim.id).status == "in_review"  # nothing half-written
    approved = client.post(f"/api/v1/claims/{claim.public_id}/approve", headers=staff_headers,
                           json={"decision": "repair", "amount": 30000})
    assert approved.status_code == 200 and approved.json["status"] == "approved"
    # Paying the customer in money (or its equivalent) is refused; paying the repairer is not.
    for method in ("bank_transfer", "store_credit"):
        cash = client.post(f"/api/v1/claims/{claim.public_id}/payout", headers=staff_headers,
                           json={"method": method})
        assert cash.status_code == 422 and cash.json["error"]["code"] == (
            "repair_or_replace_only")
    assert db.exec(select(Payout)).all() == []
    paid = client.post(f"/api/v1/claims/{claim.public_id}/payout", headers=staff_headers,
                       json={"method": "repair_vendor", "reference": "R-1"})
    assert paid.status_code == 200 and paid.json["payout"]["amount"] == 30000


def test_other_stores_still_reimburse(db, settings, staff_headers):
    client = create_app(settings).test_client()
    _contract, claim = _claim_in_review(db, settings)
    approved = client.post(f"/api/v1/claims/{claim.public_id}/approve", headers=staff_headers,
                           json={"decision": "reimburse", "amount": 30000})
    assert approved.status_code == 200


def test_automatic_approval_is_a_repair(db, repair_settings):
    store = repair_settings.model_copy(update={"auto_approve_under": 50000})
    _order, (contract,) = paid_order(db, purchase_date=date(2026, 1, 10))
    claim = file(db, store, contract, estimate=30000)
    assert (claim.status, claim.decision, claim.approved_amount) == ("approved", "repair", 30000)


def test_the_staff_page_offers_repair_and_replacement_only(db, repair_settings):
    client = create_app(repair_settings).test_client()
    _contract, claim = _claim_in_review(db, repair_settings)
    add_staff(db, role="support")
    sign_in_staff(client)
    page = client.get(f"/staff/claims/{claim.public_id}").get_data(as_text=True)
    assert 'id="repair-only-note"' in page
    assert '<option value="repair"' in page and '<option value="replace"' in page
    assert '<option value="reimburse"' not in page
    # A forged form is refused with a readable page, the claim untouched.
    token = csrf(client, f"/staff/claims/{claim.public_id}")
    forged = client.post(f"/staff/claims/{claim.public_id}/approve",
                         data={"csrf_token": token, "decision": "reimburse", "amount": "30000"})
    assert forged.status_code == 422
    assert "repair or replacement only" in forged.get_data(as_text=True)
    db.expire_all()
    assert db.get(Claim, claim.id).status == "in_review"


def test_the_terms_and_the_purchase_mail_say_so(db, repair_settings):
    from warranty.contracts import notices as notifications
    from warranty.notify.models import MailMessage
    from warranty.pricing import terms

    order, created = paid_order(db, purchase_date=date(2026, 1, 10))
    # The sale under this store's conditions: its terms version says repair only.
    conditions = terms.conditions_of(repair_settings)
    version = terms.record(db, created[0].rule_set_version, conditions)
    created[0].terms_version = version
    db.add(created[0])
    db.commit()
    notifications.notify_contracts_created(session=db, settings=repair_settings, order=order,
                                           contracts=created)
    db.commit()
    body = db.exec(select(MailMessage)).one().body
    assert "Claims are settled by repair or by replacement of the product only" in body
    page = create_app(repair_settings).test_client().get(
        f"/terms/{version}/electronics/standard-36?lang=en").get_data(as_text=True)
    assert "never by a cash payment" in page
