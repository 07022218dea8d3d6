"""Contracts, orders and the other rows under concurrency (PostgreSQL): requests released
together, each its own HTTP client to a served app (or its own session), and exactly one of
the conflicting ones wins. Claims have theirs in tests/claims/test_claim_races.py."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import date, timedelta

import pytest
import requests
import sqlalchemy as sa
from sqlmodel import func, select

from tests.contracts.test_cancellation import stripe_refunds
from tests.factories import (
    STAFF_PASSWORD,
    add_staff,
    load_rules,
    paid_order,
    rules_doc,
    stripe_paid_order,
)
from tests.races import CSRF, post, postgres_only, served, together, wait_until_blocked
from warranty.catalog.models import Product
from warranty.claims import filing, nps
from warranty.claims.models import NpsAnswer
from warranty.contracts import refunds as contract_refunds
from warranty.contracts.models import Contract, ContractEvent
from warranty.core.dates import store_today, utcnow
from warranty.db.engine import Session, get_engine
from warranty.notify.models import MailMessage, OutboundWebhook
from warranty.orders.models import Order, Refund
from warranty.pricing.models import RuleSet
from warranty.staff.models import StaffUser
from warranty.worker import run_expiry


@pytest.fixture
def race(mail_settings, database_url):
    """The app served over HTTP on PostgreSQL; yields (base URL, settings)."""
    postgres_only(database_url)
    with served(mail_settings) as url:
        yield url, mail_settings


def _count(db, model, *where) -> int:
    """Rows of ``model`` matching ``where`` (a fresh read)."""
    db.expire_all()
    count = db.exec(select(func.count()).select_from(model).where(*where)).one()
    db.commit()
    return count


def _statuses(responses) -> list[int]:
    """The HTTP statuses, sorted."""
    return sorted(r.status_code for r in responses)


def _codes(responses, status: int) -> set[str]:
    """The error codes of the answers with ``status``."""
    return {r.json()["error"]["code"] for r in responses if r.status_code == status}


def test_cancellations_on_one_order_never_refund_more_than_was_paid(race, db, staff_headers):
    base, settings = race
    today = store_today(settings.timezone)
    order, (first, second) = stripe_paid_order(db, quantity=2, plan_quantity=2,
                                               purchase_date=today - timedelta(days=10))
    order.total_amount = 9000  # arranged: only this much was taken for the order
    db.add(order)
    db.commit()

    def cancel(contract):
        return lambda: post(f"{base}/api/v1/contracts/{contract.public_id}/cancel",
                            headers=staff_headers, json={"amount": 6000, "reason": "asked"})

    responses = together(cancel(first), cancel(second), cancel(first), cancel(second))
    assert _statuses(responses) == [200, 409, 409, 409], [r.text for r in responses]
    assert _codes(responses, 409) <= {"over_refund", "transition_refused"}
    assert "over_refund" in _codes(responses, 409)
    assert _count(db, Refund) == 1 and len(stripe_refunds(order)) == 1
    assert _count(db, Contract, Contract.status == "cancelled") == 1
    assert _count(db, MailMessage, MailMessage.kind == "cancellation") == 1
    assert _count(db, OutboundWebhook, OutboundWebhook.type == "contract.cancelled") == 1


def test_a_transfer_sent_twice_at_once_happens_once(race, db, staff_headers):
    base, _ = race
    _, (contract,) = paid_order(db)
    transfer = lambda: post(  # noqa: E731
        f"{base}/api/v1/contracts/{contract.public_id}/transfer", headers=staff_headers,
        json={"email": "new.owner@example.com", "reason": "gift"})
    responses = together(*[transfer] * 4)
    assert _statuses(responses) == [200, 409, 409, 409], [r.text for r in responses]
    assert _codes(responses, 409) == {"same_owner"}
    assert _count(db, ContractEvent, ContractEvent.action == "transferred") == 1
    assert Counter(db.exec(select(MailMessage.kind)).all()) == {"transfer_in": 1,
                                                                "transfer_out": 1}
    assert _count(db, OutboundWebhook, OutboundWebhook.type == "contract.transferred") == 1


def test_returns_and_a_cancellation_at_once_cancel_each_plan_once(race, db, staff_headers):
    base, settings = race
    order, created = stripe_paid_order(db, quantity=3, plan_quantity=3,
                                       purchase_date=date(2026, 1, 10))
    returns = lambda: post(  # noqa: E731
        f"{base}/api/v1/orders/{order.public_id}/lines/1/returns", headers=staff_headers,
        json={"quantity": 1, "reason": "RMA"})
    cancel = lambda: post(  # noqa: E731
        f"{base}/api/v1/contracts/{created[0].public_id}/cancel", headers=staff_headers,
        json={"amount": _quote(base, created[0], staff_headers), "cancel_date": "2026-07-01",
              "reason": "asked", "backdate_reason": "a test dated on a fixed day"})
    responses = together(returns, returns, returns, returns, cancel)
    assert {r.status_code for r in responses} <= {200, 409}, [r.text for r in responses]
    assert _codes(responses, 409) <= {"over_return", "transition_refused"}
    assert sum(r.status_code == 200 for r in responses[:4]) == 3  # three units to return
    assert db.exec(select(Order.id)).first()  # (the order still reads)
    db.expire_all()
    line_returned = db.exec(sa.text("SELECT refunded_quantity FROM order_line "
                                    "WHERE line_no = 1")).scalar()
    assert line_returned == 3
    assert _count(db, Contract, Contract.status == "cancelled") == 3
    assert _count(db, Refund) == 3  # one per plan, whichever path cancelled it
    assert sorted(key for _, key in stripe_refunds(order)) == sorted(
        contract_refunds.refund_key(c) for c in created)


def _quote(base, contract, headers, cancel_date: str = "2026-07-01") -> int:
    """The refund a cancellation on ``cancel_date`` gives."""
    res = requests.get(f"{base}/api/v1/contracts/{contract.public_id}/cancellation-quote"
                       f"?cancel_date={cancel_date}", headers=headers, timeout=30)
    assert res.status_code == 200, res.text
    return res.json()["amount"]


def test_the_expiry_job_and_a_cancellation_at_once_leave_one_outcome(race, db,
                                                                     staff_headers):
    base, settings = race
    today = store_today(settings.timezone)
    bought = date(today.year - 3, today.month, 1) - timedelta(days=10)  # term just ended
    _, (contract,) = stripe_paid_order(db, purchase_date=bought)
    assert contract.term_end < today
    cancel_date = contract.term_end.isoformat()
    amount = _quote(base, contract, staff_headers, cancel_date)
    cancel = lambda: post(  # noqa: E731
        f"{base}/api/v1/contracts/{contract.public_id}/cancel", headers=staff_headers,
        json={"amount": amount, "cancel_date": cancel_date, "reason": "asked"})
    expired, *responses = together(lambda: run_expiry(settings=settings), cancel, cancel)
    # The cancellation is dated inside the term: it happens once whether or not the job
    # expired the plan first (an expired plan can still be cancelled as of a day of its term).
    assert _statuses(responses) == [200, 409], [r.text for r in responses]
    db.expire_all()
    status = db.get(Contract, contract.id).status
    db.commit()
    assert status == "cancelled" and expired in (0, 1)
    events = Counter(db.exec(select(ContractEvent.action).where(
        ContractEvent.contract_id == contract.id, ContractEvent.action != "created")).all())
    events.pop("refund_succeeded", None)
    assert events == Counter(cancelled=1, expired=expired)


def test_rule_uploads_from_one_version_at_once_keep_one(race, db, staff_headers):
    base, _ = race
    load_rules(db)  # version 1
    upload = lambda deductible: lambda: post(  # noqa: E731
        f"{base}/api/v1/rule-sets", headers=staff_headers,
        json={"rules": rules_doc(deductible=deductible), "based_on_version": 1})
    responses = together(*(upload(1000 * n) for n in range(4)))
    assert _statuses(responses) == [201, 409, 409, 409], [r.text for r in responses]
    assert _codes(responses, 409) == {"rules_changed"}
    assert {r.json()["error"]["details"]["newest_version"] for r in responses
            if r.status_code == 409} == {2}
    assert db.exec(select(RuleSet.version).order_by(RuleSet.version)).all() == [1, 2]
    # Uploads that name no version all land, one version each, numbered as they commit.
    plain = lambda: post(f"{base}/api/v1/rule-sets", headers=staff_headers,  # noqa: E731
                         json={"rules": rules_doc()})
    assert _statuses(together(plain, plain, plain)) == [201, 201, 201]
    db.expire_all()
    assert db.exec(select(RuleSet.version).order_by(RuleSet.version)).all() == [1, 2, 3, 4, 5]


def test_catalog_upserts_in_opposite_orders_do_not_deadlock(race, db, staff_headers):
    base, _ = race
    load_rules(db)
    batch = [{"sku": f"SKU-{n:04d}", "title": f"P{n}", "category": "tv", "price": 10000 + n}
             for n in range(300)]
    upsert = lambda products: lambda: post(  # noqa: E731
        f"{base}/api/v1/products", headers=staff_headers, json={"products": products})
    for _ in range(3):
        responses = together(upsert(batch), upsert(batch[::-1]), upsert(batch),
                             upsert(batch[::-1]))
        assert _statuses(responses) == [200] * 4, [r.text[:200] for r in responses]
    assert _count(db, Product) == 300


def test_a_sign_in_racing_the_account_being_disabled_is_refused(race, db, database_url):
    base, _ = race
    user = add_staff(db)
    browser = requests.Session()
    token = CSRF.search(browser.get(f"{base}/staff/login", timeout=30).text).group(1)
    engine = get_engine(database_url)
    answer = []
    with Session(engine) as admin:  # an admin disabling the account, not yet committed
        row = admin.exec(select(StaffUser).where(StaffUser.id == user.id)
                         .with_for_update()).one()
        row.disabled_at = utcnow()
        admin.add(row)
        admin.flush()
        thread = threading.Thread(target=lambda: answer.append(browser.post(
            f"{base}/staff/login", timeout=60, allow_redirects=False,
            data={"email": user.email, "password": STAFF_PASSWORD, "csrf_token": token})))
        thread.start()
        wait_until_blocked(engine)
        admin.commit()
        thread.join(60)
    (response,) = answer
    assert response.status_code == 401, response.status_code
    db.expire_all()
    assert db.get(StaffUser, user.id).last_login_at is None


def test_the_nps_question_answered_twice_at_once_keeps_one_answer(race, db):
    base, settings = race
    _, (contract,) = paid_order(db, purchase_date=date(2024, 1, 10))
    claim = filing.file_claim(session=db, settings=settings, contract=contract,
                              customer_email=contract.customer_email,
                              incident_date=date(2024, 6, 1), failure_type="breakdown",
                              description="x", estimated_amount=None, files=[],
                              actor="customer:x", today=date(2028, 1, 1), lang="en")
    db.commit()
    assert claim.status == "denied"  # inside the manufacturer's warranty: closed, NPS asked
    link = nps.nps_link(settings, claim).removeprefix(settings.base_url)
    nps_token = link.split("token=")[1].split("&")[0]
    browsers = [requests.Session() for _ in range(4)]
    forms = [CSRF.search(b.get(f"{base}{link}", timeout=30).text).group(1) for b in browsers]

    def answer(index: int):
        return lambda: browsers[index].post(f"{base}/my/nps", timeout=60, data={
            "csrf_token": forms[index], "token": nps_token, "score": str(index)})

    responses = together(*(answer(i) for i in range(4)))
    thanks = [r for r in responses if r.status_code == 200 and "Thank you" in r.text]
    assert len(thanks) == 1, [(r.status_code, r.text[:100]) for r in responses]
    for other in (r for r in responses if r not in thanks):
        assert other.status_code in (200, 409) and "already answered" in other.text
    assert _count(db, NpsAnswer) == 1


def test_an_order_import_sent_twice_at_once_stores_each_order_once(race, db, staff_headers):
    base, _ = race
    batch = {"orders": [{"order_ref": f"EXT-{n}", "email": f"c{n}@example.com",
                         "purchase_date": "2025-11-03", "total_amount": 1000 + n}
                        for n in range(40)]}
    send = lambda: post(f"{base}/api/v1/orders/import", headers=staff_headers,  # noqa: E731
                        json=batch)
    responses = together(send, send, send, send)
    assert _statuses(responses) == [200] * 4, [r.text for r in responses]
    assert sum(r.json()["created"] for r in responses) == 40
    assert _count(db, Order, Order.channel == "external") == 40
    facts = db.exec(sa.text("SELECT sum(orders) FROM customer_facts")).scalar()
    assert facts == 40  # the retention facts count each order once too


def test_plans_link_requests_at_once_mail_once(race, db, store_key):
    base, _ = race
    paid_order(db, email="has.plans@example.com")
    ask = lambda: post(f"{base}/api/v1/customers/plans-link", headers=store_key,  # noqa: E731
                       json={"email": "has.plans@example.com"})
    responses = together(*[ask] * 5)
    assert _statuses(responses) == [202] * 5  # the same answer to each, as always
    assert _count(db, MailMessage, MailMessage.kind == "plans_link") == 1
