"""A refund is what Stripe says it is: pending until Stripe settles it, and refunds made in
Stripe's dashboard recorded, reconciled and mapped to returned units.

Everything goes through HTTP, the real SDK and the stand-in, with its webhooks delivered to
the served app: the app learns what Stripe did only from Stripe's events (and its re-reads).
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
import stripe
from sqlmodel import select

from tests.factories import add_product, load_rules
from tests.stripe_helpers import order_state, pay_hosted, wait_for, wait_paid
from warranty.attention.models import AttentionItem
from warranty.contracts import refunds as contract_refunds
from warranty.contracts.models import Contract, ContractEvent
from warranty.core.dates import store_today, utcnow
from warranty.db.engine import Session, get_engine
from warranty.notify.models import OutboundWebhook
from warranty.orders.models import OrderEvent, OrderLine, Refund
from warranty.payments import refunds
from warranty.payments.client import make_client
from warranty.reports import Context, parse_period, run_report

URLS = {"success_url": "https://shop.example/ok", "cancel_url": "https://shop.example/no"}
TV, PLAN = 120000, 6000  # ¥120,000 TV; its standard-36 plan is 5%: ¥6,000


def buy(client, store_key, database_url, *, quantity=1, plans=1, card="pm_card_visa"):
    """TVs with standard plans bought on the hosted page and paid with ``card``."""
    offers = client.get("/api/v1/offers?sku=TV-1", headers=store_key).json["offers"]
    token = next(o for o in offers if o["plan_code"] == "standard-36")["offer_token"]
    res = client.post("/api/v1/checkout/sessions", headers=store_key, json={
        "order_ref": "R-1", "customer_email": "refunds@example.com", **URLS,
        "lines": [{"type": "product", "line_id": "p", "sku": "TV-1", "quantity": quantity,
                   "unit_price": TV},
                  {"type": "plan", "for_line": "p", "quantity": plans, "offer_token": token}]})
    assert res.status_code == 201, res.json
    assert pay_hosted(res.json["checkout_url"], card=card).status_code == 303
    return wait_paid(database_url, res.json["order_id"], contracts=plans)


def rows(database_url, model, *where):
    """Rows of ``model``, read fresh, oldest first."""
    with Session(get_engine(database_url)) as session:
        return list(session.exec(select(model).where(*where).order_by(model.id)).all())


def refund_of(database_url, contract) -> Refund:
    """The contract's refund, read fresh."""
    (refund,) = rows(database_url, Refund, Refund.contract_id == contract.id)
    return refund


def cancel(client, staff_headers, contract):
    """Confirm a free-look cancellation through the API."""
    res = client.post(f"/api/v1/contracts/{contract.public_id}/cancel", headers=staff_headers,
                      json={"amount": PLAN, "reason": "changed my mind"})
    assert res.status_code == 200, res.json
    return res.json


def stripe_refunds(order):
    """Stripe's refunds of the order's payment: (amount, our key or None), oldest first."""
    listing = stripe.Refund.list(payment_intent=order.stripe_payment_intent_id, limit=100)
    return sorted(((r.created, r.amount, r.metadata.to_dict().get(refunds.METADATA_KEY))
                   for r in listing.data), key=lambda item: item[0])


def actions(database_url, contract):
    """The contract's audit actions."""
    return [e.action for e in rows(database_url, ContractEvent,
                                   ContractEvent.contract_id == contract.id)]


def store_events(database_url, kind):
    """Store webhooks of one type."""
    return rows(database_url, OutboundWebhook, OutboundWebhook.type == kind)


def attention(database_url, kind):
    """Attention items of one kind."""
    return rows(database_url, AttentionItem, AttentionItem.kind == kind)


def _setup(db):
    load_rules(db)
    add_product(db)


