"""What Stripe says about an order's refunds, from its refund and charge events.

Every refund, charge.refunded and charge.refund.updated event leads here with the charge and
its refunds fetched again from Stripe (never the payload). Each Stripe refund of the charge
is matched to our row by its Stripe id, or by our key in its metadata (a refund we made whose
answer we never recorded); its status is recorded as Stripe reports it
(``refunds.record_stripe_refund``). A refund with neither was made outside the service, in
Stripe's dashboard: it is stored as an ``external`` refund of the order (no contract), audited,
put on the attention queue, and counted by reconciliation.

When such a refund goes through, it may have given back product money, and plans cannot
outlive their product. How it maps to units (docs/payments.md):

- A full refund of the charge (Stripe's ``charge.refunded``): every unit of the order's
  product lines is returned and every active plan of the order is cancelled with a full
  refund that Stripe already made: recorded as covered by the dashboard refund, no second
  Stripe refund. (Plans bought later for those units on another order, if any, are refunded
  on their own payment as a return would.)
- Otherwise the refund's product value is its amount beyond the order's plans still held
  (the prices of its active contracts): a refund up to that much may be for plans and cancels
  nothing (a person decides, from the attention queue). Product value returns units in line
  order, a unit counting as returned as soon as any of its price is refunded (a restocking
  fee does not keep it), as ``return_product_units`` does: plans beyond the units kept are
  cancelled with a full refund each. What the dashboard refund gave beyond the returned units'
  prices pays for those plans first (recorded as covered, no second Stripe refund); the rest
  is refunded through Stripe as usual.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from sqlmodel import Session, select

from warranty.attention import services as attention
from warranty.changes import cancellation
from warranty.changes import returns as contracts_returns
from warranty.contracts import refunds as contract_refunds
from warranty.contracts.models import Contract
from warranty.contracts.refunds import unallocated
from warranty.core.dates import store_today, utcnow
from warranty.core.money import format_amount
from warranty.core.settings import Settings
from warranty.orders.events import ORDER_TRANSITIONS, record_order_event
from warranty.orders.models import Order, OrderLine, Refund
from warranty.payments import refunds
from warranty.periods import booking as periods

log = logging.getLogger(__name__)
ACTOR = "stripe"


def _metadata_key(stripe_refund) -> str | None:
    """Our idempotency key in a Stripe refund's metadata, if we made it."""
    metadata = getattr(stripe_refund, "metadata", None)
    values = metadata.to_dict() if metadata is not None else {}
    key = values.get(refunds.METADATA_KEY)
    return key if isinstance(key, str) else None


def _record_external(session: Session, settings: Settings, order: Order, stripe_refund,
                     event_id: str | None) -> Refund:
    """Store a refund made outside the service, audit it and queue it for a person."""
    made_at = refunds.stripe_time(getattr(stripe_refund, "created", None))
    why = getattr(stripe_refund, "reason", None)
    made_on = store_today(settings.timezone, made_at)
    row = Refund(kind="external", contract_id=None, order_id=order.id,
                 amount=stripe_refund.amount, currency=stripe_refund.currency,
                 cancel_date=made_on, booked_on=periods.booking_date(session, made_on),
                 reason="refunded outside the service (Stripe dashboard)"
                        + (f": {why}" if why else ""),
                 idempotency_key=f"stripe-{stripe_refund.id}"[:100],
                 stripe_refund_id=stripe_refund.id)
    session.add(row)
    session.flush()
    figures = {"refund_id": row.id, "amount": row.amount, "currency": row.currency,
               "order": order.public_id, "order_total": order.total_amount,
               "stripe_refund_id": stripe_refund.id,
               "stripe_charge_id": getattr(stripe_refund, "charge", None),
               "stripe_payment_intent_id": order.stripe_payment_intent_id,
               "stripe_status": getattr(stripe_refund, "status", None), "reason": why,
               "refunded_at": made_at.isoformat()}
    record_order_event(session=session, order=order, action="external_refund_recorded",
                       actor=ACTOR, data=figures)
    attention.raise_item(
        session=session, kind="external_refund", key=stripe_refund.id, order=order, refund=row,
        stripe_event_id=event_id,
        summary=f"{format_amount(row.amount, row.currency)} was refunded in Stripe's dashboard "
                f"on order {order.store_order_ref} ({order.public_id}), outside the service",
        data=figures)
    log.warning("order %s: refund %s made outside the service recorded", order.public_id,
                stripe_refund.id)
    return row


