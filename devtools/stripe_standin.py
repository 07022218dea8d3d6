"""Local Stripe stand-in for tests and the demo, built on localstripe.

localstripe (GPL-3.0) is a dev/test dependency only: this file imports it, never copies its code,
and nothing under ``warranty/`` may import this module. What localstripe lacks for us — Checkout
Sessions and their hosted payment page — is added here as routes on localstripe's aiohttp app.

    standin = StripeStandin(); base = standin.start()   # tests: WARRANTY_STRIPE_API_BASE=base
    python -m devtools.stripe_standin --port 12111                  # make demo

Where localstripe answers differently from Stripe in ways the service depends on, this file
wraps it (never edits it) to answer as Stripe does:

- Refunds: ``POST /v1/refunds`` refuses what Stripe refuses (400 ``charge_already_refunded``,
  400 ``amount_too_large``, 404 ``resource_missing`` for an unknown PaymentIntent or charge),
  defaults to what the charge still holds, carries ``payment_intent`` and ``reason``, and sends
  ``charge.refunded`` and ``refund.created``. A charge's ``amount_refunded`` leaves out failed
  and canceled refunds. Stripe's refund test cards work: a charge paid with
  ``pm_card_pendingRefund`` gets refunds that stay ``pending``; one paid with
  ``pm_card_refundFail`` gets refunds that succeed, then fail. What Stripe does "some time
  later" happens when a test asks: ``POST /_config/refunds/{id}`` with ``{"status":
  "succeeded" | "failed" | "canceled"}`` (``StripeStandin.settle_refund``) moves the refund
  and sends ``refund.updated`` and ``charge.refund.updated`` (and ``refund.failed``).
- Unknown objects: every 404 is Stripe's ``resource_missing`` error naming the object.
- Webhooks are sent asynchronously, ``webhook_delay`` seconds after their event (localstripe's
  one second unless ``StripeStandin(webhook_delay=...)`` says otherwise; the tests use less).
- Checkout Sessions expire on their own at ``expires_at`` (a sweep every tenth of a second sends
  ``checkout.session.expired``). ``POST /_config/clock`` with ``{"advance": seconds}``
  (``StripeStandin.advance_clock``) moves the clock that expiry reads, so a test can let 30
  minutes pass at once; ``{"offset": 0}`` puts it back.
- Faults on demand: ``POST /_config/faults`` with ``{"method", "path", "status", "times",
  "code"?, "message"?}`` (``StripeStandin.fail_next``) makes the next ``times`` requests whose
  path starts with ``path`` answer that Stripe error (429 rate limit, 500, 400, ...).

localstripe's state (one store, one webhook table, one app) is process-global, so a process runs
one stand-in at a time. Its pickle persistence (/tmp/localstripe.pickle) is switched off on import.
"""

import argparse
import asyncio
import html
import ipaddress
import json
import logging
import re
import signal
import socket
import threading
import time
import urllib.request
import warnings

from aiohttp import web

from warranty.core.money import THREE_DECIMAL, format_amount  # the package never imports us

with warnings.catch_warnings():
    # localstripe registers plain (non-async) handlers, which aiohttp 3.x deprecates at import.
    warnings.filterwarnings("ignore", "Bare functions are deprecated", DeprecationWarning)
    from localstripe import server as ls_server
    from localstripe import webhooks as ls_webhooks
    from localstripe.errors import UserError
    from localstripe.resources import (
        Charge,
        Event,
        List,
        PaymentIntent,
        PaymentMethod,
        Refund,
        StripeObject,
        random_id,
        store,
    )
    from localstripe.webhooks import schedule_webhook


def _no_disk(*_args) -> None:
    """Replace localstripe's pickle load/dump: the stand-in keeps its state in memory only."""


# localstripe pickles its whole store to /tmp/localstripe.pickle on every write (Store.__setitem__,
# __delitem__ and a middleware after each POST) and its own CLI reloads it. Shadowing both methods
# on the single store instance means no file is ever read or written; the package stays untouched.
store.dump_to_disk = _no_disk
store.try_load_from_disk = _no_disk

_MINIMUM_TOTAL = {"jpy": 50, "usd": 50, "eur": 50, "cad": 50, "aud": 50, "gbp": 30}  # Stripe's
_MAXIMUM_TOTAL = 99_999_999
TEST_CARDS = {"pm_card_visa": "Visa 4242 — succeeds", "pm_card_chargeCustomerFail": "Declined card",
              "pm_card_pendingRefund": "Visa 7726 — succeeds; its refunds stay pending",
              "pm_card_refundFail": "Visa 5126 — succeeds; its refunds fail later"}
