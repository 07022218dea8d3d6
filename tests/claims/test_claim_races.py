"""Claims under concurrency (PostgreSQL): of N conflicting decisions on one claim released
together, exactly one wins and the others get 409; one audit row, one mail, one store event.
Each request is its own HTTP client to a served app, so each has its own connection."""

from __future__ import annotations

import base64
from collections import Counter
from datetime import date

import pytest
import sqlalchemy as sa
from sqlmodel import func, select

from tests.claims.helpers import file
from tests.factories import JPEG, add_staff, paid_order, stripe_paid_order
from tests.http.api.test_claims_api import customer_token
from tests.http.web.pages import PURCHASE
from tests.races import (
    form_token,
    post,
    postgres_only,
    served,
    staff_browser,
    together,
    wait_until_blocked,
)
from warranty.changes import cancellation, transfer
from warranty.claims import attachments, filing
from warranty.claims.models import Claim, ClaimEvent, ClaimFile, ClaimMessage, Payout
from warranty.contracts.models import Contract, ContractEvent
from warranty.core.dates import store_today
from warranty.db.engine import Session, get_engine
from warranty.notify.models import MailMessage, OutboundWebhook
from warranty.orders.models import Refund

INCIDENT = date(2025, 3, 1)  # breakdown cover of a plan bought on PURCHASE has begun


@pytest.fixture
def race(mail_settings, database_url):
    """The app served over HTTP on PostgreSQL; yields (base URL, settings)."""
    postgres_only(database_url)
    with served(mail_settings) as url:
        yield url, mail_settings


def _claim(db, settings, status: str = "in_review", *, stripe: bool = False, **order):
    """A claim filed on a fresh plan, then arranged in ``status`` (committed)."""
    make = stripe_paid_order if stripe else paid_order
    _, (contract,) = make(db, purchase_date=PURCHASE, **order)
    claim = file(db, settings, contract, incident=INCIDENT, estimate=30000,
                 today=date(2026, 1, 1))
    if status != claim.status:
        claim.status = status
        claim.decision, claim.approved_amount = "repair", 30000
        db.add(claim)
        db.commit()
    return claim


def _fresh(db, claim) -> Claim:
    """The claim as committed now."""
    db.expire_all()
    row = db.get(Claim, claim.id)
    db.commit()
    return row


def _events(db, claim, *actions: str) -> list[ClaimEvent]:
    """The claim's audit rows with these actions."""
    return list(db.exec(select(ClaimEvent).where(ClaimEvent.claim_id == claim.id,
                                                 ClaimEvent.action.in_(actions))).all())


def _count(db, model, *where) -> int:
    """Rows of ``model`` matching ``where``."""
    return db.exec(select(func.count()).select_from(model).where(*where)).one()


def _statuses(responses) -> list[int]:
    """The HTTP statuses, sorted."""
    return sorted(r.status_code for r in responses)


def test_approve_and_deny_at_once_one_wins(race, db, staff_headers):
    base, settings = race
    claim = _claim(db, settings)
    url = f"{base}/api/v1/claims/{claim.public_id}"
    approve = lambda: post(f"{url}/approve", headers=staff_headers,  # noqa: E731
                           json={"decision": "repair", "amount": 25000})
    deny = lambda: post(f"{url}/deny", headers=staff_headers,  # noqa: E731
                        json={"reason": "not covered"})
    responses = together(approve, deny, approve, deny, approve, deny)
    assert _statuses(responses) == [200] + [409] * 5, [r.text for r in responses]
    (won,) = [r for r in responses if r.status_code == 200]
    assert {r.json()["error"]["code"] for r in responses if r.status_code == 409} == {
        "claim_transition_refused"}
    status = won.json()["status"]
    assert _fresh(db, claim).status == status
    assert len(_events(db, claim, "approved", "denied")) == 1  # one audit row
    kinds = Counter(db.exec(select(MailMessage.kind)).all())
    assert kinds[f"claim_{status}"] == 1  # one mail of the decision (and NPS if final)
    assert kinds["claim_approved"] + kinds["claim_denied"] == 1
    assert kinds["claim_nps"] == (1 if status == "denied" else 0)
    hooks = Counter(db.exec(select(OutboundWebhook.type)).all())
    assert hooks["claim.approved"] + hooks["claim.denied"] == 1


def test_pay_and_close_at_once_one_wins(race, db, staff_headers):
    base, settings = race
    claim = _claim(db, settings, "approved")
    url = f"{base}/api/v1/claims/{claim.public_id}"
    pay = lambda: post(f"{url}/payout", headers=staff_headers,  # noqa: E731
                       json={"method": "bank_transfer", "reference": "T-1"})
    close = lambda: post(f"{url}/close", headers=staff_headers,  # noqa: E731
                         json={"reason": "customer withdrew"})
    responses = together(pay, close, pay, close, pay, close)
    assert _statuses(responses) == [200] + [409] * 5, [r.text for r in responses]
    status = _fresh(db, claim).status
    assert len(_events(db, claim, "paid", "closed")) == 1
    assert _count(db, Payout) == (1 if status == "paid" else 0)
    kinds = Counter(db.exec(select(MailMessage.kind)).all())
    assert (kinds["claim_paid"] + kinds["claim_closed"], kinds["claim_nps"]) == (1, 1)
    hooks = Counter(db.exec(select(OutboundWebhook.type)).all())
    assert hooks["claim.paid"] + hooks["claim.closed"] == 1


