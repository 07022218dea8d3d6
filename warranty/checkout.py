"""Checkout: a cart becomes a pending order, priced on the server, then a Stripe payment.

Two ways to pay: a Stripe Checkout Session (hosted page) or a PaymentIntent for stores with
their own payment form; and a post-purchase plan for an order line within 60 days.
The order and its lines are committed as pending BEFORE Stripe is called, so an abandoned,
expired, declined or failed checkout is still visible and nothing is lost.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Annotated, Literal

import stripe
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from sqlmodel import Session, func, select

from warranty import catalog, experiment, money, offers, pricing
from warranty.dates import store_today, utcnow
from warranty.errors import Conflict, NotFound, PaymentProviderError, ValidationFailed
from warranty.models import Contract, Order, OrderEvent, OrderLine, Product
from warranty.settings import Settings
from warranty.text import EmailAddress, SingleLine

POST_PURCHASE_DAYS = 60
# A post-purchase Checkout Session closes after Stripe's minimum, 30 minutes (plus a minute,
# so that a clock a little behind Stripe's is not refused), instead of Stripe's default day.
POST_PURCHASE_SESSION_SECONDS = 30 * 60 + 60
Placement = Literal["product_page", "add_to_cart_modal", "cart", "post_purchase", "api"]

# Allowed order status changes; a late or repeated event never moves an order backwards.
ORDER_TRANSITIONS: dict[str, set[str]] = {
    "pending": {"paid", "expired", "failed"},
    "failed": {"paid", "expired", "failed"},
    "expired": {"paid"},  # a payment Stripe confirms after expiry is still money received
    "paid": {"refunded"},
    "refunded": set(),
}


def record_order_event(*, session: Session, order: Order, action: str, actor: str,
                       reason: str = "", data: dict | None = None) -> OrderEvent:
    """An audit row for something that happened to an order's money (caller commits)."""
    event = OrderEvent(order_id=order.id, action=action, actor=actor, reason=reason[:1000],
                       data=data or {})
    session.add(event)
    return event


def _http_url(value: str) -> str:
    """Only http(s) URLs are allowed as redirect targets (no javascript:, data:, ...)."""
    if not re.match(r"^https?://[^\s]+$", value) or len(value) > 2000:
        raise ValueError("must be an http(s) URL")
    return value


RedirectUrl = Annotated[str, AfterValidator(_http_url)]


class CartError(ValidationFailed):
    """A cart that cannot be sold; the message names the line."""

    code = "invalid_cart"


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ProductLineIn(_In):
    """A product the shopper buys. ``unit_price`` must match the catalog when the sku is known."""

    type: Literal["product"]
    line_id: SingleLine = Field(min_length=1, max_length=50)
    sku: SingleLine = Field(min_length=1, max_length=100)
    quantity: int = Field(ge=1, le=100)
    unit_price: int = Field(ge=0, le=10**10, description="minor units")
    title: SingleLine | None = Field(default=None, max_length=300)
    category: SingleLine | None = Field(default=None, max_length=100,
                                        description="store category, for products not in the "
                                                    "catalog")
    manufacturer_warranty_months: int | None = Field(default=None, ge=0, le=240)


class PlanLineIn(_In):
    """A plan for a product line, bought with an offer token."""

    type: Literal["plan"]
    for_line: SingleLine = Field(min_length=1, max_length=50)
    quantity: int = Field(ge=1, le=100)
    offer_token: str = Field(min_length=1, max_length=2000)
    placement: Placement = "api"


CartLine = Annotated[ProductLineIn | PlanLineIn, Field(discriminator="type")]


class CartIn(_In):
    """A cart for the PaymentIntent flow."""

    # Both reach mail headers (the subject names the order; To is the email): one line each.
    order_ref: SingleLine = Field(min_length=1, max_length=200)
    customer_email: EmailAddress
    currency: str | None = Field(default=None, max_length=3)
    visitor_id: SingleLine | None = Field(default=None, max_length=64)
    lines: list[CartLine] = Field(min_length=1, max_length=100)


