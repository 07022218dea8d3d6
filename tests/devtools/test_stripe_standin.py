"""The local Stripe stand-in (devtools/stripe_standin.py), driven through the real stripe SDK."""

import json
import threading
import time
import urllib.error
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
import stripe

from devtools.stripe_standin import StripeStandin
from tests.conftest import POLL_SECONDS

PICKLE = Path("/tmp/localstripe.pickle")
SUCCESS_URL = "http://shop.test/thanks?session={CHECKOUT_SESSION_ID}"
JPY_LINES = [
    {"price_data": {"currency": "jpy", "unit_amount": 8800,
                    "product_data": {"name": "3-year accident plan"}}, "quantity": 1},
    {"price_data": {"currency": "jpy", "unit_amount": 2200,
                    "product_data": {"name": "2-year standard plan"}}, "quantity": 2},
]
USD_LINES = [{"price_data": {"currency": "usd", "unit_amount": 1999,
                             "product_data": {"name": "Phone plan"}}, "quantity": 2}]


@pytest.fixture
def standin(stripe_standin):
    """The session's stand-in (one per process), emptied around each test, the SDK on it."""
    stripe_standin.reset()
    stripe.api_key, stripe.api_base = "sk_test_x", stripe_standin.url
    yield stripe_standin
    stripe_standin.reset()
    assert not PICKLE.exists()


@pytest.fixture(scope="module")
def receiver():
    """A webhook endpoint on a free port; yields its URL and the (raw body, signature) it got."""
    deliveries = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            deliveries.append((body, self.headers["Stripe-Signature"]))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(POLL_SECONDS,), daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/stripe/webhook", deliveries
    server.shutdown()
    server.server_close()


def wait_for(predicate, timeout=5.0):
    """Poll until predicate() is truthy (webhooks arrive WEBHOOK_DELAY_SECONDS after the event)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError("timed out")


def create_session(lines=JPY_LINES, **params):
    """Create a payment-mode Checkout Session through the SDK."""
    return stripe.checkout.Session.create(
        mode="payment", line_items=lines, success_url=SUCCESS_URL,
        cancel_url="http://shop.test/cart", **params)


def pay(session, card="pm_card_visa"):
    """Submit the hosted payment page's form like a browser without JavaScript would."""
    return requests.post(session.url, data={"payment_method": card}, allow_redirects=False,
                         timeout=5)


def test_create_and_retrieve_jpy_session(standin):
    session = create_session(
        customer_email="taro@example.jp", client_reference_id="order-1",
        metadata={"order_id": "order-1"}, payment_intent_data={"metadata": {"order_id": "order-1"}})
    assert session.id.startswith("cs_test_")
    assert session.object == "checkout.session"
    assert (session.amount_total, session.amount_subtotal) == (13200, 13200)
    assert session.currency == "jpy"
    assert (session.status, session.payment_status, session.payment_intent) == (
        "open", "unpaid", None)
    assert session.url == f"{standin.url}/pay/{session.id}"
    assert session.metadata.to_dict() == {"order_id": "order-1"}
    assert session.customer_email == "taro@example.jp"
    assert session.client_reference_id == "order-1"
    assert session.livemode is False and session.mode == "payment"
    assert session.expires_at - session.created == 86400
    assert stripe.checkout.Session.retrieve(session.id).to_dict() == session.to_dict()


def test_line_items(standin):
    session = create_session()
    items = stripe.checkout.Session.list_line_items(session.id)
    assert items.object == "list"
    assert [(i.description, i.quantity, i.amount_total, i.price.unit_amount, i.currency)
            for i in items.data] == [("3-year accident plan", 1, 8800, 8800, "jpy"),
                                     ("2-year standard plan", 2, 4400, 2200, "jpy")]
    assert all(i.object == "item" and i.amount_subtotal == i.amount_total for i in items.data)