def test_staff_pages_deciding_at_once_one_wins_the_others_read_why(race, db):
    base, settings = race
    claim = _claim(db, settings)
    add_staff(db)
    page = f"{base}/staff/claims/{claim.public_id}"
    browsers = [staff_browser(base, "alice@store.example") for _ in range(4)]
    tokens = [form_token(b, page) for b in browsers]

    def decide(index: int):
        def act():
            action, form = [("approve", {"decision": "replace", "amount": "40,000"}),
                            ("deny", {"reason": "outside cover"})][index % 2]
            return browsers[index].post(f"{page}/{action}", timeout=60, allow_redirects=False,
                                        data={**form, "csrf_token": tokens[index]})
        return act

    responses = together(*(decide(i) for i in range(4)))
    assert _statuses(responses) == [303, 409, 409, 409], [r.status_code for r in responses]
    for refused in (r for r in responses if r.status_code == 409):
        assert "text/html" in refused.headers["Content-Type"]
        assert f"claim {claim.public_id} is " in refused.text  # the page says why
        assert "cannot become" in refused.text
    assert len(_events(db, claim, "approved", "denied")) == 1


def test_a_double_resubmission_goes_back_to_review_once(race, db, store_key):
    base, settings = race
    claim = _claim(db, settings, "info_requested")
    token = customer_token(settings, claim.customer_email)
    headers = {**store_key, "X-Customer-Token": token}
    body = {"message": "Here is the receipt."}
    responses = together(*(lambda: post(f"{base}/api/v1/claims/{claim.public_id}/resubmit",
                                        headers=headers, json=body) for _ in range(4)))
    assert _statuses(responses) == [200, 409, 409, 409], [r.text for r in responses]
    assert _fresh(db, claim).status == "in_review"
    assert len(_events(db, claim, "info_provided")) == 1
    assert _count(db, ClaimMessage, ClaimMessage.claim_id == claim.id) == 1  # one answer
    assert _count(db, MailMessage, MailMessage.kind == "claim_in_review") == 2  # filing + this


def test_files_uploaded_at_once_stay_within_the_claims_limit(race, db, staff_headers):
    base, settings = race
    claim = _claim(db, settings)
    for _ in range(2):  # 8 of the 10 a claim may hold
        filing.add_files(session=db, settings=settings, claim=claim, actor="test",
                         files=[attachments.Upload("p.jpg", JPEG)] * 4)
        db.commit()
    body = {"filename": "more.jpg", "content_base64": base64.b64encode(JPEG).decode()}
    responses = together(*(lambda: post(f"{base}/api/v1/claims/{claim.public_id}/files",
                                        headers=staff_headers, json=body) for _ in range(5)))
    assert _statuses(responses) == [201, 201, 422, 422, 422], [r.text for r in responses]
    assert {r.json()["error"]["code"] for r in responses if r.status_code == 422} == {
        "too_many_files"}
    assert _count(db, ClaimFile, ClaimFile.claim_id == claim.id) == 10


def test_a_claim_filed_while_its_plan_is_being_cancelled_sees_the_cancellation(
        race, db, database_url, store_key):
    """The cancellation holds the contract (locked, not yet committed) when the claim comes
    in: the filing waits for it, then judges the plan as cancelled."""
    base, settings = race
    _, (contract,) = stripe_paid_order(db, purchase_date=PURCHASE)
    token = customer_token(settings, contract.customer_email)
    body = {"contract_id": contract.public_id, "incident_date": INCIDENT.isoformat(),
            "failure_type": "breakdown", "description": "It died.", "lang": "en"}
    engine = get_engine(database_url)
    with Session(engine, expire_on_commit=False) as cancelling:
        cancellation.cancel_contract(
            session=cancelling, settings=settings, contract_id=contract.public_id,
            cancel_date=store_today(settings.timezone), today=store_today(settings.timezone),
            actor="staff:test", reason="asked")
        response = _file_after(engine, cancelling, base, store_key, token, body)
    assert response.status_code == 201, response.text
    # An incident before the cancellation date: the refund settled the plan (claims rules).
    assert (response.json()["status"], response.json()["deny_code"]) == ("denied",
                                                                        "plan_cancelled")


def _file_after(engine, cancelling, base, store_key, token, body):
    """File the claim in a thread of its own; commit the cancellation once it waits."""
    import threading

    answer = []
    thread = threading.Thread(target=lambda: answer.append(post(
        f"{base}/api/v1/claims", json=body, headers={**store_key, "X-Customer-Token": token})))
    thread.start()
    wait_until_blocked(engine)
    cancelling.commit()
    thread.join(60)
    return answer[0]