# Stripe's refund test cards (docs.stripe.com/testing#refunds), by their test PaymentMethod ids.
REFUND_TEST_CARDS = {"pm_card_pendingRefund": "4000000000007726",
                     "pm_card_refundFail": "4000000000005126"}
_clock = {"offset": 0.0}  # seconds added to the time Checkout Session expiry reads
_faults: list[dict] = []  # injected errors, consumed in order


def _now() -> float:
    """The stand-in's clock for Checkout Session expiry (tests may move it forward)."""
    return time.time() + _clock["offset"]


def _fail(message: str, param: str | None = None, status: int = 400, code: str | None = None):
    """Raise a Stripe-shaped error; localstripe's error middleware turns it into JSON."""
    extra = {key: value for key, value in (("param", param), ("code", code)) if value}
    raise UserError(status, message, extra or None)


def _integer(value, param: str, minimum: int) -> int:
    """Parse an integer sent form-encoded (digits only, no "12.5") the way Stripe checks it."""
    if value is None or value == "":
        _fail(f"Missing required param: {param}.", param)
    if isinstance(value, bool) or not re.fullmatch(r"-?\d+", str(value)):
        _fail(f"Invalid integer: {value}", param)
    if int(value) < minimum:
        _fail(f"This value must be greater than or equal to {minimum}.", param)
    return int(value)


def _three_decimal(amount, currency, param: str) -> None:
    """Refuse what Stripe refuses: a three-decimal currency's amount must end in 0.

    localstripe takes any amount; Stripe charges and refunds KWD, BHD, JOD, OMR and TND only
    in multiples of 10 minor units.
    """
    code = str(currency or "").lower()
    if code in THREE_DECIMAL and amount is not None and re.fullmatch(r"\d+", str(amount)) \
            and int(amount) % 10:
        _fail(f"Invalid amount {amount}: {code.upper()} amounts must be a multiple of 10 "
              "(the last digit must be 0).", param, code="amount_invalid")


def _guard_create(resource, currency_of) -> None:
    """Wrap localstripe's ``resource._api_create`` with the three-decimal amount rule."""
    create = resource._api_create.__func__

    def _api_create(cls, **data):
        """Check the amount, then create as localstripe does."""
        _three_decimal(data.get("amount"), currency_of(data), "amount")
        return create(cls, **data)

    resource._api_create = classmethod(_api_create)


_guard_create(PaymentIntent, lambda data: data.get("currency"))


def _url(value, param: str) -> str:
    """Require an absolute http(s) URL, as hosted Checkout does for its redirects."""
    if not value:
        _fail(f"Missing required param: {param}.", param)
    if not re.match(r"https?://[^/\s]+", str(value)):
        _fail("Not a valid URL", param)
    return str(value)


def _metadata(value, param: str) -> dict:
    """Validate metadata: at most 50 keys, keys up to 40 characters, string values up to 500."""
    if value in (None, ""):
        return {}
    if not isinstance(value, dict) or len(value) > 50 or any(
            len(key) > 40 or not isinstance(item, str) or len(item) > 500
            for key, item in value.items()):
        _fail("Metadata: at most 50 keys of up to 40 characters, string values up to 500.", param)
    return dict(value)


def _unknown(data: dict, allowed: set, within: str = "") -> None:
    """Reject parameters Stripe would not accept here, naming the first one like Stripe does."""
    for key in sorted(data.keys() - allowed):
        param = f"{within}[{key}]" if within else key
        _fail(f"Received unknown parameter: {param}", param)