class HostedCartIn(CartIn):
    """A cart for the hosted Checkout Session flow."""

    success_url: RedirectUrl
    cancel_url: RedirectUrl


class PostPurchaseIn(_In):
    """A plan bought later for a line of a paid order, through the signed post-purchase link."""

    order_id: SingleLine = Field(min_length=1, max_length=40)
    line_no: int = Field(ge=1)
    offer_token: str = Field(min_length=1, max_length=2000)
    quantity: int = Field(default=1, ge=1, le=100)
    visitor_id: SingleLine | None = Field(default=None, max_length=64)
    success_url: RedirectUrl
    cancel_url: RedirectUrl


@dataclass
class PricedCart:
    """A validated cart: the order (pending, not yet flushed) and its lines."""

    order: Order
    lines: list[OrderLine]
    covers: dict[int, int] = field(default_factory=dict)  # plan line_no -> product line_no
    # A visitor id sent but not signed by us: (store-local day, unsigned | foreign), counted
    # with the order when it is saved; the order itself carries no visitor id then.
    refused_visitor_id: tuple[date, str] | None = None


def attributable_visitor(settings: Settings, visitor_id: str | None
                         ) -> tuple[str | None, tuple[date, str] | None]:
    """The visitor id an order may carry (only one this service signed), and the refusal to
    count when another was sent. Checkout never fails over it: the sale goes through, it is
    only not attributed to a visitor (the conversion report counts it among refused ids)."""
    if visitor_id is None:
        return None, None
    problem = experiment.visitor_id_problem(visitor_id, settings.secret_key)
    if problem is None:
        return visitor_id, None
    return None, (store_today(settings.timezone), problem)