def test_a_pending_refund_stays_pending_until_stripe_says_it_succeeded(
        stripe_live, stripe_app, stripe_standin, database_url, db, store_key, staff_headers):
    _setup(db)
    client = stripe_app.test_client()
    order, (contract,) = buy(client, store_key, database_url, card="pm_card_pendingRefund")
    answer = cancel(client, staff_headers, contract)
    assert answer["contract"]["status"] == "cancelled"
    assert (answer["refund"]["status"], answer["refund"]["stripe_status"]) == (
        "pending", "pending")
    stripe_id = answer["refund"]["stripe_refund_id"]
    assert stripe.Refund.retrieve(stripe_id).status == "pending"
    # Stripe's charge.refunded and refund.created arrive and change nothing: still pending.
    for kind in ("refund.created", "charge.refunded"):
        wait_for(lambda kind=kind: [e for e in _events(database_url, kind) if e.processed_at])
    assert rows(database_url, OrderEvent) == []
    refund = refund_of(database_url, contract)
    assert (refund.status, refund.stripe_status, refund.completed_at) == (
        "pending", "pending", None)
    assert "refund_succeeded" not in actions(database_url, contract)
    assert store_events(database_url, "refund.succeeded") == []
    # The worker never makes it again: it only reads Stripe's answer (an hour later).
    assert refund.next_attempt_at > utcnow() + timedelta(minutes=55)
    stripe_standin.settle_refund(stripe_id, "succeeded")
    wait_for(lambda: refund_of(database_url, contract).status == "succeeded")
    refund = refund_of(database_url, contract)
    assert (refund.stripe_status, refund.stripe_refund_id) == ("succeeded", stripe_id)
    assert actions(database_url, contract).count("refund_succeeded") == 1
    assert len(store_events(database_url, "refund.succeeded")) == 1
    assert [(amount, key) for _, amount, key in stripe_refunds(order)] == [
        (PLAN, contract_refunds.refund_key(contract))]


def _events(database_url, kind):
    """Stored Stripe events of one type."""
    from warranty.payments.models import StripeEvent

    return rows(database_url, StripeEvent, StripeEvent.type == kind)


def test_a_refund_stripe_fails_is_failed_for_a_person(
        stripe_live, stripe_app, stripe_standin, database_url, db, store_key, staff_headers):
    _setup(db)
    client = stripe_app.test_client()
    _, (contract,) = buy(client, store_key, database_url, card="pm_card_pendingRefund")
    stripe_id = cancel(client, staff_headers, contract)["refund"]["stripe_refund_id"]
    stripe_standin.settle_refund(stripe_id, "failed", "lost_or_stolen_card")
    wait_for(lambda: refund_of(database_url, contract).status == "failed")
    refund = refund_of(database_url, contract)
    assert refund.stripe_status == "failed" and "lost_or_stolen_card" in refund.last_error
    assert rows(database_url, Contract, Contract.id == contract.id)[0].status == "cancelled"
    assert "refund_failed" in actions(database_url, contract)
    (failed,) = store_events(database_url, "refund.failed")
    assert failed.payload["data"]["refund"]["stripe_status"] == "failed"
    (item,) = attention(database_url, "refund_failed")
    assert item.status == "open" and item.data["amount"] == PLAN
    assert item.data["stripe_refund_id"] == stripe_id and "lost_or_stolen_card" in item.summary


def test_stripe_may_fail_a_refund_it_reported_succeeded(
        stripe_live, stripe_app, stripe_standin, database_url, db, store_key, staff_headers):
    _setup(db)
    client = stripe_app.test_client()
    _, (contract,) = buy(client, store_key, database_url, card="pm_card_refundFail")
    answer = cancel(client, staff_headers, contract)
    assert answer["refund"]["status"] == "succeeded"
    stripe_standin.settle_refund(answer["refund"]["stripe_refund_id"], "failed")
    wait_for(lambda: refund_of(database_url, contract).status == "failed")
    assert actions(database_url, contract)[-2:] == ["refund_succeeded", "refund_failed"]
    assert len(attention(database_url, "refund_failed")) == 1