class CheckoutSession(StripeObject):
    """A ``checkout.session`` (payment mode, price_data lines) kept in localstripe's store."""

    object = "checkout.session"
    _id_prefix = "cs_test_"

    def __init__(self, base_url: str, /, **params):
        """Validate every parameter before storing anything, then build the open session."""
        _unknown(params, {"mode", "line_items", "success_url", "cancel_url", "customer_email",
                          "client_reference_id", "metadata", "payment_intent_data", "expires_at",
                          "locale", "payment_method_types", "custom_text"})
        if params.get("mode") != "payment":
            _fail("The stand-in supports only mode=payment.", "mode")
        success_url = _url(params.get("success_url"), "success_url")
        cancel_url = _url(params.get("cancel_url"), "cancel_url")
        lines = self._parse_lines(params.get("line_items"))
        currency, total = lines[0]["currency"], sum(line["amount_total"] for line in lines)
        minimum = _MINIMUM_TOTAL.get(currency, 1)
        if total < minimum:
            _fail(f"The total must be at least {format_amount(minimum, currency)}.", "line_items",
                  code="amount_too_small")
        if total > _MAXIMUM_TOTAL:
            _fail("The total must be at most 99,999,999 minor units.", "line_items",
                  code="amount_too_large")
        metadata = _metadata(params.get("metadata"), "metadata")
        intent_data = params.get("payment_intent_data") or {}
        if not isinstance(intent_data, dict):
            _fail("Invalid object", "payment_intent_data")
        _unknown(intent_data, {"metadata"}, "payment_intent_data")
        intent_metadata = _metadata(intent_data.get("metadata"), "payment_intent_data[metadata]")
        now = int(time.time())
        expires_at = params.get("expires_at")
        expires_at = now + 86400 if expires_at is None else _integer(expires_at, "expires_at", 0)
        if not now + 1800 - 60 <= expires_at <= now + 86400 + 60:  # a minute of clock slack
            _fail("expires_at must be 30 minutes to 24 hours after creation.", "expires_at")

        super().__init__()  # assigns id/created/livemode and stores the object
        self.mode, self.currency, self.metadata = "payment", currency, metadata
        self.amount_subtotal = self.amount_total = total
        self.status, self.payment_status, self.payment_intent = "open", "unpaid", None
        self.customer_email = params.get("customer_email")
        self.client_reference_id = params.get("client_reference_id")
        self.success_url, self.cancel_url = success_url, cancel_url
        self.url = f"{base_url}/pay/{self.id}"
        self.expires_at = expires_at
        self.locale = params.get("locale")
        self.custom_text = self._custom_text(params.get("custom_text"))
        self.payment_method_types = ["card"]
        self._line_items, self._intent_metadata = lines, intent_metadata
        self._declined_intents = []  # failed attempts, kept for the record

    @staticmethod
    def _custom_text(value) -> dict:
        """custom_text[submit][message] (and Stripe's other positions), at most 1,200
        characters each, as Checkout takes them."""
        if value in (None, ""):
            return {"after_submit": None, "shipping_address": None, "submit": None,
                    "terms_of_service_acceptance": None}
        if not isinstance(value, dict):
            _fail("Invalid object", "custom_text")
        positions = ("after_submit", "shipping_address", "submit", "terms_of_service_acceptance")
        _unknown(value, set(positions), "custom_text")
        out = {}
        for position in positions:
            part = value.get(position)
            if part in (None, ""):
                out[position] = None
                continue
            if not isinstance(part, dict):
                _fail("Invalid object", f"custom_text[{position}]")
            _unknown(part, {"message"}, f"custom_text[{position}]")
            message = part.get("message")
            if not isinstance(message, str) or not message.strip() or len(message) > 1200:
                _fail("The message must be 1 to 1200 characters.",
                      f"custom_text[{position}][message]")
            out[position] = {"message": message}
        return out

    @staticmethod
    def _parse_lines(items) -> list[dict]:
        """Turn line_items[N][price_data]/[quantity] into Stripe ``item`` objects, or fail."""
        if not isinstance(items, list) or not items:
            _fail("Missing required param: line_items.", "line_items")
        lines = []
        for n, item in enumerate(items):
            at = f"line_items[{n}]"
            if not isinstance(item, dict) or "price" in item:
                _fail("The stand-in supports only price_data lines, not price IDs.", at)
            _unknown(item, {"price_data", "quantity"}, at)
            price = item.get("price_data")
            if not isinstance(price, dict):
                _fail(f"Missing required param: {at}[price_data].", f"{at}[price_data]")
            _unknown(price, {"currency", "unit_amount", "product_data"}, f"{at}[price_data]")
            currency = str(price.get("currency", "")).lower()
            if not re.fullmatch(r"[a-z]{3}", currency):
                _fail(f"Invalid currency: {currency}", f"{at}[price_data][currency]")
            if lines and currency != lines[0]["currency"]:
                _fail("All line items must use the same currency.", f"{at}[price_data][currency]")
            unit = _integer(price.get("unit_amount"), f"{at}[price_data][unit_amount]", 1)
            _three_decimal(unit, currency, f"{at}[price_data][unit_amount]")
            product = price.get("product_data")
            name = product.get("name") if isinstance(product, dict) else None
            if not isinstance(name, str) or not name.strip():
                _fail(f"Missing required param: {at}[price_data][product_data][name].",
                      f"{at}[price_data][product_data][name]")
            description = product.get("description")
            if description is not None and (not isinstance(description, str)
                                            or not description.strip()):
                _fail("The description must be a non-empty string.",
                      f"{at}[price_data][product_data][description]")
            quantity = _integer(item.get("quantity"), f"{at}[quantity]", 1)
            lines.append({"id": "li_" + random_id(14), "object": "item", "currency": currency,
                          "amount_subtotal": unit * quantity, "amount_total": unit * quantity,
                          "amount_discount": 0, "amount_tax": 0, "description": name,
                          "quantity": quantity, "price": {"object": "price", "type": "one_time",
                                                          "currency": currency,
                                                          "unit_amount": unit},
                          "_product_description": description})
        return lines

    @classmethod
    def _api_retrieve(cls, id):
        """Return a session (expired first if its time is up) or a Stripe-like 404."""
        session = store.get(f"{cls.object}:{id}")
        if session is None:
            _fail(f"No such checkout.session: '{id}'", "session", 404, "resource_missing")
        if session.status == "open" and _now() >= session.expires_at:
            session._finish("expired")
        return session

    def _finish(self, status: str, payment_intent: str | None = None) -> None:
        """Close the session as "complete" (paid) or "expired" and fire Stripe's event."""
        self.status = status
        if status == "complete":
            self.payment_status, self.payment_intent = "paid", payment_intent
        event = "completed" if status == "complete" else status
        schedule_webhook(Event(f"{self.object}.{event}", self))


