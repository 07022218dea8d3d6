"""A product returned or refunded: its plans beyond the units kept are cancelled with a
full refund.
"""

from __future__ import annotations

from datetime import date

from sqlmodel import Session, select

from warranty.changes.cancellation import Cover, cancel_with_refund, lock_order, quote_refund
from warranty.contracts.models import Contract
from warranty.core.errors import Conflict, NotFound
from warranty.core.settings import Settings
from warranty.orders.models import Order, OrderLine, Refund


def return_product_units(*, session: Session, settings: Settings, order_id: str, line_no: int,
                         quantity: int, today: date, actor: str, reason: str,
                         cover: Cover | None = None) -> tuple[int, list[Refund]]:
    """Record that ``quantity`` units of a product line were refunded or returned.

    Plans on the line may not outnumber the units kept, so that many active plans (the
    latest units first) are cancelled with a full refund each (caller commits). Returns the
    line's returned units so far and the refunds. ``cover``: see ``cancel_with_refund``.
    """
    order = session.exec(select(Order).where(Order.public_id == order_id)).first()
    if order is None:
        raise NotFound(f"no order {order_id}", code="unknown_order")
    lock_order(session, order.id)
    line = session.exec(select(OrderLine).where(OrderLine.order_id == order.id,
                                                OrderLine.line_no == line_no)
                        .with_for_update(key_share=True).execution_options(populate_existing=True)).first()
    if line is None or line.kind != "product":
        raise NotFound(f"order {order_id} has no product line {line_no}", code="unknown_line")
    kept = line.quantity - line.refunded_quantity
    if quantity > kept:
        raise Conflict(f"line {line_no} has {kept} unit(s) not yet returned; cannot return "
                       f"{quantity}", code="over_return")
    line.refunded_quantity += quantity
    session.add(line)
    active = session.exec(select(Contract).where(Contract.product_line_id == line.id,
                                                 Contract.status == "active")
                          .order_by(Contract.purchase_date.desc(), Contract.unit_index.desc())
                          .with_for_update(key_share=True).execution_options(populate_existing=True)).all()
    excess = len(active) - (kept - quantity)
    cancelled = []
    for contract in active[:max(0, excess)]:
        quote = quote_refund(contract=contract, cancel_date=max(today, contract.plan_sold_on),
                             full=True)
        cancelled.append(cancel_with_refund(
            session=session, settings=settings, contract=contract, quote=quote, actor=actor,
            reason=reason or "product returned", action="product_returned", cover=cover))
    return line.refunded_quantity, cancelled
