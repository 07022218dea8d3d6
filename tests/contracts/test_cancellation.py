"""Cancelling a contract: quote, confirm, one refund through Stripe, mail and store event."""

import threading
from datetime import date, timedelta

import pytest
import sqlalchemy as sa
import stripe
from sqlmodel import select

from tests.factories import stripe_paid_order
from warranty.changes import cancellation
from warranty.contracts.models import Contract, ContractEvent
from warranty.contracts.refunds import refund_key
from warranty.core.dates import store_today, utcnow
from warranty.http.app import create_app
from warranty.notify.mail import run_mail
from warranty.notify.models import OutboundWebhook
from warranty.orders.models import Refund
from warranty.payments import refunds
from warranty.payments.client import make_client
from warranty.payments.refunds import run_refunds


@pytest.fixture
def ops_app(mail_settings):
    """The app talking to the Stripe stand-in and mailing the SMTP sink."""
    return create_app(mail_settings)


@pytest.fixture
def api(ops_app):
    """A test client of that app."""
    return ops_app.test_client()


def stripe_refunds(order):
    """Every refund Stripe holds for the order's PaymentIntent: (amount, our key)."""
    listing = stripe.Refund.list(payment_intent=order.stripe_payment_intent_id, limit=100)
    return [(r.amount, r.metadata.to_dict().get(refunds.METADATA_KEY)) for r in listing.data]