async def _create_session(request):
    """POST /v1/checkout/sessions (form-encoded like the SDK sends it, or JSON)."""
    data = dict(await ls_server.get_post_data(request) or {})
    expand = data.pop("expand", None)
    session = CheckoutSession(f"{request.scheme}://{request.host}", **data)
    return ls_server.json_response(session._export(expand=expand))


async def _get_session(request):
    """GET /v1/checkout/sessions/{id}."""
    expand = ls_server.unflatten_data(request.query).get("expand")
    session = CheckoutSession._api_retrieve(request.match_info["id"])
    return ls_server.json_response(session._export(expand=expand))


async def _list_line_items(request):
    """GET /v1/checkout/sessions/{id}/line_items (all lines on one page)."""
    session = CheckoutSession._api_retrieve(request.match_info["id"])
    items = [{key: value for key, value in line.items() if not key.startswith("_")}
             for line in session._line_items]
    return ls_server.json_response({"object": "list", "data": items,
                                    "has_more": False, "url": request.path})


async def _list_sessions(request):
    """GET /v1/checkout/sessions, newest first, optionally filtered by payment_intent."""
    query = ls_server.unflatten_data(request.query)
    expand, intent = query.pop("expand", None), query.pop("payment_intent", None)
    page = List(request.path, query.pop("limit", None), query.pop("starting_after", None))
    _unknown(query, set())
    keys = [key for key in store if key.startswith(CheckoutSession.object + ":")]
    sessions = [CheckoutSession._api_retrieve(key.split(":", 1)[1]) for key in reversed(keys)]
    page._list = [s for s in sessions if intent is None or s.payment_intent == intent]
    return ls_server.json_response(page._export(expand=expand))


async def _expire_session(request):
    """POST /v1/checkout/sessions/{id}/expire: only an open session can be expired."""
    session = CheckoutSession._api_retrieve(request.match_info["id"])
    if session.status != "open":
        _fail(f"Only open sessions can be expired; this one is {session.status}.", "session")
    session._finish("expired")
    return ls_server.json_response(session._export())


# --- refunds as Stripe makes and reports them ------------------------------------------

_REFUND_REASONS = {"duplicate", "fraudulent", "requested_by_customer"}
_FINAL_AFTER = {"pending": {"succeeded", "failed", "canceled"},
                "requires_action": {"succeeded", "failed", "canceled"},
                "succeeded": {"failed"}}  # what Stripe may still do to a refund


def _refund_card(charge) -> str | None:
    """The refund test card a charge was paid with, if any."""
    method = store.get(f"payment_method:{charge.payment_method}")
    number = getattr(method, "_card_number", None)
    return next((pm for pm, card in REFUND_TEST_CARDS.items() if card == number), None)


def _charge_to_refund(data: dict):
    """The charge a refund request names (by PaymentIntent or charge), or Stripe's 404."""
    intent_id, charge_id = data.get("payment_intent"), data.get("charge")
    if intent_id is not None and charge_id is None:
        intent = store.get(f"payment_intent:{intent_id}")
        if intent is None:
            _fail(f"No such payment_intent: '{intent_id}'", "payment_intent", 404,
                  "resource_missing")
        if intent.latest_charge is None or intent.status != "succeeded":
            _fail(f"PaymentIntent {intent_id} has no successful charge to refund.",
                  "payment_intent", code="charge_not_refundable")
        return intent.latest_charge
    if charge_id is not None and intent_id is None:
        charge = store.get(f"charge:{charge_id}")
        if charge is None:
            _fail(f"No such charge: '{charge_id}'", "charge", 404, "resource_missing")
        return charge
    _fail("Provide exactly one of charge or payment_intent.", "payment_intent")