def test_hosted_page_without_javascript(standin):
    session = create_session(USD_LINES)
    assert session.amount_total == 3998 and session.currency == "usd"
    page = requests.get(session.url, timeout=5)
    assert page.status_code == 200 and "<script" not in page.text
    assert "Phone plan" in page.text and "$39.98" in page.text
    assert '<label for="pm_card_visa">Visa 4242 — succeeds</label>' in page.text
    assert '<label for="pm_card_chargeCustomerFail">Declined card</label>' in page.text
    assert '<button type="submit">Pay</button>' in page.text
    assert '<a href="http://shop.test/cart">Cancel</a>' in page.text
    assert "¥13,200" in requests.get(create_session().url, timeout=5).text


def test_pay_success(standin):
    session = create_session(payment_intent_data={"metadata": {"order_id": "order-2"}})
    response = pay(session)
    assert response.status_code == 303
    assert response.headers["Location"] == f"http://shop.test/thanks?session={session.id}"
    paid = stripe.checkout.Session.retrieve(session.id)
    assert (paid.status, paid.payment_status) == ("complete", "paid")
    intent = stripe.PaymentIntent.retrieve(paid.payment_intent)
    assert (intent.status, intent.amount, intent.currency) == ("succeeded", 13200, "jpy")
    assert intent.metadata.to_dict() == {"order_id": "order-2"}
    listed = stripe.checkout.Session.list(payment_intent=intent.id)
    assert [s.id for s in listed.data] == [session.id]
    again = pay(session)  # a second submit must not charge twice
    assert again.status_code == 409 and "already paid" in again.text
    assert stripe.checkout.Session.retrieve(session.id).payment_intent == intent.id


def test_declined_card_keeps_session_open(standin):
    session = create_session()
    response = pay(session, "pm_card_chargeCustomerFail")
    assert response.status_code == 402
    assert "Your card was declined" in response.text and "<form" in response.text
    still = stripe.checkout.Session.retrieve(session.id)
    assert (still.status, still.payment_status, still.payment_intent) == ("open", "unpaid", None)
    assert pay(session).status_code == 303  # the shopper retries with a good card


def test_expire(standin):
    session = create_session()
    expired = stripe.checkout.Session.expire(session.id)
    assert expired.status == "expired" and expired.payment_status == "unpaid"
    with pytest.raises(stripe.InvalidRequestError):
        stripe.checkout.Session.expire(session.id)
    assert "has expired" in requests.get(session.url, timeout=5).text
    assert pay(session).status_code == 409
    assert stripe.checkout.Session.retrieve(session.id).payment_intent is None


def test_webhooks_are_stripe_signed(standin, receiver):
    url, deliveries = receiver
    standin.register_webhook("checkout", url, "whsec_test",
                             ["checkout.session.completed", "checkout.session.expired"])
    paid, dropped = create_session(), create_session()
    assert pay(paid).status_code == 303
    stripe.checkout.Session.expire(dropped.id)

    def received(kind, session_id):
        """The verified event of this kind for this session, if it has arrived."""
        for body, signature in list(deliveries):
            event = stripe.Webhook.construct_event(body, signature, "whsec_test")
            if event.type == kind and event.data.object.id == session_id:
                return body, signature, event

    body, signature, event = wait_for(lambda: received("checkout.session.completed", paid.id))
    assert event.data.object.payment_status == "paid"
    assert event.data.object.payment_intent.startswith("pi_")
    assert stripe.Event.retrieve(event.id).type == "checkout.session.completed"
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body, signature, "whsec_wrong")
    wait_for(lambda: received("checkout.session.expired", dropped.id))
    kinds = {json.loads(body)["type"] for body, _ in deliveries}
    assert kinds <= {"checkout.session.completed", "checkout.session.expired"}