def price_cart(*, session: Session, cart: CartIn, settings: Settings, channel: str,
               now: float | None = None) -> PricedCart:
    """Validate every line and price plan lines again on the server."""
    currency = settings.currency
    if cart.currency and cart.currency.lower() != currency:
        raise CartError(f"currency {cart.currency.upper()} is not the store currency "
                        f"{currency.upper()}", code="currency_mismatch")
    products: dict[str, tuple[int, ProductLineIn, Product | None]] = {}
    plan_units: dict[str, int] = {}
    lines: list[OrderLine] = []
    covers: dict[int, int] = {}
    skus = {line.sku for line in cart.lines if isinstance(line, ProductLineIn)}
    catalog_products = catalog.products_by_sku(session, skus)
    only_catalog = None  # asked once, and only when a line is outside the catalog
    for index, line in enumerate(cart.lines):
        where = f"lines.{index}"
        if isinstance(line, ProductLineIn):
            if line.line_id in products:
                raise CartError(f"{where}: line_id {line.line_id!r} is used twice",
                                details=[{"at": where, "message": "duplicate line_id"}])
            catalog_product = catalog_products.get(line.sku)
            _check_chargeable(f"{where}.unit_price", line.unit_price, currency)
            if catalog_product is None:
                if only_catalog is None:
                    only_catalog = catalog.catalog_only(session, settings)
                if only_catalog:
                    raise _not_in_catalog(where, line.sku)
            if catalog_product is not None and catalog_product.unit_price != line.unit_price:
                raise CartError(
                    f"{where}: unit_price {line.unit_price} differs from the catalog price "
                    f"{catalog_product.unit_price} of {line.sku}", code="price_mismatch",
                    details=[{"at": f"{where}.unit_price", "message": "differs from catalog"}])
            products[line.line_id] = (index, line, catalog_product)
            lines.append(OrderLine(
                warranty_category=_category_now(session, catalog_product, line),
                line_no=len(lines) + 1, kind="product",
                sku=catalog_product.sku if catalog_product else line.sku,
                title=line.title or (catalog_product.title if catalog_product else line.sku),
                quantity=line.quantity, unit_price=line.unit_price,
                amount=line.unit_price * line.quantity,
                manufacturer_warranty_months=_months(line, catalog_product)))
    for index, line in enumerate(cart.lines):
        if not isinstance(line, PlanLineIn):
            continue
        where = f"lines.{index}"
        if line.for_line not in products:
            raise CartError(f"{where}: for_line {line.for_line!r} names no product line",
                            details=[{"at": f"{where}.for_line", "message": "no such line"}])
        product_index, product_line, catalog_product = products[line.for_line]
        plan_units[line.for_line] = plan_units.get(line.for_line, 0) + line.quantity
        if plan_units[line.for_line] > product_line.quantity:
            raise CartError(f"{where}: {plan_units[line.for_line]} plans for "
                            f"{product_line.quantity} unit(s) of {product_line.sku}; plans per "
                            "product cannot exceed its quantity", code="too_many_plans",
                            details=[{"at": f"{where}.quantity", "message": "exceeds product"}])
        plan, category, claim = _price_plan_line(
            session=session, where=where, line=line, product_line=product_line,
            catalog_product=catalog_product, settings=settings, now=now)
        _check_chargeable(f"{where}.offer_token", plan.price, currency)
        product_order_line = lines[_line_position(cart, product_index)]
        product_order_line.warranty_category = category
        lines.append(OrderLine(
            line_no=len(lines) + 1, kind="plan", sku=product_order_line.sku,
            title=f"{plan.spec.coverage} protection, {plan.spec.term_months} months — "
                  f"{product_order_line.title}"[:300],
            quantity=line.quantity, unit_price=plan.price, amount=plan.price * line.quantity,
            warranty_category=category, plan_code=plan.spec.code,
            rule_set_version=claim.rule_set_version, placement=line.placement))
        covers[lines[-1].line_no] = product_order_line.line_no  # linked to ids after flush
    total = sum(line.amount for line in lines)
    if total <= 0:
        raise CartError("the order total is zero; there is nothing to charge",
                        code="empty_order")
    visitor_id, refused = attributable_visitor(settings, cart.visitor_id)
    order = Order(store_order_ref=cart.order_ref, customer_email=cart.customer_email,
                  currency=currency, total_amount=total, channel=channel,
                  visitor_id=visitor_id)
    return PricedCart(order=order, lines=lines, covers=covers, refused_visitor_id=refused)


def _not_in_catalog(where: str, sku: str) -> catalog.NotInCatalog:
    """The refusal of a product outside the catalog, naming the line."""
    message = (f"sku {sku!r} is not in the store's catalog; this store sells only catalog "
               "products (WARRANTY_CATALOG_ONLY)")
    return catalog.NotInCatalog(f"{where}: {message}",
                                details=[{"at": f"{where}.sku", "message": message}])


def _check_chargeable(where: str, amount: int, currency: str) -> None:
    """Refuse a line Stripe would refuse to charge (three-decimal currencies: steps of 10).

    The catalog refuses such prices when they are loaded; this catches products sold
    without the catalog, prices stored before that check, and plan prices of old rule sets.
    """
    problem = money.stripe_amount_problem(amount, currency)
    if problem:
        raise CartError(f"{where}: {problem}", code="price_not_chargeable",
                        details=[{"at": where, "message": problem}])


def _category_now(session: Session, catalog_product: Product | None,
                  line: ProductLineIn) -> str | None:
    """The warranty category a product line sells under today (reports group by it)."""
    version = pricing.latest_version(session)
    store_category = catalog_product.store_category if catalog_product else line.category
    if version is None or not store_category:
        return None
    return pricing.get_version(session, version).warranty_category(store_category)


def _line_position(cart: CartIn, product_index: int) -> int:
    """Position among the order's product lines of the cart line at ``product_index``."""
    return sum(1 for line in cart.lines[:product_index] if isinstance(line, ProductLineIn))