def sync_charge(*, session: Session, settings: Settings, order: Order, charge,
                stripe_refunds: list, event_id: str | None = None) -> tuple[str, list[int]]:
    """Record every refund of the order's charge as Stripe reports it (order row locked).

    Returns the outcome and the ids of plan refunds to send to Stripe after the commit.
    """
    # Lock only our rows for these Stripe refunds: a pending refund of ours that Stripe has
    # not seen stays free for the request that is about to send it.
    ids = [stripe_refund.id for stripe_refund in stripe_refunds]
    keys = [key for key in map(_metadata_key, stripe_refunds) if key]
    rows = session.exec(select(Refund).where(
        Refund.order_id == order.id,
        sa.or_(Refund.stripe_refund_id.in_(ids), Refund.idempotency_key.in_(keys)))
        .order_by(Refund.id).with_for_update(key_share=True)
        .execution_options(populate_existing=True)).all() if ids else []
    by_stripe_id = {row.stripe_refund_id: row for row in rows if row.stripe_refund_id}
    by_key = {row.idempotency_key: row for row in rows}
    outcome, settled_outside = "unchanged", []
    for stripe_refund in sorted(stripe_refunds, key=lambda r: (r.created or 0, r.id)):
        row = by_stripe_id.get(stripe_refund.id) or by_key.get(_metadata_key(stripe_refund) or "")
        if row is None:
            row = _record_external(session, settings, order, stripe_refund, event_id)
            outcome = "refund_recorded"
        was = row.status
        if refunds.record_stripe_refund(session=session, settings=settings, refund=row,
                                        stripe_refund=stripe_refund):
            outcome = "refund_recorded" if outcome == "refund_recorded" else "refund_updated"
        if row.kind == "external" and was == "pending" and row.status == "succeeded":
            settled_outside.append(row)
    made: list[Refund] = []
    if order.status in ("paid", "refunded") and settled_outside:
        if getattr(charge, "refunded", False):
            made = _charge_refunded_in_full(session, settings, order, settled_outside[-1])
        else:
            for external in settled_outside:
                made += _product_value_returned(session, settings, order, external)
    _mark_refunded(session, order, charge)
    if made:
        outcome = "plans_cancelled"
    return outcome, [row.id for row in made if row.status == "pending"]


def _mark_refunded(session: Session, order: Order, charge) -> None:
    """A charge Stripe has refunded in full makes its paid order ``refunded``."""
    if getattr(charge, "refunded", False) and "refunded" in ORDER_TRANSITIONS.get(
            order.status, set()):
        order.status, order.updated_at = "refunded", utcnow()
        session.add(order)
        record_order_event(session=session, order=order, action="refunded", actor=ACTOR,
                           data={"stripe_charge_id": getattr(charge, "id", None),
                                 "amount_refunded": getattr(charge, "amount_refunded", None)})


def _product_lines(session: Session, order: Order) -> list[OrderLine]:
    """The order's product lines, locked, in line order."""
    return list(session.exec(select(OrderLine).where(OrderLine.order_id == order.id,
                                                     OrderLine.kind == "product")
                             .order_by(OrderLine.line_no).with_for_update(key_share=True)
                             .execution_options(populate_existing=True)).all())


def external_refunds(session: Session, order: Order) -> list[tuple[Refund, int]]:
    """The order's succeeded dashboard refunds with what of each is still unaccounted for."""
    rows = session.exec(select(Refund).where(Refund.order_id == order.id,
                                             Refund.kind == "external",
                                             Refund.status == "succeeded")
                        .order_by(Refund.id)).all()
    return [(row, unallocated(session, row)) for row in rows]


