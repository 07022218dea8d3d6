"""Post-purchase plans: a plan for an order line within 60 days of the purchase; the lines
still open, their lock, the signed link.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Literal

from pydantic import Field
from sqlmodel import Session, func, select

from warranty.catalog import services as catalog
from warranty.contracts.models import Contract
from warranty.core.dates import store_today
from warranty.core.errors import (
    Conflict,
    InvalidOffer,
    NotFound,
)
from warranty.core.settings import Settings
from warranty.core.text import SingleLine
from warranty.db.engine import write_transaction
from warranty.offers import services, tokens
from warranty.orders import tax as order_tax
from warranty.orders.cart import (
    CartError,
    PricedCart,
    RedirectUrl,
    StrictIn,
    attributable_visitor,
    check_chargeable,
    plan_confirmation,
)
from warranty.orders.models import Order, OrderLine
from warranty.pricing import terms

POST_PURCHASE_DAYS = 60


class PostPurchaseIn(StrictIn):
    """A plan bought later for a line of a paid order, through the signed post-purchase link."""

    order_id: SingleLine = Field(min_length=1, max_length=40)
    line_no: int = Field(ge=1)
    offer_token: str = Field(min_length=1, max_length=2000)
    quantity: int = Field(default=1, ge=1, le=100)
    visitor_id: SingleLine | None = Field(default=None, max_length=64)
    lang: Literal["ja", "en"] = "ja"  # the confirmation items' and payment page's language
    success_url: RedirectUrl
    cancel_url: RedirectUrl


def get_order(session: Session, public_id: str) -> Order:
    """An order by its public id, or NotFound."""
    order = session.exec(select(Order).where(Order.public_id == public_id)).first()
    if order is None:
        raise NotFound(f"no order {public_id}", code="unknown_order")
    return order


def covered_units(session: Session, product_line: OrderLine) -> int:
    """How many units of a product line have a plan: its contracts not cancelled.

    An unpaid post-purchase checkout covers nothing: it must not hide the line's offers
    (the shopper may never pay). Two checkouts for one unit can then both be paid; the
    second is refunded when it is paid (``stripe_events``, under the line's lock).
    """
    return int(session.exec(select(func.count()).select_from(Contract).where(
        Contract.product_line_id == product_line.id, Contract.status != "cancelled")).one())


def lock_line(session: Session, line_id: int) -> OrderLine:
    """A product line locked for this transaction and read fresh (SELECT ... FOR UPDATE).

    Everything that decides how many plans a line can still take holds it: a post-purchase
    checkout's check, the payment that turns it into contracts, a product return.
    """
    write_transaction(session)
    return session.exec(select(OrderLine).where(OrderLine.id == line_id)
                        .with_for_update(key_share=True)
                        .execution_options(populate_existing=True)).one()


def open_units(session: Session, product_line: OrderLine) -> int:
    """Units of a (locked) product line that are neither returned nor covered by a plan."""
    return product_line.quantity - product_line.refunded_quantity - covered_units(
        session, product_line)


def post_purchase_lines(*, session: Session, settings: Settings, order: Order,
                        today: date | None = None, now: float | None = None) -> list[dict]:
    """Product lines of a paid order that can still get a plan, with offers for each."""
    today = today or store_today(settings.timezone)
    _check_post_purchase_window(order, today)
    result = []
    lines = session.exec(select(OrderLine).where(OrderLine.order_id == order.id,
                                                 OrderLine.kind == "product")
                         .order_by(OrderLine.line_no)).all()
    for line in lines:
        covered = covered_units(session, line)
        entry = {"line_no": line.line_no, "sku": line.sku, "title": line.title,
                 "quantity": line.quantity, "covered_quantity": covered, "offers": [],
                 "reason": None}
        if line.quantity - line.refunded_quantity - covered <= 0:
            entry["reason"] = {"code": "fully_covered",
                               "message": "every unit of this line already has a plan"}
        else:
            made = services.make_offers(
                session=session, ref=_line_ref(session, line), currency=settings.currency,
                secret=settings.secret_key, today=order.purchase_date,
                ttl_seconds=settings.offer_ttl_seconds, now=now)
            terms.add_offer_terms(settings, made.offers,
                                  rule_set_version=made.rule_set_version,
                                  category=made.warranty_category)
            entry["offers"] = made.offers
            if made.reason_code:
                entry["reason"] = {"code": made.reason_code, "message": made.reason}
        result.append(entry)
    return result


def _line_ref(session: Session, line: OrderLine) -> services.ProductRef:
    """The offer reference of an order's product line (catalog product if known)."""
    product = catalog.products_by_sku(session, [line.sku]).get(line.sku)
    category = product.store_category if product else (line.warranty_category or "")
    return services.ProductRef(
        sku=product.sku if product else None, store_category=category, price=line.unit_price,
        manufacturer_warranty_months=line.manufacturer_warranty_months or 12, title=line.title)


def _check_post_purchase_window(order: Order, today: date) -> None:
    """Plans can be added to a paid order for 60 days after its purchase date."""
    if order.status != "paid" or order.purchase_date is None:
        raise Conflict("plans can only be added to a paid order", code="order_not_paid")
    if order.parent_order_id is not None:
        raise Conflict("this is a plan order; add plans to the original order",
                       code="not_a_product_order")
    if today > order.purchase_date + timedelta(days=POST_PURCHASE_DAYS):
        raise Conflict(f"plans can be added up to {POST_PURCHASE_DAYS} days after purchase; "
                       f"this order was bought on {order.purchase_date.isoformat()}",
                       code="post_purchase_window_closed")


def price_post_purchase(*, session: Session, settings: Settings, body: PostPurchaseIn,
                        today: date | None = None, now: float | None = None) -> PricedCart:
    """A pending plan-only order for one line of a paid order."""
    parent = get_order(session, body.order_id)
    _check_post_purchase_window(parent, today or store_today(settings.timezone))
    product_line = session.exec(select(OrderLine).where(
        OrderLine.order_id == parent.id, OrderLine.line_no == body.line_no,
        OrderLine.kind == "product")).first()
    if product_line is None:
        raise CartError(f"order {parent.public_id} has no product line {body.line_no}",
                        code="unknown_line")
    product_line = lock_line(session, product_line.id)  # held until the pending order commits
    available = open_units(session, product_line)
    if body.quantity > available:
        raise CartError(f"only {max(available, 0)} unit(s) of line {body.line_no} can still get "
                        "a plan", code="too_many_plans")
    ref = _line_ref(session, product_line)
    try:
        claim = tokens.verify_offer_token(body.offer_token, secret=settings.secret_key,
                                          sku=ref.sku, product_price=ref.price,
                                          currency=settings.currency, now=now)
        plan, category = services.reprice(session=session, claim=claim,
                                        store_category=ref.store_category,
                                        manufacturer_months=ref.manufacturer_warranty_months)
    except InvalidOffer as exc:
        raise CartError(f"offer_token: {exc.message}", code=exc.code) from None
    check_chargeable("offer_token", plan.price, parent.currency)
    visitor_id, refused = attributable_visitor(settings, body.visitor_id)
    line = OrderLine(line_no=1, kind="plan", sku=product_line.sku,
                     title=f"{plan.spec.coverage} protection, {plan.spec.term_months} months — "
                           f"{product_line.title}"[:300],
                     quantity=body.quantity, unit_price=plan.price,
                     amount=plan.price * body.quantity, warranty_category=category,
                     plan_code=plan.spec.code, rule_set_version=claim.rule_set_version,
                     covers_line_id=product_line.id, placement="post_purchase")
    order_tax.apply([line], settings.tax)  # its own order: its own tax, rounded once
    order = Order(store_order_ref=parent.store_order_ref, customer_email=parent.customer_email,
                  currency=parent.currency, total_amount=line.gross,
                  channel="post_purchase", parent_order_id=parent.id,
                  visitor_id=visitor_id or parent.visitor_id)
    sold_on = today or store_today(settings.timezone)
    confirmation = plan_confirmation(settings, line, plan,
                                     manufacturer_months=ref.manufacturer_warranty_months,
                                     purchase_date=parent.purchase_date, plan_sold_on=sold_on)
    return PricedCart(order=order, lines=[line], refused_visitor_id=refused, tax=settings.tax,
                      confirmations={line.line_no: confirmation}, lang=body.lang)


def post_purchase_link(settings: Settings, order: Order, line_no: int) -> str:
    """The signed link that lets the customer buy a plan for one order line later."""
    from urllib.parse import urlencode

    from warranty.auth.links import make_token

    token = make_token(settings, "post_purchase", {"order": order.public_id, "line": line_no})
    return f"{settings.base_url}/plans/add?{urlencode({'token': token})}"


def read_post_purchase_link(settings: Settings, token: str) -> tuple[str, int]:
    """The (order id, line number) of a valid post-purchase link."""
    from warranty.auth.links import InvalidLink, read_token

    data = read_token(settings, "post_purchase", token,
                      max_age=(POST_PURCHASE_DAYS + 1) * 24 * 3600)
    order_id, line_no = data.get("order"), data.get("line")
    if not isinstance(order_id, str) or not isinstance(line_no, int):
        raise InvalidLink("this link is not valid")
    return order_id, line_no