def closed_port() -> int:
    """A loopback port nothing listens on."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def fresh(db, row):
    """Re-read ``row`` and end the read (an open SQLite transaction holds the write lock)."""
    db.refresh(row)
    db.commit()
    return row


# These fixed 2026 dates lie more than the 30-day window back: admins confirm them, with a
# reason (tests/contracts/test_cancel_dates.py tests the window itself).
BACKDATED = "cancellation asked for in writing on that date"


def cancel_in_db(db, settings, contract, cancel_date, **kwargs):
    """Confirm a cancellation through the domain and commit, without calling Stripe."""
    refund = cancellation.cancel_contract(
        session=db, settings=settings, contract_id=contract.public_id, cancel_date=cancel_date,
        today=store_today(settings.timezone), actor="staff:test", reason="asked", role="admin",
        backdate_reason=BACKDATED, **kwargs)
    db.commit()
    return refund


def test_cancel_on_day_ten_refunds_everything(api, db, staff_headers, mail_settings):
    today = store_today(mail_settings.timezone)
    order, (contract,) = stripe_paid_order(db, purchase_date=today - timedelta(days=10))
    quote = api.get(f"/api/v1/contracts/{contract.public_id}/cancellation-quote",
                    headers=staff_headers)
    assert quote.status_code == 200, quote.json
    assert (quote.json["rule"], quote.json["amount"]) == ("free_look", 6000)
    res = api.post(f"/api/v1/contracts/{contract.public_id}/cancel", headers=staff_headers,
                   json={"amount": 6000, "reason": "changed my mind"})
    assert res.status_code == 200, res.json
    assert res.json["contract"]["status"] == "cancelled"
    refund = res.json["refund"]
    assert (refund["status"], refund["amount"], refund["attempts"]) == ("succeeded", 6000, 1)
    assert refund["stripe_refund_id"].startswith("re_")
    assert stripe_refunds(order) == [(6000, refund_key(contract))]


def test_later_cancellation_is_pro_rata_with_mail_and_store_event(
        api, db, staff_headers, mail_settings, smtp_sink):
    order, (contract,) = stripe_paid_order(db, purchase_date=date(2026, 1, 10),
                                           email="late@example.com")
    quote = api.get(f"/api/v1/contracts/{contract.public_id}/cancellation-quote"
                    "?cancel_date=2026-07-01", headers=staff_headers).json
    # 2026-07-01..2029-01-09 = 924 of 1,096 days (2028 is a leap year): 6000 × 924 // 1096.
    assert (quote["unused_days"], quote["term_days"], quote["amount"]) == (924, 1096, 5058)
    res = api.post(f"/api/v1/contracts/{contract.public_id}/cancel", headers=staff_headers,
                   json={"amount": 5058, "cancel_date": "2026-07-01", "reason": "moving abroad",
                         "backdate_reason": BACKDATED})
    assert res.json["refund"]["status"] == "succeeded", res.json
    assert stripe_refunds(order) == [(5058, refund_key(contract))]
    assert run_mail(settings=mail_settings, limit=10) == 1
    (mail,) = smtp_sink.wait_for(1, to="late@example.com")
    assert "¥5,058" in mail.subject and "¥5,058" in mail.body and "2026-07-01" in mail.body
    events = db.exec(select(OutboundWebhook).order_by(OutboundWebhook.id)).all()
    assert [e.type for e in events] == ["contract.cancelled", "refund.succeeded"]
    assert events[0].payload["data"]["refund"]["amount"] == 5058
    assert events[1].payload["data"]["refund"]["stripe_refund_id"] == res.json["refund"][
        "stripe_refund_id"]
    db.commit()  # end the read: on SQLite an open transaction holds the write lock
    detail = api.get(f"/api/v1/contracts/{contract.public_id}", headers=staff_headers).json
    assert [(h["action"], h["actor"]) for h in detail["history"]] == [
        ("created", "stripe"), ("cancelled", "admin-token"), ("refund_succeeded", "stripe")]
    assert detail["history"][1]["reason"] == "moving abroad"
    assert detail["refund"]["amount"] == 5058


def test_usd_cancellation_with_a_fee(db, staff_headers, mail_settings, smtp_sink):
    settings = mail_settings.model_copy(update={"cancellation_fee": 250})
    api = create_app(settings).test_client()
    order, (contract,) = stripe_paid_order(db, currency="usd", purchase_date=date(2026, 1, 10),
                                           email="us@example.com")
    assert contract.price == 6000  # $60.00: 5% of $1,200
    quote = api.get(f"/api/v1/contracts/{contract.public_id}/cancellation-quote"
                    "?cancel_date=2026-07-01", headers=staff_headers).json
    # 6000 × 924 // 1096 = 5058 cents, less the $2.50 fee = 4808 cents.
    assert (quote["currency"], quote["fee"], quote["amount"]) == ("usd", 250, 4808)
    res = api.post(f"/api/v1/contracts/{contract.public_id}/cancel", headers=staff_headers,
                   json={"amount": 4808, "cancel_date": "2026-07-01", "reason": "asked",
                         "backdate_reason": BACKDATED})
    assert res.json["refund"]["status"] == "succeeded"
    assert stripe_refunds(order) == [(4808, refund_key(contract))]
    run_mail(settings=settings, limit=10)
    (mail,) = smtp_sink.wait_for(1, to="us@example.com")
    assert "$48.08" in mail.body


def test_claims_paid_reduce_the_refund_and_zero_needs_no_stripe_call(db, mail_settings):
    order, (first, second) = stripe_paid_order(db, quantity=2, plan_quantity=2,
                                               purchase_date=date(2026, 1, 10))
    refund = cancel_in_db(db, mail_settings, first, date(2026, 7, 1), claims_paid=3000,
                          expected_amount=5058 - 3000)
    assert refunds.execute_refund(settings=mail_settings,
                                  stripe_client=make_client(mail_settings), refund_id=refund.id)
    nothing = cancel_in_db(db, mail_settings, second, date(2026, 7, 1), claims_paid=9000)
    assert (nothing.amount, nothing.status) == (0, "not_needed")
    assert run_refunds(settings=mail_settings,
                       stripe_client=make_client(mail_settings), limit=10) == 0
    assert stripe_refunds(order) == [(2058, refund_key(first))]


def test_stripe_failure_leaves_refund_pending_and_the_worker_retries_once(db, mail_settings):
    order, (contract,) = stripe_paid_order(db, purchase_date=date(2026, 1, 10))
    refund = cancel_in_db(db, mail_settings, contract, date(2026, 7, 1))
    down = mail_settings.model_copy(update={"stripe_api_base": f"http://127.0.0.1:{closed_port()}",
                                            "stripe_max_network_retries": 0})
    before = utcnow()
    assert refunds.execute_refund(settings=down,
                                  stripe_client=make_client(down), refund_id=refund.id)
    fresh(db, refund)
    assert (refund.status, refund.attempts, refund.stripe_refund_id) == ("pending", 1, None)
    assert "APIConnectionError" in refund.last_error
    wait = (refund.next_attempt_at - before).total_seconds()
    assert 29 <= wait <= 31  # first backoff: retry_base_seconds
    assert db.get(Contract, contract.id).status == "cancelled"  # never half done
    db.commit()
    assert run_refunds(settings=mail_settings,
                       stripe_client=make_client(mail_settings), limit=10) == 0  # not due yet
    assert stripe_refunds(order) == []
    # Time passes: the retry is due.
    db.exec(sa.update(Refund).values(next_attempt_at=utcnow() - timedelta(seconds=1)))
    db.commit()
    assert run_refunds(settings=mail_settings,
                       stripe_client=make_client(mail_settings), limit=10) == 1
    assert run_refunds(settings=mail_settings,
                       stripe_client=make_client(mail_settings), limit=10) == 0
    fresh(db, refund)
    assert (refund.status, refund.attempts, refund.last_error) == ("succeeded", 2, None)
    assert stripe_refunds(order) == [(5058, refund_key(contract))]


def test_a_refund_stripe_made_before_a_crash_is_adopted_not_repeated(db, mail_settings):
    order, (contract,) = stripe_paid_order(db, purchase_date=date(2026, 1, 10))
    refund = cancel_in_db(db, mail_settings, contract, date(2026, 7, 1))
    # Stripe made the refund, then the process died before recording it.
    made = stripe.Refund.create(payment_intent=order.stripe_payment_intent_id, amount=5058,
                                metadata={refunds.METADATA_KEY: refund.idempotency_key})
    assert run_refunds(settings=mail_settings,
                       stripe_client=make_client(mail_settings), limit=10) == 1
    fresh(db, refund)
    assert (refund.status, refund.stripe_refund_id) == ("succeeded", made.id)
    assert stripe_refunds(order) == [(5058, refund_key(contract))]


def test_refund_beyond_what_stripe_still_holds_fails_for_a_person(db, mail_settings):
    order, (contract,) = stripe_paid_order(db, purchase_date=date(2026, 1, 10))
    stripe.Refund.create(payment_intent=order.stripe_payment_intent_id,
                         amount=order.total_amount - 1000)  # refunded elsewhere
    refund = cancel_in_db(db, mail_settings, contract, date(2026, 7, 1))
    assert run_refunds(settings=mail_settings,
                       stripe_client=make_client(mail_settings), limit=10) == 1
    fresh(db, refund)
    assert refund.status == "failed" and "exceed" in refund.last_error
    assert [amount for amount, _ in stripe_refunds(order)] == [order.total_amount - 1000]
    assert run_refunds(settings=mail_settings,
                       stripe_client=make_client(mail_settings), limit=10) == 0


def test_refunds_on_an_order_never_exceed_what_was_paid(db, mail_settings, staff_headers):
    order, (first, second) = stripe_paid_order(db, quantity=2, plan_quantity=2,
                                               purchase_date=date(2026, 1, 10))
    order.total_amount = 9000  # arranged: only this much was taken for the order
    db.add(order)
    db.commit()
    cancel_in_db(db, mail_settings, first, date(2026, 1, 20))  # free look: ¥6,000
    api = create_app(mail_settings).test_client()
    res = api.post(f"/api/v1/contracts/{second.public_id}/cancel", headers=staff_headers,
                   json={"amount": 6000, "cancel_date": "2026-01-20", "reason": "asked",
                         "backdate_reason": BACKDATED})
    assert res.status_code == 409 and res.json["error"]["code"] == "over_refund"
    db.expire_all()
    assert db.get(Contract, second.id).status == "active"
    assert len(db.exec(select(Refund)).all()) == 1


def test_concurrent_confirms_make_one_refund(ops_app, db, staff_headers):
    order, (contract,) = stripe_paid_order(db, purchase_date=date(2026, 1, 10))
    url = f"/api/v1/contracts/{contract.public_id}/cancel"
    body = {"amount": 5058, "cancel_date": "2026-07-01", "reason": "asked twice",
            "backdate_reason": BACKDATED}
    start, results = threading.Barrier(6), []

    def confirm():
        client = ops_app.test_client()
        start.wait()
        res = client.post(url, headers=staff_headers, json=body)
        results.append((res.status_code, res.json))

    threads = [threading.Thread(target=confirm) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    statuses = sorted(status for status, _ in results)
    assert statuses == [200] + [409] * 5, results
    assert {r["error"]["code"] for s, r in results if s == 409} <= {
        "transition_refused", "concurrent_change"}
    assert stripe_refunds(order) == [(5058, refund_key(contract))]
    cancelled = db.exec(select(ContractEvent).where(ContractEvent.action == "cancelled")).all()
    assert len(cancelled) == 1


def test_concurrent_workers_refund_each_contract_once(db, mail_settings):
    order, created = stripe_paid_order(db, quantity=4, plan_quantity=4,
                                       purchase_date=date(2026, 1, 10))
    for contract in created:
        cancel_in_db(db, mail_settings, contract, date(2026, 7, 1))
    start = threading.Barrier(4)

    def work():
        start.wait()
        run_refunds(settings=mail_settings, stripe_client=make_client(mail_settings), limit=2)
        run_refunds(settings=mail_settings, stripe_client=make_client(mail_settings), limit=2)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(stripe_refunds(order)) == sorted((5058, refund_key(c)) for c in created)
    statuses = db.exec(select(Refund.status, Refund.attempts)).all()
    assert statuses == [("succeeded", 1)] * 4


def test_returned_units_cancel_their_plans_with_full_refunds(api, db, staff_headers):
    order, created = stripe_paid_order(db, quantity=3, plan_quantity=2,
                                       purchase_date=date(2026, 1, 10))
    url = f"/api/v1/orders/{order.public_id}/lines/1/returns"
    kept_covered = api.post(url, headers=staff_headers, json={"quantity": 1, "reason": "RMA-1"})
    assert kept_covered.status_code == 200, kept_covered.json
    assert (kept_covered.json["refunded_quantity"], kept_covered.json["cancelled"]) == (1, [])
    two_more = api.post(url, headers=staff_headers, json={"quantity": 2, "reason": "RMA-2"})
    assert two_more.json["refunded_quantity"] == 3
    cancelled = two_more.json["cancelled"]
    assert [(c["refund"]["amount"], c["refund"]["status"]) for c in cancelled] == [
        (6000, "succeeded"), (6000, "succeeded")]
    assert sorted(stripe_refunds(order)) == sorted((6000, refund_key(c)) for c in created)
    over = api.post(url, headers=staff_headers, json={"quantity": 1})
    assert over.status_code == 409 and over.json["error"]["code"] == "over_return"
    history = api.get(f"/api/v1/contracts/{created[0].public_id}", headers=staff_headers).json
    assert history["history"][1]["action"] == "product_returned"
    assert history["history"][1]["data"]["refund"]["rule"] == "product_returned"


def test_a_refund_whose_attempt_breaks_backs_off_and_the_others_still_go(db, mail_settings):
    broken_order, (broken,) = stripe_paid_order(db, purchase_date=date(2026, 1, 10),
                                                order_ref="A-1")
    order, (contract,) = stripe_paid_order(db, purchase_date=date(2026, 1, 10),
                                           order_ref="A-2")
    first = cancel_in_db(db, mail_settings, broken, date(2026, 7, 1))
    second = cancel_in_db(db, mail_settings, contract, date(2026, 7, 1))
    # Arranged: the order lost its payment's id after the refund was promised (a bad manual
    # fix, say). Its attempt can never succeed: it fails for a person, before Stripe is asked.
    broken_order.stripe_payment_intent_id = None
    db.add(broken_order)
    db.commit()
    assert run_refunds(settings=mail_settings,
                       stripe_client=make_client(mail_settings), limit=10) == 2
    fresh(db, first)
    fresh(db, second)
    assert (second.status, second.attempts) == ("succeeded", 1)
    assert stripe_refunds(order) == [(5058, refund_key(contract))]
    assert (first.status, first.attempts) == ("failed", 1)
    assert "no Stripe payment" in first.last_error and first.next_attempt_at is None
    assert run_refunds(settings=mail_settings,
                       stripe_client=make_client(mail_settings), limit=10) == 0
