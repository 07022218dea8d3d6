"""A contract and its refund as the API and the store's webhooks show them."""

from __future__ import annotations

from datetime import date

from warranty.contracts.models import Contract
from warranty.orders.models import Order, Refund


def public_dict(contract: Contract, order: Order) -> dict:
    """A contract as the API and the store's webhooks show it."""
    def day(value: date | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "id": contract.public_id, "status": contract.status,
        "order": order.public_id, "store_order_ref": order.store_order_ref,
        "customer_email": contract.customer_email, "sku": contract.sku,
        "product_title": contract.product_title, "product_price": contract.product_price,
        "plan_code": contract.plan_code, "coverage": contract.coverage,
        "term_months": contract.term_months, "price": contract.price,
        "currency": contract.currency, "deductible": contract.deductible,
        "liability_schedule": [str(p) for p in contract.liability_schedule],
        "purchase_date": day(contract.purchase_date), "plan_sold_on": day(contract.plan_sold_on),
        "term_end": day(contract.term_end), "breakdown_start": day(contract.breakdown_start),
        "accident_start": day(contract.accident_start),
        "waiting_until": day(contract.waiting_until),
        "rule_set_version": contract.rule_set_version,
        "terms_version": contract.terms_version,
    }


def refund_dict(refund: Refund, contract: Contract) -> dict:
    """A refund as the API and the store's webhooks show it."""
    return {
        "contract": contract.public_id, "amount": refund.amount, "currency": refund.currency,
        "status": refund.status, "cancel_date": refund.cancel_date.isoformat(),
        "booked_on": refund.booked_on.isoformat(), "fee": refund.fee,
        "claims_paid": refund.claims_paid, "reason": refund.reason,
        "stripe_refund_id": refund.stripe_refund_id, "stripe_status": refund.stripe_status,
        "attempts": refund.attempts,
        "last_error": refund.last_error,
        "completed_at": refund.completed_at.isoformat() if refund.completed_at else None,
    }