@pytest.mark.parametrize("params, param", [
    ({"line_items": [JPY_LINES[0], USD_LINES[0]]}, "line_items[1][price_data][currency]"),
    ({"line_items": [{"price_data": {**JPY_LINES[0]["price_data"], "unit_amount": 0},
                      "quantity": 1}]}, "line_items[0][price_data][unit_amount]"),
    ({"line_items": [{"price_data": {**JPY_LINES[0]["price_data"], "unit_amount": "12.5"},
                      "quantity": 1}]}, "line_items[0][price_data][unit_amount]"),
    ({"line_items": [{**JPY_LINES[0], "quantity": 0}]}, "line_items[0][quantity]"),
    ({"line_items": [{"price": "price_123", "quantity": 1}]}, "line_items[0]"),
    ({"line_items": []}, "line_items"),
    ({"line_items": [{"price_data": {**USD_LINES[0]["price_data"], "unit_amount": 13},
                      "quantity": 1}]}, "line_items"),
    ({"success_url": None}, "success_url"),
    ({"cancel_url": "shop.test/cart"}, "cancel_url"),
    ({"mode": "subscription"}, "mode"),
    ({"expires_at": 1}, "expires_at"),
    ({"payment_intent_data": {"description": "x"}}, "payment_intent_data[description]"),
    ({"shipping_options": [{"shipping_rate": "shr_1"}]}, "shipping_options"),
])
def test_bad_input_is_an_invalid_request(standin, params, param):
    full = {"mode": "payment", "line_items": JPY_LINES, "success_url": SUCCESS_URL,
            "cancel_url": "http://shop.test/cart", **params}
    with pytest.raises(stripe.InvalidRequestError) as caught:
        stripe.checkout.Session.create(**{k: v for k, v in full.items() if v is not None})
    assert caught.value.http_status == 400 and caught.value.param == param


@pytest.mark.parametrize("currency", ["kwd", "bhd", "jod", "omr", "tnd"])
def test_three_decimal_amounts_must_end_in_zero(standin, currency):
    """As on Stripe: charges and refunds of three-decimal currencies in steps of 10."""
    lines = [{"price_data": {"currency": currency, "unit_amount": 12345,
                             "product_data": {"name": "TV"}}, "quantity": 1}]
    with pytest.raises(stripe.InvalidRequestError) as session:
        create_session(lines=lines)
    assert session.value.param == "line_items[0][price_data][unit_amount]"
    with pytest.raises(stripe.InvalidRequestError) as intent:
        stripe.PaymentIntent.create(amount=12345, currency=currency, confirm=True,
                                    payment_method="pm_card_visa")
    assert intent.value.http_status == 400 and intent.value.param == "amount"
    paid = stripe.PaymentIntent.create(amount=12340, currency=currency, confirm=True,
                                       payment_method="pm_card_visa")
    with pytest.raises(stripe.InvalidRequestError):
        stripe.Refund.create(payment_intent=paid.id, amount=4554)
    assert stripe.Refund.create(payment_intent=paid.id, amount=4550).status == "succeeded"
    lines[0]["price_data"]["unit_amount"] = 12340
    assert create_session(lines=lines).amount_total == 12340
    # Other currencies keep every minor unit.
    assert stripe.PaymentIntent.create(amount=12345, currency="usd").amount == 12345


def test_unknown_session(standin):
    with pytest.raises(stripe.InvalidRequestError) as caught:
        stripe.checkout.Session.retrieve("cs_test_missing")
    assert caught.value.http_status == 404 and caught.value.code == "resource_missing"
    assert requests.get(f"{standin.url}/pay/cs_test_missing", timeout=5).status_code == 404


