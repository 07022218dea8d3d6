"""The post-purchase page: a signed link lets a customer add a plan to an earlier order."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from sqlmodel import select

from warranty.core import money
from warranty.core.dates import store_today
from warranty.core.errors import DomainError
from warranty.core.text import whole_number
from warranty.coverage.dates import WAITING_PERIOD_DAYS
from warranty.http.checkout import hosted
from warranty.http.session import get_session
from warranty.http.web.pages import POLL_SECONDS, POLL_TIMES, order_state, page_language, protect
from warranty.orders import cart
from warranty.orders.models import Order
from warranty.post_purchase import plans as post_purchase
from warranty.pricing import terms

bp = Blueprint("plans_add", __name__)
protect(bp)  # CSRF on the form, like every page


@bp.after_request
def _allow_payment_redirect(response):
    """The form's POST redirects to the payment page: allow that host as a form target.

    Browsers apply form-action to the redirect after a form post; the default page policy
    (form-action 'self') would block the hop to Stripe's hosted page.
    """
    base = current_app.config["SETTINGS"].stripe_api_base
    payment_origin = base.rstrip("/") if base else "https://checkout.stripe.com"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'self'; img-src 'self'; "
        f"form-action 'self' {payment_origin}; base-uri 'none'; frame-ancestors 'none'")
    return response


def _context(token: str) -> dict:
    """The order line behind a link and the plans it can still get."""
    settings = current_app.config["SETTINGS"]
    session = get_session()
    order_id, line_no = post_purchase.read_post_purchase_link(settings, token)
    order = post_purchase.get_order(session, order_id)
    lines = post_purchase.post_purchase_lines(session=session, settings=settings, order=order)
    line = next((entry for entry in lines if entry["line_no"] == line_no), None)
    if line is None:
        raise cart.CartError("this order has no such line", code="unknown_line")
    waiting = (store_today(settings.timezone) + timedelta(days=WAITING_PERIOD_DAYS)).isoformat()
    for offer in line["offers"]:
        offer["price_text"] = money.format_amount(offer["price"], offer["currency"])
        # The final-confirmation items, in both languages like the rest of this page.
        item = terms.offer_confirmation(settings, offer, waiting_until=waiting)
        offer["confirm"] = {lang: item.items(lang)[1:] for lang in ("ja", "en")}
    return {"order": order, "line": line, "token": token,
            "open_units": line["quantity"] - line["covered_quantity"]}


@bp.get("/plans/add")
def show():
    """Plans the customer can add for the linked line."""
    return render_template("plans/add.html", **_context(request.args.get("token", "")))


@bp.post("/plans/add")
def buy():
    """Start the hosted checkout for the chosen plan; errors re-render the page."""
    settings = current_app.config["SETTINGS"]
    token = request.form.get("token", "")
    context = _context(token)
    chosen = next((o for o in context["line"]["offers"]
                   if o["plan_code"] == request.form.get("plan_code")), None)
    if chosen is None:
        return render_template("plans/add.html", error="add.choose", **context), 422
    try:
        quantity = whole_number(request.form.get("quantity", "1"))
        if quantity is None:
            raise ValueError("quantity is not a whole number")
        root = request.url_root.rstrip("/")
        body = post_purchase.PostPurchaseIn(
            order_id=context["order"].public_id, line_no=context["line"]["line_no"],
            offer_token=chosen["offer_token"], quantity=quantity,
            # Stripe puts the session's id in place of the braces: the page finds the order.
            success_url=root + url_for("plans_add.done") + "?session_id={CHECKOUT_SESSION_ID}",
            cancel_url=root + url_for("plans_add.show", token=token),
            lang=page_language())
        priced = post_purchase.price_post_purchase(session=get_session(), settings=settings,
                                              body=body)
        _, stripe_session = hosted(priced, body.success_url, body.cancel_url,
                                   locale=page_language())
    except ValueError:
        return render_template("plans/add.html", error="add.bad_quantity", **context), 422
    except DomainError as exc:
        return render_template("plans/add.html", error="add.refused", error_code=exc.code,
                               error_message=exc.message, **context), 422
    return redirect(stripe_session.url, code=303)


@bp.get("/plans/added")
def done():
    """Where Stripe sends the customer back after paying: the plan order's payment state
    (waiting, then paid), and the way to the customer's plans."""
    order = None
    session_id = request.args.get("session_id") or ""
    if session_id:
        order = get_session().exec(select(Order).where(
            Order.stripe_checkout_session_id == session_id[:200])).first()
    state = "unknown" if order is None else order_state(order)
    polls = whole_number(request.args.get("poll")) or 0
    refresh = None
    if state == "waiting" and polls < POLL_TIMES:
        refresh = url_for("plans_add.done", session_id=session_id, poll=polls + 1)
    elif state == "waiting":
        state = "slow"
    return render_template("plans/added.html", order=order, state=state, refresh=refresh,
                           poll_seconds=POLL_SECONDS)
