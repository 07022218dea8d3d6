"""A contract's refund as the books record it: its idempotency key, what is already promised
back on its order, a refund recorded as made (by Stripe, or by another refund that already
gave the money back), and what of a refund made in Stripe's dashboard is still unaccounted
for. No Stripe call here: warranty.payments.refunds executes refunds and records Stripe's
answers with these."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session, select

from warranty.contracts import lifecycle as contracts
from warranty.contracts import notices as notifications
from warranty.contracts.models import Contract
from warranty.core.dates import utcnow
from warranty.core.errors import Conflict
from warranty.core.money import format_amount
from warranty.orders.models import Order, OrderEvent, OrderLine, Refund


def refund_key(contract: Contract) -> str:
    """The idempotency key of a contract's refund: one contract, one refund."""
    return f"warranty-refund-{contract.public_id}"


def promised_on_order(session, order: Order) -> int:
    """Minor units already promised back on ``order`` (every refund not failed).

    A refund covered by another one moved no money of its own: the covering one counts it.
    """
    amounts = session.exec(select(Refund.amount).where(Refund.order_id == order.id,
                                                       Refund.status != "failed",
                                                       Refund.covered_by_id.is_(None))).all()
    return sum(amounts)


def order_event(session: Session, order: Order, action: str, data: dict,
                 reason: str = "", actor: str = "stripe") -> None:
    """An audit row on the order (refunds that belong to no contract)."""
    session.add(OrderEvent(order_id=order.id, action=action, actor=actor, reason=reason[:1000],
                           data=data))


def figures(refund: Refund, order: Order) -> dict:
    """A refund's figures for audit rows and the attention queue."""
    return {"refund_id": refund.id, "kind": refund.kind, "amount": refund.amount,
            "currency": refund.currency, "order": order.public_id,
            "order_total": order.total_amount,
            "stripe_payment_intent_id": order.stripe_payment_intent_id,
            "stripe_charge_id": order.stripe_charge_id,
            "stripe_refund_id": refund.stripe_refund_id, "stripe_status": refund.stripe_status}


def record_succeeded(session: Session, refund: Refund) -> None:
    """Record a refund Stripe made, audit it and tell the store."""
    refund.status, refund.completed_at = "succeeded", utcnow()
    refund.last_error, refund.next_attempt_at = None, None
    order = session.get(Order, refund.order_id)
    if refund.contract_id is None:
        order_event(session, order, "refund_succeeded", figures(refund, order))
        return
    contract = session.get(Contract, refund.contract_id)
    contracts.record(session=session, contract=contract, action="refund_succeeded",
                     actor="stripe", data={"amount": refund.amount, "currency": refund.currency,
                                           "stripe_refund_id": refund.stripe_refund_id})
    notifications.notify_refund_succeeded(session=session, contract=contract, order=order,
                                          refund=refund)


def record_covered(*, session: Session, refund: Refund, covering: Refund) -> None:
    """A plan refund whose money Stripe already gave back in ``covering``: no Stripe call."""
    refund.covered_by_id = covering.id
    refund.stripe_status = None
    record_succeeded(session, refund)
    session.add(refund)


def unallocated(session: Session, external: Refund) -> int:
    """What of a dashboard refund no plan and no returned unit accounts for yet: its amount
    less the plan refunds it covers and the prices of the units it returned."""
    covered = session.exec(select(sa.func.coalesce(sa.func.sum(Refund.amount), 0))
                           .where(Refund.covered_by_id == external.id)).one()
    units = 0
    for data in session.exec(select(OrderEvent.data).where(
            OrderEvent.order_id == external.order_id,
            OrderEvent.action == "units_returned_outside")).all():
        if data.get("stripe_refund_id") != external.stripe_refund_id:
            continue
        for line_no, count in (data.get("lines") or {}).items():
            price = session.exec(select(OrderLine.unit_price).where(
                OrderLine.order_id == external.order_id,
                OrderLine.line_no == int(line_no))).one()
            units += price * count
    return max(0, external.amount - int(covered) - units)


def cover_by(session: Session, order: Order, stripe_refund_id: str):
    """A ``cover`` for a cancellation staff record as paid by a dashboard refund (the store
    refunded the plan in Stripe's dashboard): the plan's refund is recorded as made by it,
    and nothing is sent to Stripe again. Refused (409) unless that refund is one of the
    order's, succeeded, and still holds the amount unaccounted for. Call it under the
    order's lock (every cancellation and Stripe event on the order holds it)."""
    external = session.exec(select(Refund).where(
        Refund.order_id == order.id, Refund.kind == "external",
        Refund.stripe_refund_id == stripe_refund_id)).first()
    if external is None or external.status != "succeeded":
        raise Conflict(f"{stripe_refund_id} is no succeeded refund made outside the service "
                       f"on order {order.public_id}", code="unknown_external_refund")
    left = unallocated(session, external)

    def cover(contract: Contract, amount: int) -> Refund:
        if amount > left:
            raise Conflict(f"{stripe_refund_id} has {format_amount(left, order.currency)} "
                           "not accounted for yet; it cannot pay for a refund of "
                           f"{format_amount(amount, order.currency)}",
                           code="external_refund_too_small",
                           details={"unallocated": left, "amount": amount})
        return external
    return cover
