"""Domain errors: a stable code, a readable message and, where useful, details.

What a caller is told about them (the HTTP status, the JSON body) is decided by
warranty.http.errors; the command line prints the message. A subclass names a kind of failure
(not found, conflict, ...); a module's own errors subclass the kind they are.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of every error the service reports to a caller: the request cannot be done."""

    code = "error"

    def __init__(self, message: str, *, code: str | None = None, details: Any = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.details = details


class ValidationFailed(DomainError):
    """The input does not match what is accepted (schema, amounts, dates, files)."""

    code = "invalid_request"


class NotFound(DomainError):
    """The named thing does not exist (or is not the caller's to see)."""

    code = "not_found"


class Unauthorized(DomainError):
    """Missing or wrong credentials."""

    code = "unauthorized"


class Forbidden(DomainError):
    """Credentials are valid but do not allow this."""

    code = "forbidden"


class Conflict(DomainError):
    """The request conflicts with the current state."""

    code = "conflict"


class Unavailable(DomainError):
    """Something the request needs is not there for now (not configured, or down); try again."""

    code = "unavailable"


class InvalidRules(ValidationFailed):
    """A pricing rule set that cannot be accepted."""

    code = "invalid_rules"


class InvalidOffer(ValidationFailed):
    """An offer token that is forged, altered, expired or for something else."""

    code = "invalid_offer"


class OfferStale(InvalidOffer):
    """An offer made before the product's price or the pricing rules changed: the shopper's
    page shows what is no longer offered; ask for fresh offers (the embed does, once)."""

    code = "offer_stale"


class PaymentProviderError(DomainError):
    """Stripe could not be reached or refused the call."""

    code = "payment_provider_error"


class PaymentProviderUnavailable(Unavailable, PaymentProviderError):
    """Stripe could not be reached for now: the same call later may work (callers that catch
    PaymentProviderError catch it too)."""

    code = "stripe_unavailable"