def _create_refund(cls, **data):
    """``POST /v1/refunds`` as Stripe answers it (localstripe's Refund does the bookkeeping)."""
    _unknown(data, {"charge", "payment_intent", "amount", "metadata", "reason"})
    reason = data.pop("reason", None)
    if reason is not None and reason not in _REFUND_REASONS:
        _fail(f"Invalid reason: must be one of {', '.join(sorted(_REFUND_REASONS))}", "reason")
    data["metadata"] = _metadata(data.get("metadata"), "metadata")
    charge = _charge_to_refund(data)
    held = charge.amount - charge.amount_refunded
    if held <= 0:
        _fail(f"Charge {charge.id} has already been refunded.", "charge",
              code="charge_already_refunded")
    amount = held if data.get("amount") in (None, "") else _integer(data["amount"], "amount", 1)
    if amount > held:
        _fail(f"Refund amount ({format_amount(amount, charge.currency)}) is greater than "
              f"unrefunded amount on charge ({format_amount(held, charge.currency)})",
              "amount", code="amount_too_large")
    _three_decimal(amount, charge.currency, "amount")
    data["amount"] = amount
    refund = StripeObject._api_create.__func__(cls, **data)  # localstripe's Refund(...)
    refund.payment_intent = charge.payment_intent  # Stripe always names it
    refund.reason, refund.failure_reason = reason, None
    if _refund_card(charge) == "pm_card_pendingRefund":
        refund.status = "pending"
    schedule_webhook(Event("charge.refunded", charge))
    schedule_webhook(Event("refund.created", refund))
    return refund


def _amount_refunded(charge) -> int:
    """What a charge has given back: its refunds that did not fail or get canceled."""
    return sum(refund.amount for refund in charge.refunds._list
               if refund.status not in ("failed", "canceled"))


Refund._api_create = classmethod(_create_refund)  # what localstripe's POST /v1/refunds calls
Charge.amount_refunded = property(_amount_refunded)  # ``refunded`` follows from it
_canonical_test_method = PaymentMethod._try_get_canonical_test_article.__func__


def _test_method(cls, id):
    """localstripe's test PaymentMethods, plus Stripe's refund test cards."""
    number = REFUND_TEST_CARDS.get(id)
    if number is not None:
        return PaymentMethod(type="card", card={"number": number, "exp_month": "12",
                                                "exp_year": "2030", "cvc": "123"})
    return _canonical_test_method(cls, id)


PaymentMethod._try_get_canonical_test_article = classmethod(_test_method)


async def _settle_refund(request):
    """POST /_config/refunds/{id} ``{"status": ...}``: what Stripe does to a refund later."""
    data = await ls_server.get_post_data(request) or {}
    refund_id = request.match_info["id"]
    refund = store.get(f"refund:{refund_id}")
    if refund is None:
        _fail(f"No such refund: '{refund_id}'", "id", 404, "resource_missing")
    status = data.get("status")
    if status not in _FINAL_AFTER.get(refund.status, set()):
        _fail(f"A {refund.status} refund cannot become {status}.", "status")
    refund.status = status
    if status == "failed":
        refund.failure_reason = data.get("failure_reason") or "expired_or_canceled_card"
    kinds = ["refund.updated", "charge.refund.updated"]
    if status == "failed":
        kinds.append("refund.failed")
    for kind in kinds:
        schedule_webhook(Event(kind, refund))
    return ls_server.json_response(refund._export())


# --- Stripe's errors: resource_missing, and faults on demand ---------------------------

_OBJECT_PATH = re.compile(r"^/v1/([a-z_]+?)s/([^/]+)")


@web.middleware
async def _stripe_shaped_errors(request, handler):
    """localstripe's bare 404 "Not Found" becomes Stripe's ``resource_missing`` error."""
    try:
        return await handler(request)
    except UserError as exc:
        error = exc.body.setdefault("error", {})
        if exc.code == 404 and "code" not in error:
            match = _OBJECT_PATH.match(request.path)
            if match:  # GET /v1/payment_intents/pi_x, ...
                kind, value, param = match[1], match[2], "id"
            else:  # a list filtered by an unknown object: GET /v1/refunds?payment_intent=...
                param = next((key for key in ("payment_intent", "charge")
                              if key in request.query), None)
                kind, value = param or "object", request.query.get(param or "", "")
            error.update(code="resource_missing", message=f"No such {kind}: '{value}'")
            if param:
                error["param"] = param
        raise


@web.middleware
async def _injected_faults(request, handler):
    """Answer the next request a test asked to fail (``POST /_config/faults``) with its error."""
    for fault in list(_faults):
        if request.method == fault["method"] and request.path.startswith(fault["path"]):
            fault["times"] -= 1
            if fault["times"] <= 0:
                _faults.remove(fault)
            error = UserError(fault["status"], fault["message"],
                              {"code": fault["code"]} if fault["code"] else None)
            if fault["status"] >= 500:
                error.body["error"]["type"] = "api_error"
            raise error
    return await handler(request)