def test_localstripe_behaviour_the_app_relies_on(standin):
    """PaymentIntents and refunds come from localstripe itself; pin down what it does."""
    intent = stripe.PaymentIntent.create(amount=5000, currency="jpy", confirm=True,
                                         payment_method="pm_card_visa", metadata={"k": "v"})
    assert intent.status == "succeeded"
    assert intent.latest_charge.id.startswith("ch_")  # an object here, an id string on Stripe
    with pytest.raises(stripe.CardError):
        stripe.PaymentIntent.create(amount=5000, currency="jpy", confirm=True,
                                    payment_method="pm_card_chargeCustomerFail")
    with pytest.raises(stripe.InvalidRequestError):
        stripe.PaymentIntent.create(amount=5000, currency="jpy", description="not accepted")
    refund = stripe.Refund.create(payment_intent=intent.id, amount=2000)
    assert (refund.status, refund.charge) == ("succeeded", intent.latest_charge.id)
    assert refund.payment_intent == intent.id
    with pytest.raises(stripe.InvalidRequestError) as over:  # more than the charge still holds
        stripe.Refund.create(payment_intent=intent.id, amount=9000)
    assert (over.value.http_status, over.value.code) == (400, "amount_too_large")
    rest = stripe.Refund.create(charge=intent.latest_charge.id)  # defaults to what is left
    assert (rest.amount, rest.payment_intent) == (3000, intent.id)
    listed = stripe.Refund.list(payment_intent=intent.id).data
    assert {r.id for r in listed} == {rest.id, refund.id}
    with pytest.raises(stripe.InvalidRequestError) as again:
        stripe.Refund.create(payment_intent=intent.id, amount=1)
    assert (again.value.http_status, again.value.code) == (400, "charge_already_refunded")
    charge = stripe.Charge.retrieve(intent.latest_charge.id)
    assert (charge.amount_refunded, charge.refunded) == (5000, True)


def test_only_loopback_and_one_per_process(standin):
    with pytest.raises(ValueError):
        StripeStandin(host="0.0.0.0")
    with pytest.raises(RuntimeError):
        StripeStandin().start()


def test_reset_forgets_everything(standin):
    session = create_session()
    standin.reset()
    with pytest.raises(stripe.InvalidRequestError):
        stripe.checkout.Session.retrieve(session.id)
    assert create_session().status == "open"  # still serving after the reset


def test_no_pickle_written(standin):
    assert not PICKLE.exists()


def paid_intent(amount=5000, card="pm_card_visa"):
    """A succeeded PaymentIntent paid with a test card."""
    return stripe.PaymentIntent.create(amount=amount, currency="jpy", confirm=True,
                                       payment_method=card)


def test_unknown_objects_are_resource_missing(standin):
    for call in (lambda: stripe.PaymentIntent.retrieve("pi_missing"),
                 lambda: stripe.Charge.retrieve("ch_missing"),
                 lambda: stripe.Refund.retrieve("re_missing"),
                 lambda: stripe.Refund.list(payment_intent="pi_missing"),
                 lambda: stripe.Refund.create(payment_intent="pi_missing", amount=100)):
        with pytest.raises(stripe.InvalidRequestError) as caught:
            call()
        assert caught.value.http_status == 404 and caught.value.code == "resource_missing"
        assert "_missing'" in caught.value.user_message


