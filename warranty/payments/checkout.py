"""The Stripe side of checkout: a Checkout Session (hosted page) or a PaymentIntent for a pending
order.
"""

from __future__ import annotations

import stripe
from sqlmodel import Session

from warranty.core.dates import utcnow
from warranty.core.errors import PaymentProviderError
from warranty.core.tax import TaxPolicy
from warranty.db.engine import write_transaction
from warranty.orders.models import Order, OrderLine

# A post-purchase Checkout Session closes after Stripe's minimum, 30 minutes (plus a minute,
# so that a clock a little behind Stripe's is not refused), instead of Stripe's default day.
POST_PURCHASE_SESSION_SECONDS = 30 * 60 + 60


def _stripe_call(order: Order, call, params: dict, idempotency_key: str):
    """Call Stripe; a failure marks nothing here but becomes a 502 with Stripe's reason."""
    try:
        return call(params=params, options={"idempotency_key": idempotency_key})
    except stripe.StripeError as exc:
        message = getattr(exc, "user_message", None) or str(exc) or exc.__class__.__name__
        raise PaymentProviderError(f"Stripe refused to start the payment for order "
                                   f"{order.public_id}: {message}") from None


# Stripe's limits: a product description, and custom_text's submit message.
DESCRIPTION_MAX = 1000
CUSTOM_TEXT_MAX = 1200


def _product_data(line: OrderLine, descriptions: dict[int, str]) -> dict:
    """The line's name and, for a plan, its final-confirmation items as the description."""
    data = {"name": line.title}
    description = descriptions.get(line.line_no)
    if description:
        data["description"] = description[:DESCRIPTION_MAX]
    return data


def checkout_line_items(order: Order, lines: list[OrderLine], tax: TaxPolicy | None,
                        descriptions: dict[int, str] | None = None) -> list[dict]:
    """The Checkout Session's line items: each line at its shown price (a plan described by
    its final-confirmation items), and, when the tax is added to the prices (exclusive),
    one line of the order's tax at the store's rate (worked out once per order, so it is not
    spread over unit prices). They sum to the order total."""
    descriptions = descriptions or {}
    items = [{"quantity": line.quantity,
              "price_data": {"currency": order.currency, "unit_amount": line.unit_price,
                             "product_data": _product_data(line, descriptions)}}
             for line in lines]
    added = sum(line.gross - line.amount for line in lines)
    if added:
        items.append({"quantity": 1,
                      "price_data": {"currency": order.currency, "unit_amount": added,
                                     "product_data": {"name": f"Tax ({tax.percent})" if tax
                                                      else "Tax"}}})
    return items


def start_checkout_session(*, stripe_client: stripe.StripeClient, order: Order,
                           lines: list[OrderLine], success_url: str, cancel_url: str,
                           tax: TaxPolicy | None = None,
                           descriptions: dict[int, str] | None = None,
                           submit_message: str = ""):
    """Create the Stripe Checkout Session for a pending order (no database work).

    A post-purchase plan's session expires early, so that an abandoned one is soon closed.
    The payment page shows each plan's final-confirmation items (``descriptions``, by line
    number) and, above the pay button, ``submit_message`` (the cancellation conditions and
    the terms' address).
    """
    metadata = {"order_id": order.public_id, "order_ref": order.store_order_ref}
    extra = {}
    if order.channel == "post_purchase":
        extra["expires_at"] = int(utcnow().timestamp()) + POST_PURCHASE_SESSION_SECONDS
    if submit_message:
        extra["custom_text"] = {"submit": {"message": submit_message[:CUSTOM_TEXT_MAX]}}
    return _stripe_call(order, stripe_client.v1.checkout.sessions.create, {
        **extra,
        "mode": "payment",
        "line_items": checkout_line_items(order, lines, tax, descriptions),
        "customer_email": order.customer_email,
        "client_reference_id": order.public_id,
        "success_url": success_url, "cancel_url": cancel_url,
        "metadata": metadata, "payment_intent_data": {"metadata": metadata},
    }, f"checkout-session-{order.public_id}")


def start_payment_intent(*, stripe_client: stripe.StripeClient, order: Order):
    """Create the PaymentIntent for a pending order (no database work)."""
    return _stripe_call(order, stripe_client.v1.payment_intents.create, {
        "amount": order.total_amount, "currency": order.currency,
        "payment_method_types": ["card"],
        "metadata": {"order_id": order.public_id, "order_ref": order.store_order_ref},
    }, f"payment-intent-{order.public_id}")


def mark_failed_to_start(*, session: Session, order: Order) -> None:
    """Stripe refused to start: the pending order stays on record as failed."""
    write_transaction(session)
    order.status = "failed"
    order.updated_at = utcnow()
    session.add(order)
