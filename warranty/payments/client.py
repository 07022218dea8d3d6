"""The Stripe connection: the official SDK, pointed at Stripe or the local stand-in."""

from __future__ import annotations

import stripe

from warranty.core.settings import Settings


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


def is_permanent(exc: stripe.StripeError) -> bool:
    """Whether Stripe's answer will be the same however often the call is made again.

    A request Stripe refused as invalid (400: ``charge_already_refunded``,
    ``amount_too_large``, ...; 404 ``resource_missing``; 402) or an idempotency key reused
    with other parameters will never succeed: a person has to look. Network errors, 5xx,
    429 (rate limit) and 409 (lock timeout) pass, and so may 401/403: those are our own
    configuration (a rotated key), fixed once for every call, so they are retried too.
    """
    if isinstance(exc, (stripe.APIConnectionError, stripe.RateLimitError,
                        stripe.AuthenticationError, stripe.PermissionError)):
        return False
    if isinstance(exc, stripe.IdempotencyError):
        return True
    status = getattr(exc, "http_status", None)
    return status in (400, 402, 404)


def describe(exc: stripe.StripeError) -> str:
    """One line naming Stripe's error: class, HTTP status, code and message."""
    code = getattr(exc, "code", None)
    status = getattr(exc, "http_status", None)
    parts = [type(exc).__name__] + [str(part) for part in (status, code) if part]
    message = getattr(exc, "user_message", None) or str(exc) or ""
    return f"{' '.join(parts)}: {message}"[:2000]