async def _add_fault(request):
    """POST /_config/faults: fail the next ``times`` matching requests with ``status``."""
    data = await ls_server.get_post_data(request) or {}
    status = _integer(data.get("status"), "status", 400)
    _faults.append({"method": str(data.get("method", "POST")).upper(),
                    "path": str(data.get("path") or "/v1/"), "status": status,
                    "times": _integer(data.get("times", 1), "times", 1),
                    "code": data.get("code"),
                    "message": data.get("message") or f"Injected error {status}"})
    return web.Response()


async def _clear_faults(request):
    """DELETE /_config/faults."""
    _faults.clear()
    return web.Response()


async def _set_clock(request):
    """POST /_config/clock ``{"advance": s}`` or ``{"offset": s}``: move expiry's clock."""
    data = await ls_server.get_post_data(request) or {}
    if "offset" in data:
        _clock["offset"] = float(_integer(data["offset"], "offset", 0))
    else:
        _clock["offset"] += float(_integer(data.get("advance"), "advance", 0))
    return ls_server.json_response({"now": int(_now()), "offset": _clock["offset"]})


SWEEP_SECONDS = 0.1


async def _expire_due_sessions() -> None:
    """Expire open Checkout Sessions whose ``expires_at`` has come, as Stripe does."""
    while True:
        await asyncio.sleep(SWEEP_SECONDS)
        now = _now()
        for key, session in list(store.items()):
            if key.startswith(CheckoutSession.object + ":") and session.status == "open" \
                    and now >= session.expires_at:
                session._finish("expired")


def _page(session, error: str | None = None, status: int = 200) -> web.Response:
    """Render the hosted payment page: plain HTML that works without JavaScript."""
    esc = html.escape
    def item(line) -> str:
        """A line's name, and its product description (a plan's confirmation items)."""
        about = line.get("_product_description")
        return esc(line["description"]) + (f'<br><small class="product-description">'
                                           f"{esc(about)}</small>" if about else "")

    rows = "".join(f"<tr><td>{item(line)}</td><td>{line['quantity']}</td>"
                   f"<td>{format_amount(line['amount_total'], line['currency'])}</td></tr>"
                   for line in session._line_items)
    submit = (session.custom_text or {}).get("submit")
    submit_text = (f'<p class="custom-text-submit">{esc(submit["message"])}</p>'
                   if submit else "")
    if session.status == "open":
        cards = "".join(f'<p><input type="radio" name="payment_method" id="{pm}" value="{pm}"'
                        f'{" checked" if n == 0 else ""}> <label for="{pm}">{esc(label)}</label>'
                        for n, (pm, label) in enumerate(TEST_CARDS.items()))
        body = (f'<form method="post" action="/pay/{session.id}"><fieldset><legend>Test card'
                f'</legend>{cards}</fieldset>{submit_text}<p><button type="submit">Pay</button> '
                f'<a href="{esc(session.cancel_url)}">Cancel</a></p></form>')
    else:
        done = "is already paid" if session.status == "complete" else "has expired"
        body = f"<p>This checkout session {done}; no payment was taken.</p>"
    alert = f'<p role="alert"><strong>{esc(error)}</strong></p>' if error else ""
    text = (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Pay — Stripe '
            f"stand-in</title></head><body><h1>Checkout (Stripe stand-in)</h1>{alert}<table>"
            f"<thead><tr><th>Item</th><th>Qty</th><th>Amount</th></tr></thead><tbody>{rows}"
            f'</tbody><tfoot><tr><th colspan="2">Total</th><td>'
            f"{format_amount(session.amount_total, session.currency)}</td></tr></tfoot></table>"
            f"{body}</body></html>")
    return web.Response(text=text, status=status, content_type="text/html")


def _session_or_404(request):
    """Look up the hosted page's session, turning a miss into a readable HTML 404."""
    try:
        return CheckoutSession._api_retrieve(request.match_info["id"])
    except UserError:
        raise web.HTTPNotFound(text="No such checkout session.") from None


async def _show_page(request):
    """GET /pay/{id}."""
    return _page(_session_or_404(request))


async def _pay(request):
    """POST /pay/{id}: charge the chosen test card through localstripe's PaymentIntent."""
    session = _session_or_404(request)
    method = (await request.post()).get("payment_method")
    if session.status != "open":
        return _page(session, status=409)
    if method not in TEST_CARDS:
        return _page(session, "Choose one of the test cards.", 400)
    # No await from here on: the open-check and the completion are atomic on the event loop,
    # so a double-submitted form cannot pay twice.
    intent = PaymentIntent._api_create(amount=session.amount_total, currency=session.currency,
                                       payment_method=method,
                                       metadata=dict(session._intent_metadata))
    try:
        PaymentIntent._api_confirm(intent.id)  # fires payment_intent.succeeded / payment_failed
    except UserError as exc:
        session._declined_intents.append(intent.id)
        return _page(session, exc.body["error"].get("message", "Your card was declined."), 402)
    session._finish("complete", intent.id)
    raise web.HTTPSeeOther(session.success_url.replace("{CHECKOUT_SESSION_ID}", session.id))


