"""A cart becomes a pending order, priced on the server.

The order and its lines are committed as pending BEFORE Stripe is called
(warranty.payments.checkout), so an abandoned, expired, declined or failed checkout is still
visible and nothing is lost.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from sqlmodel import Session

from warranty.catalog import services as catalog
from warranty.catalog.models import Product
from warranty.core import money
from warranty.core.dates import store_today
from warranty.core.errors import (
    DomainError,
    InvalidOffer,
    OfferStale,
    ValidationFailed,
)
from warranty.core.settings import Settings
from warranty.core.tax import TaxPolicy
from warranty.core.text import EmailAddress, SingleLine
from warranty.coverage.dates import coverage_dates
from warranty.db.engine import write_transaction
from warranty.experiment import arms
from warranty.offers import services, tokens
from warranty.orders import tax as order_tax
from warranty.orders.models import Order, OrderLine
from warranty.pricing import prices, rules, terms

Placement = Literal["product_page", "add_to_cart_modal", "cart", "post_purchase", "api"]


def _http_url(value: str) -> str:
    """Only http(s) URLs are allowed as redirect targets (no javascript:, data:, ...)."""
    if not re.match(r"^https?://[^\s]+$", value) or len(value) > 2000:
        raise ValueError("must be an http(s) URL")
    return value


RedirectUrl = Annotated[str, AfterValidator(_http_url)]


def _origin(url: str) -> str:
    """scheme://host[:port] of an http(s) URL, as WARRANTY_ALLOWED_ORIGINS spells origins."""
    parts = urlsplit(url)
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    try:
        port = parts.port
    except ValueError:
        return ""
    if ":" in host:
        host = f"[{host}]"
    default = {"http": 80, "https": 443}.get(scheme)
    return f"{scheme}://{host}" + (f":{port}" if port and port != default else "")


class ReturnUrlRefused(DomainError):
    """A success or cancel URL off the store's origins: a bad request, refused before any
    validation of the cart itself."""

    code = "return_url_not_allowed"


def check_return_urls(settings: Settings, **urls: str) -> None:
    """Refuse a success or cancel URL outside the store's origins (WARRANTY_ALLOWED_ORIGINS)
    and the service's own (WARRANTY_BASE_URL): Stripe's page sends the shopper there, so any
    other address would make the service an open redirect."""
    allowed = {origin for origin in settings.allowed_origins.split(",") if origin}
    allowed.add(_origin(settings.base_url))
    for name, url in urls.items():
        if _origin(url) not in allowed:
            raise ReturnUrlRefused(
                f"{name} must be on one of the store's allowed origins "
                f"(WARRANTY_ALLOWED_ORIGINS) or the service's own address",
                details=[{"at": name, "message": "origin not allowed"}])


class CartError(ValidationFailed):
    """A cart that cannot be sold; the message names the line."""

    code = "invalid_cart"


class StrictIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ProductLineIn(StrictIn):
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


class PlanLineIn(StrictIn):
    """A plan for a product line, bought with an offer token."""

    type: Literal["plan"]
    for_line: SingleLine = Field(min_length=1, max_length=50)
    quantity: int = Field(ge=1, le=100)
    offer_token: str = Field(min_length=1, max_length=2000)
    placement: Placement = "api"


CartLine = Annotated[ProductLineIn | PlanLineIn, Field(discriminator="type")]


class CartIn(StrictIn):
    """A cart for the PaymentIntent flow."""

    # Both reach mail headers (the subject names the order; To is the email): one line each.
    order_ref: SingleLine = Field(min_length=1, max_length=200)
    customer_email: EmailAddress
    currency: str | None = Field(default=None, max_length=3)
    visitor_id: SingleLine | None = Field(default=None, max_length=64)
    lang: Literal["ja", "en"] = Field(default="ja", description="the shopper's language: "
                                      "the final-confirmation items and the payment page's "
                                      "plan descriptions are written in it")
    lines: list[CartLine] = Field(min_length=1, max_length=100)


class HostedCartIn(CartIn):
    """A cart for the hosted Checkout Session flow."""

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
    # The store's tax setting the lines were taxed under (the Checkout line items name it).
    tax: TaxPolicy | None = None
    # The final-confirmation items of each plan line (by line_no), in the shopper's ``lang``.
    confirmations: dict[int, terms.Confirmation] = field(default_factory=dict)
    lang: str = "ja"

    def plan_descriptions(self) -> dict[int, str]:
        """Each plan line's confirmation items as one text (the payment page's description
        of the line)."""
        return {line_no: " / ".join(item.items(self.lang)[1:])
                for line_no, item in self.confirmations.items()}

    def submit_message(self) -> str:
        """What the payment page says above its pay button: the plans' cancellation
        conditions and the address of each plan's terms."""
        if not self.confirmations:
            return ""
        return " ".join(terms.confirmation_notice(self.lang, list(self.confirmations.values())))


