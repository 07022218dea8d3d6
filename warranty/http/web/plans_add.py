"""The post-purchase page: a signed link lets a customer add a plan to an earlier order."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, current_app, redirect, render_template, request, url_for

from warranty.core import money
from warranty.core.dates import store_today
from warranty.core.errors import DomainError
from warranty.core.text import whole_number
from warranty.coverage.dates import WAITING_PERIOD_DAYS
from warranty.http.checkout import hosted
from warranty.http.session import get_session
from warranty.http.web.pages import protect
from warranty.orders import cart
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
        return render_template("plans/add.html", error="Choose a plan. / プランを選んでください。",
                               **context), 422
    try:
        quantity = whole_number(request.form.get("quantity", "1"))
        if quantity is None:
            raise ValueError("quantity is not a whole number")
        body = post_purchase.PostPurchaseIn(
            order_id=context["order"].public_id, line_no=context["line"]["line_no"],
            offer_token=chosen["offer_token"], quantity=quantity,
            success_url=request.url_root.rstrip("/") + url_for("plans_add.done"),
            cancel_url=request.url_root.rstrip("/") + url_for("plans_add.show", token=token))
        priced = post_purchase.price_post_purchase(session=get_session(), settings=settings,
                                              body=body)
        _, stripe_session = hosted(priced, body.success_url, body.cancel_url)
    except (ValueError, DomainError) as exc:
        message = getattr(exc, "message", None) or "Check the quantity. / 数量を確認してください。"
        return render_template("plans/add.html", error=message, **context), 422
    return redirect(stripe_session.url, code=303)


@bp.get("/plans/added")
def done():
    """Where Stripe sends the customer back after paying."""
    return render_template("plans/added.html")
