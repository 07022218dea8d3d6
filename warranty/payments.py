"""The Stripe connection: the official SDK, pointed at Stripe or the local stand-in."""

from __future__ import annotations

import stripe

from warranty.settings import Settings


def configure_stripe(settings: Settings) -> None:
    """Point the SDK at ``WARRANTY_STRIPE_API_BASE`` (the stand-in) or Stripe itself.

    Only what is configured is set, so an app without Stripe settings (a test of the
    catalog, say) leaves the SDK as it found it.
    """
    if settings.stripe_api_key:
        stripe.api_key = settings.stripe_api_key
    if settings.stripe_api_base:
        stripe.api_base = settings.stripe_api_base
    # Network errors and 5xx are retried by the SDK with the same idempotency key.
    stripe.max_network_retries = settings.stripe_max_network_retries


def stripe_client(settings: Settings) -> stripe.StripeClient:
    """A client for this call's settings, so a worker never depends on global SDK state."""
    return stripe.StripeClient(
        settings.stripe_api_key or "sk_missing",
        base_addresses={"api": settings.stripe_api_base or "https://api.stripe.com"},
        max_network_retries=settings.stripe_max_network_retries,
    )