@web.middleware
async def _auth_unless_hosted_page(request, handler):
    """localstripe's auth, except for /pay/: a shopper's browser has no secret key."""
    if request.path.startswith("/pay/"):
        return await handler(request)
    return await ls_server.auth_middleware(request, handler)


def _register_webhook_copy_on_write(id, url, secret, events):
    """localstripe's register_webhook, but swapping in a new table instead of mutating it.

    A delivery iterates the table across awaits; mutating it then raises "dictionary changed
    size during iteration" inside that delivery. Rebinding the module global never does.
    """
    ls_webhooks._webhooks = {**ls_webhooks._webhooks, id: ls_webhooks.Webhook(url, secret, events)}


_middlewares = ls_server.app.middlewares
_middlewares[_middlewares.index(ls_server.auth_middleware)] = _auth_unless_hosted_page
_after_errors = _middlewares.index(ls_server.error_middleware) + 1
_middlewares[_after_errors:_after_errors] = [_injected_faults, _stripe_shaped_errors]
ls_server.register_webhook = _register_webhook_copy_on_write  # what POST /_config/webhooks calls
for _method, _path, _handler in (
        ("POST", "/v1/checkout/sessions", _create_session),
        ("GET", "/v1/checkout/sessions", _list_sessions),
        ("GET", "/v1/checkout/sessions/{id}", _get_session),
        ("GET", "/v1/checkout/sessions/{id}/line_items", _list_line_items),
        ("POST", "/v1/checkout/sessions/{id}/expire", _expire_session),
        ("GET", "/pay/{id}", _show_page),
        ("POST", "/pay/{id}", _pay),
        ("POST", "/_config/refunds/{id}", _settle_refund),
        ("POST", "/_config/faults", _add_fault),
        ("DELETE", "/_config/faults", _clear_faults),
        ("POST", "/_config/clock", _set_clock)):
    ls_server.app.router.add_route(_method, _path, _handler)


class _DeliveryAsyncio:
    """What localstripe's webhooks module sees as ``asyncio``: the real module, except that
    its one sleep (the wait before each delivery) lasts ``delay`` seconds."""

    LOCALSTRIPE_DELAY = 1.0

    def __init__(self) -> None:
        self.delay = self.LOCALSTRIPE_DELAY

    def __getattr__(self, name):
        return getattr(asyncio, name)

    async def sleep(self, seconds, result=None):
        """asyncio.sleep, with localstripe's delivery delay replaced by ours."""
        if seconds == self.LOCALSTRIPE_DELAY:
            seconds = self.delay
        return await asyncio.sleep(seconds, result)


_delivery_asyncio = _DeliveryAsyncio()
ls_webhooks.asyncio = _delivery_asyncio  # only localstripe.webhooks' own name is rebound

_loop: asyncio.AbstractEventLoop | None = None
_lock = threading.Lock()
_running: "StripeStandin | None" = None


def _shared_loop() -> asyncio.AbstractEventLoop:
    """Return the stand-in's event loop, starting its daemon thread on first use.

    aiohttp binds an Application to the first loop that runs it and refuses any other, and
    localstripe has one module-level app, so every start() in a process must reuse this loop.
    """
    global _loop
    if _loop is None:  # callers hold _lock
        _loop = asyncio.new_event_loop()
        threading.Thread(target=_loop.run_forever, name="stripe-standin", daemon=True).start()
    return _loop


async def _serve(sock: socket.socket) -> web.AppRunner:
    """Serve localstripe's app (with our routes) on a bound socket, starting from no data."""
    store.clear()  # each start() is a fresh test account, even after an earlier stop()
    ls_webhooks._webhooks = {}
    _faults.clear()
    _clock["offset"] = 0.0
    asyncio.ensure_future(_expire_due_sessions())  # cancelled by _shutdown
    runner = web.AppRunner(ls_server.app, handle_signals=False, shutdown_timeout=1)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    return runner


async def _drop_deliveries() -> None:
    """Cancel webhook deliveries not sent yet (each waits ``webhook_delay`` first)."""
    for task in asyncio.all_tasks():
        if getattr(task.get_coro(), "__name__", "") == ls_webhooks._send_webhook.__name__:
            task.cancel()


async def _shutdown(runner: web.AppRunner) -> None:
    """Close the server, then cancel webhook deliveries still waiting to be sent."""
    await runner.cleanup()
    tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