def _months(line: ProductLineIn, catalog_product: Product | None) -> int:
    """Manufacturer's warranty months: the catalog's, else the line's, else 12."""
    if catalog_product is not None:
        return catalog_product.manufacturer_warranty_months
    return line.manufacturer_warranty_months if line.manufacturer_warranty_months is not None \
        else 12


def _verify(line: PlanLineIn, settings: Settings, product_line: ProductLineIn,
            catalog_product: Product | None, now: float | None) -> offers.OfferClaim:
    """Verify a plan line's token against its product line."""
    return offers.verify_offer_token(
        line.offer_token, secret=settings.secret_key,
        sku=catalog_product.sku if catalog_product else None,
        product_price=product_line.unit_price, currency=settings.currency, now=now)


def _price_plan_line(*, session: Session, where: str, line: PlanLineIn,
                     product_line: ProductLineIn, catalog_product: Product | None,
                     settings: Settings, now: float | None,
                     ) -> tuple[pricing.PricedPlan, str, offers.OfferClaim]:
    """Verify the offer token and price the plan again; errors name the line."""
    try:
        claim = _verify(line, settings, product_line, catalog_product, now)
        store_category = catalog_product.store_category if catalog_product else (
            product_line.category or claim.store_category)
        if not catalog_product and store_category != claim.store_category:
            raise offers.InvalidOffer("offer was made for another category",
                                      code="offer_product_mismatch")
        plan, category = offers.reprice(
            session=session, claim=claim, store_category=store_category,
            manufacturer_months=_months(product_line, catalog_product))
        return plan, category, claim
    except offers.InvalidOffer as exc:
        raise CartError(f"{where}: {exc.message}", code=exc.code,
                        details=[{"at": f"{where}.offer_token", "message": exc.message}]) from None


def save_pending(*, session: Session, priced: PricedCart) -> Order:
    """Store the order and its lines as pending (the caller commits before calling Stripe)."""
    if priced.refused_visitor_id is not None:
        day, reason = priced.refused_visitor_id
        experiment.count_refused(session=session, day=day, source="checkout", reason=reason)
    session.add(priced.order)
    session.flush()
    by_no: dict[int, OrderLine] = {}
    for line in priced.lines:
        line.order_id = priced.order.id
        if line.line_no in priced.covers:
            line.covers_line_id = by_no[priced.covers[line.line_no]].id
        session.add(line)
        session.flush()
        by_no[line.line_no] = line
    return priced.order


def _stripe_call(order: Order, call, **params):
    """Call Stripe; a failure marks nothing here but becomes a 502 with Stripe's reason."""
    try:
        return call(**params)
    except stripe.StripeError as exc:
        message = getattr(exc, "user_message", None) or str(exc) or exc.__class__.__name__
        raise PaymentProviderError(f"Stripe refused to start the payment for order "
                                   f"{order.public_id}: {message}") from None


def start_checkout_session(*, order: Order, lines: list[OrderLine], success_url: str,
                           cancel_url: str):
    """Create the Stripe Checkout Session for a pending order (no database work).

    A post-purchase plan's session expires early, so that an abandoned one is soon closed.
    """
    metadata = {"order_id": order.public_id, "order_ref": order.store_order_ref}
    expiry = {}
    if order.channel == "post_purchase":
        expiry["expires_at"] = int(utcnow().timestamp()) + POST_PURCHASE_SESSION_SECONDS
    return _stripe_call(
        order, stripe.checkout.Session.create, **expiry,
        mode="payment",
        line_items=[{"quantity": line.quantity,
                     "price_data": {"currency": order.currency, "unit_amount": line.unit_price,
                                    "product_data": {"name": line.title}}}
                    for line in lines],
        customer_email=order.customer_email,
        client_reference_id=order.public_id,
        success_url=success_url, cancel_url=cancel_url,
        metadata=metadata, payment_intent_data={"metadata": metadata},
        idempotency_key=f"checkout-session-{order.public_id}",
    )


