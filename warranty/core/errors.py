"""Domain errors: a stable code, a readable message and an HTTP status."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of every error the service reports to a caller."""

    code = "error"
    status = 400

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None,
                 details: Any = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        if status:
            self.status = status
        self.details = details

    def to_dict(self) -> dict:
        """The JSON body: ``{"error": {"code", "message"[, "details"]}}``."""
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            body["details"] = self.details
        return {"error": body}


class ValidationFailed(DomainError):
    """The request body or query did not match its schema."""

    code = "invalid_request"
    status = 422


class NotFound(DomainError):
    """The named thing does not exist (or is not the caller's to see)."""

    code = "not_found"
    status = 404


class Unauthorized(DomainError):
    """Missing or wrong credentials."""

    code = "unauthorized"
    status = 401


class Forbidden(DomainError):
    """Credentials are valid but do not allow this."""

    code = "forbidden"
    status = 403


class Conflict(DomainError):
    """The request conflicts with the current state."""

    code = "conflict"
    status = 409


class InvalidRules(DomainError):
    """A pricing rule set that cannot be accepted."""

    code = "invalid_rules"
    status = 422


class InvalidOffer(DomainError):
    """An offer token that is forged, altered, expired or for something else."""

    code = "invalid_offer"
    status = 422


class OfferStale(InvalidOffer):
    """An offer made before the product's price or the pricing rules changed: the shopper's
    page shows what is no longer offered; ask for fresh offers (the embed does, once)."""

    code = "offer_stale"
    status = 409


class PaymentProviderError(DomainError):
    """Stripe could not be reached or refused the call."""

    code = "payment_provider_error"
    status = 502
