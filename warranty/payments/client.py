"""The Stripe connection: the official SDK's client, pointed at Stripe or the local stand-in."""

from __future__ import annotations

import stripe

from warranty.core.settings import Settings

StripeClient = stripe.StripeClient


def make_client(settings: Settings) -> stripe.StripeClient:
    """The one Stripe client of an app, worker or command, built from its settings.

    It carries the API key, the base address (``WARRANTY_STRIPE_API_BASE``: the local
    stand-in, or Stripe itself), the request timeout and the retries; nothing is read from
    or written to the SDK's module globals (``stripe.api_key``, ``stripe.api_base``), so two
    apps in one process each reach their own Stripe. Network errors and 5xx are retried by
    the SDK with the same idempotency key.
    """
    return stripe.StripeClient(
        settings.stripe_api_key or "sk_missing",
        base_addresses={"api": settings.stripe_api_base or "https://api.stripe.com"},
        max_network_retries=settings.stripe_max_network_retries,
        http_client=stripe.RequestsClient(timeout=settings.stripe_timeout_seconds),
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