def test_the_worker_reads_a_pending_refund_again_if_its_event_never_comes(
        stripe_server, stripe_app, stripe_settings, stripe_standin, database_url, db,
        store_key, staff_headers):
    from warranty.payments import events as stripe_events

    _setup(db)
    client = stripe_app.test_client()
    offers = client.get("/api/v1/offers?sku=TV-1", headers=store_key).json["offers"]
    res = client.post("/api/v1/checkout/payment-intents", headers=store_key, json={
        "order_ref": "R-2", "customer_email": "poll@example.com",
        "lines": [{"type": "product", "line_id": "p", "sku": "TV-1", "quantity": 1,
                   "unit_price": TV},
                  {"type": "plan", "for_line": "p", "quantity": 1,
                   "offer_token": offers[0]["offer_token"]}]})
    intent = res.json["payment_intent_id"]
    stripe.PaymentIntent.modify(intent, payment_method="pm_card_pendingRefund")
    stripe.PaymentIntent.confirm(intent)
    # No webhooks here: the payment arrives as the worker's event recovery would apply it.
    (succeeded,) = [e for e in stripe.Event.list(type="payment_intent.succeeded").data
                    if e.data.object.id == intent]
    with Session(get_engine(database_url)) as session:
        stripe_events.record(session=session, event=succeeded)
        session.commit()
        stripe_events.process(session=session, settings=stripe_settings,
                              stripe_client=make_client(stripe_settings), event_id=succeeded.id,
                              event_type=succeeded.type, payload=succeeded.to_dict())
        session.commit()
    _, (contract,) = order_state(database_url, res.json["order_id"])
    stripe_id = cancel(client, staff_headers, contract)["refund"]["stripe_refund_id"]
    stripe_standin.settle_refund(stripe_id, "succeeded")
    stripe_client = make_client(stripe_settings)
    # Not due: a pending refund is read hourly.
    assert refunds.run_refunds(settings=stripe_settings, stripe_client=stripe_client) == 0
    assert refund_of(database_url, contract).status == "pending"
    db.exec(sa.update(Refund).values(next_attempt_at=utcnow() - timedelta(seconds=1)))
    db.commit()
    assert refunds.run_refunds(settings=stripe_settings,
                               stripe_client=make_client(stripe_settings)) == 1
    refund = refund_of(database_url, contract)
    assert (refund.status, refund.stripe_status) == ("succeeded", "succeeded")
    assert len(stripe.Refund.list(payment_intent=intent).data) == 1  # read, never made again


def _reconciliation(db, stripe_settings):
    """Today's reconciliation rows by order id, and its totals."""
    day = store_today(stripe_settings.timezone)
    db.commit()
    result = run_report("reconciliation", Context(session=db, settings=stripe_settings,
                  stripe_client=make_client(stripe_settings),
                                                  period=parse_period(day, day)))
    return {row["order"]: row for row in result.rows}, result.extra["totals"]


def _finance(db, stripe_settings):
    """Today's finance totals."""
    day = store_today(stripe_settings.timezone)
    db.commit()
    return run_report("finance", Context(session=db, settings=stripe_settings,
                  stripe_client=make_client(stripe_settings),
                                         period=parse_period(day, day))).extra["total"]


def test_a_product_refunded_in_the_dashboard_cancels_its_plan_like_a_return(
        stripe_live, stripe_app, stripe_settings, database_url, db, store_key):
    _setup(db)
    client = stripe_app.test_client()
    order, contracts = buy(client, store_key, database_url, quantity=2, plans=2)
    # The store refunds one TV in Stripe's dashboard (a plain refund, none of our metadata).
    outside = stripe.Refund.create(payment_intent=order.stripe_payment_intent_id, amount=TV,
                                   reason="requested_by_customer")
    # Product value 120,000 − 12,000 of plans held = 108,000: one unit is back. Its plan (the
    # latest unit's) is cancelled with a full refund through Stripe, as a return would be.
    latest = contracts[-1]
    wait_for(lambda: rows(database_url, Refund, Refund.contract_id == latest.id)
             and refund_of(database_url, latest).status == "succeeded")
    (external,) = rows(database_url, Refund, Refund.kind == "external")
    assert (external.contract_id, external.amount, external.status, external.stripe_refund_id) \
        == (None, TV, "succeeded", outside.id)
    plan_refund = refund_of(database_url, latest)
    assert (plan_refund.amount, plan_refund.covered_by_id) == (PLAN, None)
    assert [(amount, key) for _, amount, key in stripe_refunds(order)] == [
        (TV, None), (PLAN, contract_refunds.refund_key(latest))]
    statuses = {c.id: c.status for c in rows(database_url, Contract)}
    assert statuses == {contracts[0].id: "active", latest.id: "cancelled"}
    assert actions(database_url, latest)[1] == "product_returned"
    (line,) = rows(database_url, OrderLine, OrderLine.order_id == order.id,
                   OrderLine.kind == "product")
    assert line.refunded_quantity == 1
    (item,) = attention(database_url, "external_refund")
    assert item.data["amount"] == TV and item.data["stripe_refund_id"] == outside.id
    assert order_state(database_url, order.public_id)[0].status == "paid"
    # Finance: the ledger has the dashboard refund, so nothing differs, and the row says so.
    by_order, totals = _reconciliation(db, stripe_settings)
    row = by_order[order.public_id]
    assert (row["refunded_stripe"], row["refunded_ledger"], row["refunded_outside"],
            row["difference"], row["issue"]) == (TV + PLAN, TV + PLAN, TV, 0, None)
    assert outside.id in row["note"]
    assert (totals["refunded_outside"], totals["orders_refunded_outside"]) == (TV, 1)
    finance = _finance(db, stripe_settings)  # a plan refund, not the product's money
    assert (finance["gross_sales"], finance["refunds"], finance["cancellations"]) == (
        2 * PLAN, PLAN, 1)
    # The dashboard refund is accounted for (the unit it returned): no quote offers it.
    quote = stripe_app.test_client().get(
        f"/api/v1/contracts/{contracts[0].public_id}/cancellation-quote",
        headers={"Authorization": "Bearer test-admin-token"}).json
    assert quote["external_refunds"] == []