def attributable_visitor(settings: Settings, visitor_id: str | None
                         ) -> tuple[str | None, tuple[date, str] | None]:
    """The visitor id an order may carry (only one this service signed), and the refusal to
    count when another was sent. Checkout never fails over it: the sale goes through, it is
    only not attributed to a visitor (the conversion report counts it among refused ids)."""
    if visitor_id is None:
        return None, None
    problem = arms.visitor_id_problem(visitor_id, settings.secret_key)
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
    confirmations: dict[int, terms.Confirmation] = {}
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
            check_chargeable(f"{where}.unit_price", line.unit_price, currency)
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
        check_chargeable(f"{where}.offer_token", plan.price, currency)
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
        confirmations[lines[-1].line_no] = _confirmation(
            settings, lines[-1], plan, product_order_line.manufacturer_warranty_months)
    # The plans' tax, once per order and rate (exclusive prices: added to what is charged).
    order_tax.apply(lines, settings.tax)
    total = sum(line.gross for line in lines)
    if total <= 0:
        raise CartError("the order total is zero; there is nothing to charge",
                        code="empty_order")
    visitor_id, refused = attributable_visitor(settings, cart.visitor_id)
    order = Order(store_order_ref=cart.order_ref, customer_email=cart.customer_email,
                  currency=currency, total_amount=total, channel=channel,
                  visitor_id=visitor_id)
    return PricedCart(order=order, lines=lines, covers=covers, refused_visitor_id=refused,
                      tax=settings.tax, confirmations=confirmations, lang=cart.lang)


def _confirmation(settings: Settings, line: OrderLine, plan: prices.PricedPlan,
                  manufacturer_months: int, purchase_date: date | None = None,
                  plan_sold_on: date | None = None) -> terms.Confirmation:
    """The final-confirmation items of a priced plan line bought today (or, for a plan
    added later, on ``plan_sold_on`` for a product bought on ``purchase_date``)."""
    today = store_today(settings.timezone)
    dates = coverage_dates(purchase_date=purchase_date or today,
                           term_months=plan.spec.term_months,
                           manufacturer_months=manufacturer_months,
                           coverage=plan.spec.coverage, plan_sold_on=plan_sold_on)
    return terms.confirm_plan(settings=settings, rule_set_version=line.rule_set_version,
                              category=line.warranty_category, plan_code=plan.spec.code,
                              coverage=plan.spec.coverage, term_months=plan.spec.term_months,
                              unit_price=line.unit_price, dates=dates)


def plan_confirmation(settings: Settings, line: OrderLine, plan: prices.PricedPlan, *,
                      manufacturer_months: int, purchase_date: date,
                      plan_sold_on: date) -> terms.Confirmation:
    """The confirmation items of a plan bought after its product (post-purchase)."""
    return _confirmation(settings, line, plan, manufacturer_months, purchase_date,
                         plan_sold_on)


def _not_in_catalog(where: str, sku: str) -> catalog.NotInCatalog:
    """The refusal of a product outside the catalog, naming the line."""
    message = (f"sku {sku!r} is not in the store's catalog; this store sells only catalog "
               "products (WARRANTY_CATALOG_ONLY)")
    return catalog.NotInCatalog(f"{where}: {message}",
                                details=[{"at": f"{where}.sku", "message": message}])


def check_chargeable(where: str, amount: int, currency: str) -> None:
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
    version = rules.latest_version(session)
    store_category = catalog_product.store_category if catalog_product else line.category
    if version is None or not store_category:
        return None
    return rules.get_version(session, version).warranty_category(store_category)


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
            catalog_product: Product | None, now: float | None) -> tokens.OfferClaim:
    """Verify a plan line's token against its product line."""
    return tokens.verify_offer_token(
        line.offer_token, secret=settings.secret_key,
        sku=catalog_product.sku if catalog_product else None,
        product_price=product_line.unit_price, currency=settings.currency, now=now,
        catalog_price=catalog_product is not None)


def _price_plan_line(*, session: Session, where: str, line: PlanLineIn,
                     product_line: ProductLineIn, catalog_product: Product | None,
                     settings: Settings, now: float | None,
                     ) -> tuple[prices.PricedPlan, str, tokens.OfferClaim]:
    """Verify the offer token and price the plan again; errors name the line."""
    try:
        claim = _verify(line, settings, product_line, catalog_product, now)
        store_category = catalog_product.store_category if catalog_product else (
            product_line.category or claim.store_category)
        if not catalog_product and store_category != claim.store_category:
            raise InvalidOffer("offer was made for another category",
                                      code="offer_product_mismatch")
        if claim.rule_set_version != rules.newest_version(session):
            raise OfferStale("the pricing rules changed since this offer was made; ask for "
                             "fresh offers")
        plan, category = services.reprice(
            session=session, claim=claim, store_category=store_category,
            manufacturer_months=_months(product_line, catalog_product))
        return plan, category, claim
    except InvalidOffer as exc:
        kind = OfferStale if isinstance(exc, OfferStale) else CartError  # 409 asks again
        raise kind(f"{where}: {exc.message}", code=exc.code,
                   details=[{"at": f"{where}.offer_token", "message": exc.message}]) from None


def save_pending(*, session: Session, priced: PricedCart) -> Order:
    """Store the order and its lines as pending (the caller commits before calling Stripe)."""
    write_transaction(session)
    if priced.refused_visitor_id is not None:
        day, reason = priced.refused_visitor_id
        arms.count_refused(session=session, day=day, source="checkout", reason=reason)
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