def test_opposite_lock_orders_never_deadlock_into_an_error(race, db, staff_headers):
    """Cancelling a plan locks its order, then the contract; paying or closing one of its
    claims starts from the claim. Mixed together, round after round: every answer is a
    decision or a 409, never a 5xx, and the outcomes agree with each other."""
    base, settings = race
    for round_no in range(4):
        claim = _claim(db, settings, "approved", stripe=True, order_ref=f"R-{round_no}")
        contract = db.get(Contract, claim.contract_id)
        quoted = _quote(base, contract, staff_headers)
        claim_url = f"{base}/api/v1/claims/{claim.public_id}"
        cancel = lambda c=contract, q=quoted: post(  # noqa: E731
            f"{base}/api/v1/contracts/{c.public_id}/cancel", headers=staff_headers,
            json={"amount": q, "reason": "asked"})
        pay = lambda u=claim_url: post(f"{u}/payout", headers=staff_headers,  # noqa: E731
                                       json={"method": "bank_transfer"})
        close = lambda u=claim_url: post(f"{u}/close", headers=staff_headers,  # noqa: E731
                                         json={"reason": "withdrawn"})
        cancelled, paid, closed, *again = together(cancel, pay, close, cancel, pay, close)
        answers = [cancelled, paid, closed, *again]
        assert {r.status_code for r in answers} <= {200, 409}, [r.text for r in answers]
        won = Counter(kind for kind, r in zip(["cancel", "pay", "close"] * 2, answers,
                                              strict=True) if r.status_code == 200)
        assert won["pay"] + won["close"] == 1  # the claim ends one way
        assert won["cancel"] <= 1 and not (won["pay"] and won["cancel"])
        db.expire_all()
        assert _count(db, Payout, Payout.claim_id == claim.id) == won["pay"]
        assert len(_events(db, claim, "paid", "closed")) == 1
        assert _count(db, Refund, Refund.contract_id == contract.id) == won["cancel"]
        assert _count(db, ContractEvent, ContractEvent.contract_id == contract.id,
                      ContractEvent.action == "cancelled") == won["cancel"]
        db.commit()


def _quote(base, contract, headers) -> int:
    """The refund a cancellation today gives."""
    import requests

    res = requests.get(f"{base}/api/v1/contracts/{contract.public_id}/cancellation-quote",
                       headers=headers, timeout=30)
    assert res.status_code == 200, res.text
    return res.json()["amount"]


def test_a_deadlock_the_database_breaks_is_a_409_not_a_500(race, db, database_url,
                                                           staff_headers):
    """Another connection holds the contract, the cancellation takes its order and waits for
    the contract, then that connection asks for the order: PostgreSQL breaks the cycle by
    rolling one transaction back. The request's answer is a 409 to try again."""
    base, settings = race
    order, (contract,) = stripe_paid_order(db, purchase_date=PURCHASE)
    amount = _quote(base, contract, staff_headers)
    engine = get_engine(database_url)
    with engine.connect() as other:
        other.execute(sa.text("SET deadlock_timeout = '5s'"))  # the request detects it first
        other.execute(sa.text("SELECT id FROM contract WHERE id = :id FOR UPDATE"),
                      {"id": contract.id})

        def cancel_then_close_the_cycle():
            import threading

            answer = []
            thread = threading.Thread(target=lambda: answer.append(post(
                f"{base}/api/v1/contracts/{contract.public_id}/cancel", headers=staff_headers,
                json={"amount": amount, "reason": "asked"})))
            thread.start()
            wait_until_blocked(engine)
            other.execute(sa.text("SELECT id FROM orders WHERE id = :id FOR UPDATE"),
                          {"id": order.id})
            thread.join(15)
            other.rollback()
            thread.join(60)
            return answer[0]

        response = cancel_then_close_the_cycle()
    assert response.status_code == 409, response.text
    assert response.json()["error"]["code"] == "concurrent_change"
    db.expire_all()
    assert db.get(Contract, contract.id).status == "active"  # nothing was changed


def test_a_claim_filed_by_the_owner_a_transfer_is_replacing_is_refused(race, db, database_url,
                                                                       store_key):
    """The transfer holds the contract when the old owner's claim comes in: the filing
    waits, then finds the plan is no longer theirs (like any plan that is not)."""
    base, settings = race
    _, (contract,) = paid_order(db, purchase_date=PURCHASE)
    token = customer_token(settings, contract.customer_email)
    body = {"contract_id": contract.public_id, "incident_date": INCIDENT.isoformat(),
            "failure_type": "breakdown", "description": "It died.", "lang": "en"}
    engine = get_engine(database_url)
    with Session(engine, expire_on_commit=False) as transferring:
        transfer.transfer_contract(
            session=transferring, settings=settings, contract_id=contract.public_id,
            new_email="new.owner@example.com", actor="staff:test", reason="gift")
        response = _file_after(engine, transferring, base, store_key, token, body)
    assert response.status_code == 404, response.text
    assert response.json()["error"]["code"] == "unknown_contract"
    assert _count(db, Claim) == 0