def test_refund_events_carry_stripe_shaped_objects(standin, receiver):
    url, deliveries = receiver
    deliveries.clear()
    kinds = ["charge.refunded", "refund.created", "refund.updated", "charge.refund.updated",
             "refund.failed"]
    standin.register_webhook("refunds", url, "whsec_test", kinds)
    intent, failing = paid_intent(card="pm_card_pendingRefund"), None
    refund = stripe.Refund.create(payment_intent=intent.id, amount=1200,
                                  reason="requested_by_customer", metadata={"k": "v"})
    assert (refund.status, refund.reason, refund.payment_intent) == (
        "pending", "requested_by_customer", intent.id)

    def events(kind):
        """The verified deliveries of one kind so far, for this test's charges."""
        found = [stripe.Webhook.construct_event(body, signature, "whsec_test")
                 for body, signature in list(deliveries)]
        mine = {intent.latest_charge.id, failing.latest_charge.id if failing else None}
        return [event for event in found if event.type == kind and (
            event.data.object.to_dict().get("charge") or event.data.object.id) in mine]

    (charged,) = wait_for(lambda: events("charge.refunded"))
    charge = charged.data.object
    assert (charge.object, charge.id, charge.amount, charge.amount_refunded, charge.refunded) \
        == ("charge", intent.latest_charge.id, 5000, 1200, False)
    assert [(r.id, r.status) for r in charge.refunds.data] == [(refund.id, "pending")]
    (created,) = wait_for(lambda: events("refund.created"))
    assert (created.data.object.id, created.data.object.status) == (refund.id, "pending")
    assert stripe.Refund.retrieve(refund.id).status == "pending"  # until Stripe settles it

    standin.settle_refund(refund.id, "succeeded")
    (updated,) = wait_for(lambda: events("refund.updated"))
    assert updated.data.object.status == "succeeded"
    assert wait_for(lambda: events("charge.refund.updated"))[0].data.object.id == refund.id
    assert stripe.Refund.retrieve(refund.id).status == "succeeded"
    with pytest.raises(urllib.error.HTTPError):  # a succeeded card refund can't go back
        standin.settle_refund(refund.id, "pending")

    failing = paid_intent(card="pm_card_refundFail")
    doomed = stripe.Refund.create(payment_intent=failing.id)
    assert (doomed.status, doomed.amount) == ("succeeded", 5000)
    standin.settle_refund(doomed.id, "failed")
    (failed,) = wait_for(lambda: events("refund.failed"))
    assert (failed.data.object.status, failed.data.object.failure_reason) == (
        "failed", "expired_or_canceled_card")
    charge = stripe.Charge.retrieve(failing.latest_charge.id)
    assert (charge.amount_refunded, charge.refunded) == (0, False)  # the money came back


def test_sessions_expire_at_expires_at_with_the_event(standin, receiver):
    url, deliveries = receiver
    deliveries.clear()
    standin.register_webhook("expiry", url, "whsec_test", ["checkout.session.expired"])
    soon = create_session(expires_at=int(time.time()) + 1800)
    later = create_session()
    assert soon.expires_at - soon.created == 1800
    standin.advance_clock(1780)
    time.sleep(1)  # ten sweeps
    assert stripe.checkout.Session.retrieve(soon.id).status == "open"
    standin.advance_clock(20)

    def expired():
        """The expired events delivered so far, by session id."""
        events = [stripe.Webhook.construct_event(body, signature, "whsec_test")
                  for body, signature in list(deliveries)]
        return {event.data.object.id for event in events}

    assert wait_for(lambda: soon.id in expired())
    assert stripe.checkout.Session.retrieve(soon.id).status == "expired"
    assert stripe.checkout.Session.retrieve(later.id).status == "open"
    assert pay(soon).status_code == 409
    assert later.id not in expired()


@pytest.mark.parametrize("status, error", [(429, stripe.RateLimitError),
                                           (500, stripe.APIError),
                                           (400, stripe.InvalidRequestError)])
def test_faults_on_demand(standin, status, error):
    intent = paid_intent()
    client = stripe.StripeClient("sk_test_x", base_addresses={"api": standin.url},
                                 max_network_retries=0)
    standin.fail_next("POST", "/v1/refunds", status, code="charge_disputed" if status == 400
                      else None)
    with pytest.raises(error) as caught:
        client.v1.refunds.create(params={"payment_intent": intent.id, "amount": 100})
    assert caught.value.http_status == status
    assert stripe.Refund.list(payment_intent=intent.id).data == []
    assert client.v1.refunds.create(params={"payment_intent": intent.id,
                                            "amount": 100}).amount == 100  # only once


@pytest.mark.parametrize(("locale", "pay_label", "lang"), [("ja", "支払う", "ja"),
                                                            ("en", "Pay", "en"),
                                                            (None, "Pay", "en")])
def test_the_session_keeps_its_locale_and_the_hosted_page_speaks_it(standin, locale,
                                                                    pay_label, lang):
    session = create_session(**({"locale": locale} if locale else {}))
    assert stripe.checkout.Session.retrieve(session.id).locale == locale
    page = requests.get(session.url, timeout=5).text
    assert f'<html lang="{lang}">' in page
    assert '<p id="locale">' in page and f"<code>{locale or 'auto'}</code>" in page
    assert f'<button type="submit">{pay_label}</button>' in page