def test_a_dashboard_refund_of_a_unit_and_its_plan_is_not_refunded_twice(
        stripe_live, stripe_app, database_url, db, store_key):
    _setup(db)
    client = stripe_app.test_client()
    order, contracts = buy(client, store_key, database_url, quantity=2, plans=2)
    stripe.Refund.create(payment_intent=order.stripe_payment_intent_id, amount=TV + PLAN)
    latest = contracts[-1]
    wait_for(lambda: rows(database_url, Refund, Refund.contract_id == latest.id)
             and refund_of(database_url, latest).status == "succeeded")
    external = rows(database_url, Refund, Refund.kind == "external")[0]
    plan_refund = refund_of(database_url, latest)
    # The ¥6,000 beyond the unit's price paid the plan: recorded as covered, no second refund.
    assert (plan_refund.amount, plan_refund.covered_by_id, plan_refund.stripe_refund_id) == (
        PLAN, external.id, None)
    assert [amount for _, amount, _ in stripe_refunds(order)] == [TV + PLAN]
    assert rows(database_url, Contract, Contract.id == contracts[0].id)[0].status == "active"


def test_a_full_dashboard_refund_cancels_every_plan_without_a_second_refund(
        stripe_live, stripe_app, stripe_settings, database_url, db, store_key, smtp_sink):
    _setup(db)
    client = stripe_app.test_client()
    order, contracts = buy(client, store_key, database_url, quantity=2, plans=2)
    outside = stripe.Refund.create(payment_intent=order.stripe_payment_intent_id)  # all of it
    wait_for(lambda: order_state(database_url, order.public_id)[0].status == "refunded")
    assert [c.status for c in order_state(database_url, order.public_id)[1]] == [
        "cancelled", "cancelled"]
    (external,) = rows(database_url, Refund, Refund.kind == "external")
    assert (external.amount, external.stripe_refund_id) == (2 * TV + 2 * PLAN, outside.id)
    plan_refunds = rows(database_url, Refund, Refund.kind == "plan")
    assert [(r.amount, r.status, r.covered_by_id, r.stripe_refund_id) for r in plan_refunds] \
        == [(PLAN, "succeeded", external.id, None)] * 2
    assert [amount for _, amount, _ in stripe_refunds(order)] == [2 * TV + 2 * PLAN]
    (line,) = rows(database_url, OrderLine, OrderLine.order_id == order.id,
                   OrderLine.kind == "product")
    assert line.refunded_quantity == 2
    for contract in contracts:
        assert actions(database_url, contract)[1:] == ["product_returned", "refund_succeeded"]
    assert len(store_events(database_url, "contract.cancelled")) == 2
    by_order, _ = _reconciliation(db, stripe_settings)
    row = by_order[order.public_id]
    assert (row["refunded_stripe"], row["refunded_ledger"], row["difference"]) == (
        2 * TV + 2 * PLAN, 2 * TV + 2 * PLAN, 0)
    finance = _finance(db, stripe_settings)
    assert (finance["refunds"], finance["cancellations"]) == (2 * PLAN, 2)