def _covering(order: Order, external: Refund, budget: list[int]):
    """A ``cover`` for contract_changes: the order's own plans, while the budget lasts."""
    def cover(contract: Contract, amount: int) -> Refund | None:
        if contract.order_id != order.id or amount > budget[0]:
            return None
        budget[0] -= amount
        return external
    return cover


def _reason(external: Refund) -> str:
    """The audit reason of cancellations a dashboard refund caused."""
    return f"Stripe refund {external.stripe_refund_id} made outside the service"


def _charge_refunded_in_full(session: Session, settings: Settings, order: Order,
                             external: Refund) -> list[Refund]:
    """Every unit returned, every plan of the order cancelled without a second refund."""
    today = store_today(settings.timezone)
    cover = _covering(order, external, [order.total_amount])
    made: list[Refund] = []
    for line in _product_lines(session, order):
        kept = line.quantity - line.refunded_quantity
        if kept > 0:
            made += contracts_returns.return_product_units(
                session=session, settings=settings, order_id=order.public_id,
                line_no=line.line_no, quantity=kept, today=today, actor=ACTOR,
                reason=_reason(external), cover=cover)[1]
    # Plans on the order not tied to its own product lines (a post-purchase plan order).
    active = session.exec(select(Contract).where(Contract.order_id == order.id,
                                                 Contract.status == "active")
                          .order_by(Contract.id).with_for_update(key_share=True)
                          .execution_options(populate_existing=True)).all()
    for contract in active:
        made.append(cancellation.cancel_refunded_plan(
            session=session, settings=settings, contract=contract, today=today, actor=ACTOR,
            reason=_reason(external), cover=cover))
    # Our own refunds not yet sent: Stripe has nothing left to refund, and gave it back.
    for row in session.exec(select(Refund).where(Refund.order_id == order.id,
                                                 Refund.status == "pending",
                                                 Refund.stripe_refund_id.is_(None),
                                                 Refund.covered_by_id.is_(None),
                                                 Refund.id != external.id)
                            .with_for_update(key_share=True).execution_options(populate_existing=True)
                            ).all():
        if row.status == "pending" and row.stripe_refund_id is None:
            contract_refunds.record_covered(session=session, refund=row, covering=external)
    return made


def _product_value_returned(session: Session, settings: Settings, order: Order,
                            external: Refund) -> list[Refund]:
    """Units a partial dashboard refund gave back, and the plans they can no longer carry."""
    held = session.exec(select(Contract.price).where(Contract.order_id == order.id,
                                                     Contract.status == "active")).all()
    value = external.amount - sum(held)
    if value <= 0:
        return []  # may be a plan's money: the attention queue has it for a person
    returns = []
    for line in _product_lines(session, order):
        kept = line.quantity - line.refunded_quantity
        if value <= 0:
            break
        if kept <= 0 or line.unit_price <= 0:
            continue
        absorbed = min(value, kept * line.unit_price)
        units = min(kept, -(-absorbed // line.unit_price))  # a unit partly refunded counts
        value -= absorbed
        returns.append((line, units))
    budget = [max(0, external.amount - sum(line.unit_price * units for line, units in returns))]
    cover = _covering(order, external, budget)
    today = store_today(settings.timezone)
    made: list[Refund] = []
    for line, units in returns:
        made += contracts_returns.return_product_units(
            session=session, settings=settings, order_id=order.public_id, line_no=line.line_no,
            quantity=units, today=today, actor=ACTOR, reason=_reason(external), cover=cover)[1]
    record_order_event(session=session, order=order, action="units_returned_outside",
                       actor=ACTOR, data={"stripe_refund_id": external.stripe_refund_id,
                                          "lines": {str(line.line_no): units
                                                    for line, units in returns}})
    return made
