"""What Stripe says was charged and refunded in a period (the reconciliation report's side)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

import stripe

from warranty.core.errors import PaymentProviderError


def _listings(stripe_client: stripe.StripeClient, window: dict) -> tuple[list, list]:
    """PaymentIntents and refunds created in ``window``, page by page.

    Stripe filters by ``created``; the local stand-in refuses that parameter, so there both
    whole lists are read and filtered by the caller (which checks ``created`` in any case).
    """
    v1 = stripe_client.v1
    try:
        intents = list(v1.payment_intents.list(params={"limit": 100, "created": window})
                       .auto_paging_iter())
        refunds = v1.refunds.list(params={"limit": 100, "created": window})
    except stripe.InvalidRequestError as exc:
        if "created" not in str(exc):
            raise
        intents = list(v1.payment_intents.list(params={"limit": 100}).auto_paging_iter())
        refunds = v1.refunds.list(params={"limit": 100})
    return intents, list(refunds.auto_paging_iter())


def stripe_side(stripe_client: stripe.StripeClient, start: datetime,
                end: datetime) -> tuple[dict, dict]:
    """Amounts charged per PaymentIntent, refunded per PaymentIntent, from Stripe."""
    low, high = int(start.timestamp()), int(end.timestamp())
    charged: dict[str, int] = {}
    refunded: dict[str, int] = defaultdict(int)
    window = {"gte": low, "lt": high}
    try:
        intents, refunds = _listings(stripe_client, window)
        for intent in intents:
            if low <= intent.created < high and intent.status == "succeeded":
                charged[intent.id] = getattr(intent, "amount_received", None) or intent.amount
        for refund in refunds:
            if low <= refund.created < high and refund.status == "succeeded":
                refunded[refund.payment_intent] += refund.amount
    except stripe.StripeError as exc:
        raise PaymentProviderError(f"Stripe could not be read: {exc.user_message or exc}") \
            from None
    return charged, dict(refunded)
