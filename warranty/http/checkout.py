"""Starting a payment for a priced cart: used by the checkout API and the post-purchase page."""

from __future__ import annotations

from warranty.core.errors import PaymentProviderError
from warranty.http.clients import stripe_client
from warranty.http.session import get_session
from warranty.orders import cart
from warranty.payments import checkout as payments_checkout


def start_payment(priced: cart.PricedCart, start):
    """Commit the order as pending, then ask Stripe (``start(order)``); record the id.

    If Stripe refuses or can't be reached, the order stays on record as failed and the
    caller gets the 502. Used by the API and the post-purchase page.
    """
    session = get_session()
    order = cart.save_pending(session=session, priced=priced)
    session.commit()
    try:
        stripe_object = start(order)
    except PaymentProviderError:
        payments_checkout.mark_failed_to_start(session=session, order=order)
        session.commit()
        raise
    if stripe_object.object == "checkout.session":
        order.stripe_checkout_session_id = stripe_object.id
    else:
        order.stripe_payment_intent_id = stripe_object.id
    session.add(order)
    session.commit()
    return order, stripe_object


def hosted(priced: cart.PricedCart, success_url: str, cancel_url: str):
    """Start a Checkout Session for a priced cart."""
    return start_payment(priced, lambda order: payments_checkout.start_checkout_session(
        stripe_client=stripe_client(), order=order, lines=priced.lines,
        success_url=success_url, cancel_url=cancel_url, tax=priced.tax,
        descriptions=priced.plan_descriptions(), submit_message=priced.submit_message()))