def test_a_small_dashboard_refund_is_recorded_and_cancels_nothing(
        stripe_live, stripe_app, stripe_settings, database_url, db, store_key):
    _setup(db)
    client = stripe_app.test_client()
    order, (contract,) = buy(client, store_key, database_url)
    outside = stripe.Refund.create(payment_intent=order.stripe_payment_intent_id, amount=3000)
    wait_for(lambda: attention(database_url, "external_refund"))
    (external,) = rows(database_url, Refund, Refund.kind == "external")
    assert (external.amount, external.status) == (3000, "succeeded")
    assert rows(database_url, Contract)[0].status == "active"
    (item,) = attention(database_url, "external_refund")
    assert item.data["stripe_refund_id"] == outside.id and "¥3,000" in item.summary
    by_order, _ = _reconciliation(db, stripe_settings)
    assert by_order[order.public_id]["refunded_outside"] == 3000
    assert by_order[order.public_id]["difference"] == 0
    assert contract.id is not None


def test_a_plan_refunded_in_the_dashboard_is_cancelled_against_that_refund(
        stripe_live, stripe_app, stripe_settings, database_url, db, store_key, staff_headers):
    """The store gives a plan's price back in Stripe's dashboard (a person, not the
    service): nothing can tell it was for the plan, so nothing is cancelled. Staff then
    cancel the plan: the quote names the dashboard refund, and the cancellation recorded
    against it sends nothing to Stripe again, where a plain one would refund the plan twice."""
    _setup(db)
    client = stripe_app.test_client()
    order, (contract,) = buy(client, store_key, database_url)
    outside = stripe.Refund.create(payment_intent=order.stripe_payment_intent_id, amount=PLAN)
    wait_for(lambda: attention(database_url, "external_refund"))
    url = f"/api/v1/contracts/{contract.public_id}"
    quote = client.get(f"{url}/cancellation-quote", headers=staff_headers).json
    assert quote["amount"] == PLAN  # the free look
    assert quote["external_refunds"] == [
        {"stripe_refund_id": outside.id, "amount": PLAN, "unallocated": PLAN}]
    too_small = client.post(f"{url}/cancel", headers=staff_headers, json={
        "amount": PLAN, "reason": "refunded in the dashboard", "covered_by": "re_other"})
    assert (too_small.status_code, too_small.json["error"]["code"]) == (
        409, "unknown_external_refund")
    done = client.post(f"{url}/cancel", headers=staff_headers, json={
        "amount": PLAN, "reason": "refunded in the dashboard", "covered_by": outside.id})
    assert done.status_code == 200, done.json
    assert done.json["refund"]["status"] == "succeeded"
    (external,) = rows(database_url, Refund, Refund.kind == "external")
    plan_refund = refund_of(database_url, contract)
    assert (plan_refund.amount, plan_refund.covered_by_id, plan_refund.stripe_refund_id) == (
        PLAN, external.id, None)
    assert [amount for _, amount, _ in stripe_refunds(order)] == [PLAN]  # once, not twice
    by_order, _ = _reconciliation(db, stripe_settings)
    assert by_order[order.public_id]["difference"] == 0
    # The dashboard refund is spent: it cannot pay for another plan.
    again = client.get(f"{url}/cancellation-quote", headers=staff_headers)
    assert again.status_code == 409  # cancelled already


def test_a_dashboard_refund_pays_only_for_what_it_holds(
        stripe_live, stripe_app, database_url, db, store_key, staff_headers):
    _setup(db)
    client = stripe_app.test_client()
    order, (first, second) = buy(client, store_key, database_url, quantity=2, plans=2)
    outside = stripe.Refund.create(payment_intent=order.stripe_payment_intent_id,
                                   amount=PLAN + 1000)
    wait_for(lambda: attention(database_url, "external_refund"))
    body = {"amount": PLAN, "reason": "dashboard", "covered_by": outside.id}
    assert client.post(f"/api/v1/contracts/{first.public_id}/cancel", headers=staff_headers,
                       json=body).status_code == 200
    quote = client.get(f"/api/v1/contracts/{second.public_id}/cancellation-quote",
                       headers=staff_headers).json
    assert quote["external_refunds"] == [
        {"stripe_refund_id": outside.id, "amount": PLAN + 1000, "unallocated": 1000}]
    refused = client.post(f"/api/v1/contracts/{second.public_id}/cancel",
                          headers=staff_headers, json=body)
    assert (refused.status_code, refused.json["error"]["code"]) == (
        409, "external_refund_too_small")
    assert refused.json["error"]["details"] == {"unallocated": 1000, "amount": PLAN}
    assert rows(database_url, Contract, Contract.id == second.id)[0].status == "active"