def start_payment_intent(*, order: Order):
    """Create the PaymentIntent for a pending order (no database work)."""
    return _stripe_call(
        order, stripe.PaymentIntent.create,
        amount=order.total_amount, currency=order.currency,
        payment_method_types=["card"],
        metadata={"order_id": order.public_id, "order_ref": order.store_order_ref},
        idempotency_key=f"payment-intent-{order.public_id}",
    )


def mark_failed_to_start(*, session: Session, order: Order) -> None:
    """Stripe refused to start: the pending order stays on record as failed."""
    order.status = "failed"
    order.updated_at = utcnow()
    session.add(order)


# --- post-purchase plans ---------------------------------------------------------------


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
            made = offers.make_offers(
                session=session, ref=_line_ref(session, line), currency=settings.currency,
                secret=settings.secret_key, today=order.purchase_date,
                ttl_seconds=settings.offer_ttl_seconds, now=now)
            entry["offers"] = made.offers
            if made.reason_code:
                entry["reason"] = {"code": made.reason_code, "message": made.reason}
        result.append(entry)
    return result


def _line_ref(session: Session, line: OrderLine) -> offers.ProductRef:
    """The offer reference of an order's product line (catalog product if known)."""
    product = catalog.products_by_sku(session, [line.sku]).get(line.sku)
    category = product.store_category if product else (line.warranty_category or "")
    return offers.ProductRef(
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
        claim = offers.verify_offer_token(body.offer_token, secret=settings.secret_key,
                                          sku=ref.sku, product_price=ref.price,
                                          currency=settings.currency, now=now)
        plan, category = offers.reprice(session=session, claim=claim,
                                        store_category=ref.store_category,
                                        manufacturer_months=ref.manufacturer_warranty_months)
    except offers.InvalidOffer as exc:
        raise CartError(f"offer_token: {exc.message}", code=exc.code) from None
    _check_chargeable("offer_token", plan.price, parent.currency)
    visitor_id, refused = attributable_visitor(settings, body.visitor_id)
    order = Order(store_order_ref=parent.store_order_ref, customer_email=parent.customer_email,
                  currency=parent.currency, total_amount=plan.price * body.quantity,
                  channel="post_purchase", parent_order_id=parent.id,
                  visitor_id=visitor_id or parent.visitor_id)
    line = OrderLine(line_no=1, kind="plan", sku=product_line.sku,
                     title=f"{plan.spec.coverage} protection, {plan.spec.term_months} months — "
                           f"{product_line.title}"[:300],
                     quantity=body.quantity, unit_price=plan.price,
                     amount=plan.price * body.quantity, warranty_category=category,
                     plan_code=plan.spec.code, rule_set_version=claim.rule_set_version,
                     covers_line_id=product_line.id, placement="post_purchase")
    return PricedCart(order=order, lines=[line], refused_visitor_id=refused)


def post_purchase_link(settings: Settings, order: Order, line_no: int) -> str:
    """The signed link that lets the customer buy a plan for one order line later."""
    from urllib.parse import urlencode

    from warranty.magic_links import make_token

    token = make_token(settings, "post_purchase", {"order": order.public_id, "line": line_no})
    return f"{settings.base_url}/plans/add?{urlencode({'token': token})}"


def read_post_purchase_link(settings: Settings, token: str) -> tuple[str, int]:
    """The (order id, line number) of a valid post-purchase link."""
    from warranty.magic_links import InvalidLink, read_token

    data = read_token(settings, "post_purchase", token,
                      max_age=(POST_PURCHASE_DAYS + 1) * 24 * 3600)
    order_id, line_no = data.get("order"), data.get("line")
    if not isinstance(order_id, str) or not isinstance(line_no, int):
        raise InvalidLink("this link is not valid")
    return order_id, line_no