class StripeStandin:
    """localstripe plus Checkout Sessions, served on a loopback port from a background thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *,
                 webhook_delay: float = _DeliveryAsyncio.LOCALSTRIPE_DELAY):
        """Remember where to listen; only IPv4 loopback addresses are allowed. Port 0 = free.

        ``webhook_delay``: seconds between an event and its delivery (each delivery is a task
        of its own, never part of the request that caused the event).
        """
        if not ipaddress.IPv4Address(host).is_loopback:
            raise ValueError(f"the Stripe stand-in listens on loopback only, not {host}")
        if webhook_delay < 0:
            raise ValueError("webhook_delay must not be negative")
        self.host, self.port = host, port
        self.webhook_delay = float(webhook_delay)
        self._runner: web.AppRunner | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        """Base URL to use as ``WARRANTY_STRIPE_API_BASE``, e.g. "http://127.0.0.1:54321"."""
        if self._url is None:
            raise RuntimeError("the Stripe stand-in is not running")
        return self._url

    def start(self) -> str:
        """Start serving in the background and return the base URL."""
        global _running
        with _lock:
            if _running is not None:
                raise RuntimeError("a Stripe stand-in already runs in this process")
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((self.host, self.port))
                future = asyncio.run_coroutine_threadsafe(_serve(sock), _shared_loop())
                self._runner = future.result(timeout=10)
                _delivery_asyncio.delay = self.webhook_delay
            except BaseException:
                sock.close()
                raise
            self._url = f"http://{self.host}:{sock.getsockname()[1]}"
            _running = self
        return self._url

    def stop(self) -> None:
        """Stop serving; webhook deliveries still pending are dropped."""
        global _running
        with _lock:
            if self._runner is not None:
                asyncio.run_coroutine_threadsafe(_shutdown(self._runner), _shared_loop()).result(10)
                self._runner, self._url, _running = None, None, None

    def _request(self, method: str, path: str, body: dict | None = None) -> dict | None:
        """Call one of the /_config endpoints on this server; its JSON answer, if any."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            text = response.read()
        return json.loads(text) if text else None

    def register_webhook(self, id: str, url: str, secret: str,
                         events: list[str] | None = None) -> None:
        """Deliver events (all, or only ``events``) to ``url``, signed with ``secret``."""
        body = {"url": url, "secret": secret}
        if events is not None:
            body["events"] = list(events)
        self._request("POST", f"/_config/webhooks/{id}", body)

    def reset(self) -> None:
        """Forget every object (localstripe's DELETE /_config/data), webhook, delivery not
        sent yet and fault, and put the expiry clock back: a fresh account for the next test
        (a late event of the last one would name objects that no longer exist)."""
        ls_webhooks._webhooks = {}  # rebind, never mutate: see _register_webhook_copy_on_write
        asyncio.run_coroutine_threadsafe(_drop_deliveries(), _shared_loop()).result(10)
        self._request("DELETE", "/_config/data")
        self._request("DELETE", "/_config/faults")
        self._request("POST", "/_config/clock", {"offset": 0})

    def settle_refund(self, refund_id: str, status: str, failure_reason: str | None = None
                      ) -> dict:
        """Do what Stripe does to a refund later: ``succeeded``, ``failed`` or ``canceled``."""
        body = {"status": status}
        if failure_reason:
            body["failure_reason"] = failure_reason
        return self._request("POST", f"/_config/refunds/{refund_id}", body)

    def advance_clock(self, seconds: int) -> None:
        """Let ``seconds`` pass for Checkout Session expiry (the sweep expires what is due)."""
        self._request("POST", "/_config/clock", {"advance": int(seconds)})

    def reset_faults(self) -> None:
        """Forget the faults not used up yet."""
        self._request("DELETE", "/_config/faults")

    def fail_next(self, method: str, path: str, status: int, *, times: int = 1,
                  code: str | None = None, message: str | None = None) -> None:
        """Answer the next ``times`` ``method`` requests under ``path`` with a Stripe error."""
        body = {"method": method, "path": path, "status": status, "times": times}
        body.update({key: value for key, value in (("code", code), ("message", message))
                     if value})
        self._request("POST", "/_config/faults", body)


def main(argv: list[str] | None = None) -> None:
    """``python -m devtools.stripe_standin --port 12111``: serve until Ctrl-C or SIGTERM."""
    parser = argparse.ArgumentParser(description="Local Stripe stand-in (localstripe + Checkout)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=12111)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")  # requests + webhook deliveries
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop cleanly under `make demo`
    standin = StripeStandin(args.host, args.port)
    print(standin.start(), flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        standin.stop()


if __name__ == "__main__":
    main()
