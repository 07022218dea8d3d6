"""Checkout endpoints for the storefront: hosted session, PaymentIntent, post-purchase plans."""

from __future__ import annotations

from flask import Blueprint, current_app
from pydantic import BaseModel, Field

from warranty.http.api.offers import NoOfferReason, Offer, OfferTerms
from warranty.http.api.spec import endpoint
from warranty.http.checkout import hosted, start_payment
from warranty.http.clients import stripe_client
from warranty.http.session import get_session
from warranty.orders import cart
from warranty.payments import checkout as payments_checkout
from warranty.post_purchase import plans as post_purchase
from warranty.pricing import terms

bp = Blueprint("checkout", __name__, url_prefix="/api/v1")


class TaxOut(BaseModel):
    """The tax in the order's plans (the store has one rate): a qualified invoice's figures."""

    mode: str = Field(description="inclusive: prices include the tax; exclusive: it is added")
    rate: str = Field(description="a decimal fraction, such as 0.10")
    percent: str
    plans_gross: int = Field(description="minor units: the plans, tax included")
    tax: int = Field(description="minor units: the tax at this rate, rounded once per order")
    plans_net: int = Field(description="minor units: the plans without their tax")
    registration_number: str | None = Field(
        description="the store's qualified invoice registration number (T + 13 digits)")


def tax_out(priced: cart.PricedCart) -> TaxOut:
    """The tax figures of a priced cart."""
    policy = priced.tax
    plans = [line for line in priced.lines if line.kind == "plan"]
    return TaxOut(mode=policy.mode, rate=str(policy.rate), percent=policy.percent,
                  plans_gross=sum(p.gross for p in plans), tax=sum(p.tax for p in plans),
                  plans_net=sum(p.net for p in plans),
                  registration_number=policy.registration_number or None)


class PlanConfirmation(BaseModel):
    """A plan line's final-confirmation items: what the shopper must see before paying."""

    line_no: int
    plan_code: str
    coverage: str
    term_months: int
    currency: str
    price_with_tax: int = Field(description="minor units: one plan, the tax included")
    tax: int = Field(description="minor units: the tax in price_with_tax")
    term_start: str
    term_end: str
    breakdown_cover_start: str
    accident_cover_start: str | None
    waiting_until: str | None
    free_look_days: int
    cancellation_fee: int = Field(description="minor units")
    repair_only: bool = Field(description="claims settled by repair or replacement only")
    terms_version: str
    terms_url: str
    items: list[str] = Field(description="the items as sentences in the cart's language")


def confirmations_out(priced: cart.PricedCart) -> list[PlanConfirmation]:
    """The confirmation items of a priced cart's plan lines, in its language."""
    return [PlanConfirmation(line_no=line_no, **item.as_dict(priced.lang))
            for line_no, item in sorted(priced.confirmations.items())]


class CheckoutSessionOut(BaseModel):
    """A pending order and the hosted payment page to send the shopper to."""

    order_id: str
    status: str
    currency: str
    total: int = Field(description="minor units: what Stripe charges")
    tax: TaxOut
    confirmation: list[PlanConfirmation]
    checkout_url: str
    stripe_checkout_session_id: str


class PaymentIntentOut(BaseModel):
    """A pending order and the PaymentIntent for the store's own payment form."""

    order_id: str
    status: str
    currency: str
    total: int = Field(description="minor units: what Stripe charges")
    tax: TaxOut
    confirmation: list[PlanConfirmation]
    payment_intent_id: str
    client_secret: str


class PostPurchaseLine(BaseModel):
    """A product line of a paid order and the plans it can still get."""

    line_no: int
    sku: str
    title: str
    quantity: int
    covered_quantity: int
    offers: list[Offer]
    reason: NoOfferReason | None


class PostPurchaseOffers(BaseModel):
    """Plans that can still be added to a paid order (within 60 days)."""

    order_id: str
    purchase_date: str
    lines: list[PostPurchaseLine]
    terms: OfferTerms


def _start_hosted(priced: cart.PricedCart, success_url: str, cancel_url: str):
    """The API answer for a started Checkout Session."""
    cart.check_return_urls(current_app.config["SETTINGS"], success_url=success_url,
                           cancel_url=cancel_url)
    order, stripe_session = hosted(priced, success_url, cancel_url)
    return CheckoutSessionOut(order_id=order.public_id, status=order.status,
                              currency=order.currency, total=order.total_amount,
                              tax=tax_out(priced), confirmation=confirmations_out(priced),
                              checkout_url=stripe_session.url,
                              stripe_checkout_session_id=stripe_session.id)


@endpoint(bp, "/checkout/sessions", method="POST", auth="public", status=201,
          summary="Price a cart and start a Stripe Checkout Session (hosted page)",
          body=cart.HostedCartIn, response=CheckoutSessionOut, errors=(400, 409, 502))
def create_session(body: cart.HostedCartIn):
    """Store the order as pending, then create the hosted payment page."""
    settings = current_app.config["SETTINGS"]
    priced = cart.price_cart(session=get_session(), cart=body, settings=settings,
                                 channel="checkout_session")
    return _start_hosted(priced, body.success_url, body.cancel_url)


@endpoint(bp, "/checkout/payment-intents", method="POST", auth="public", status=201,
          summary="Price a cart and create a PaymentIntent for the store's own form",
          body=cart.CartIn, response=PaymentIntentOut, errors=(409, 502))
def create_payment_intent(body: cart.CartIn):
    """Store the order as pending, then create its PaymentIntent."""
    settings = current_app.config["SETTINGS"]
    session = get_session()
    priced = cart.price_cart(session=session, cart=body, settings=settings,
                                 channel="payment_intent")
    order, intent = start_payment(priced, lambda order: payments_checkout.start_payment_intent(
        stripe_client=stripe_client(), order=order))
    return PaymentIntentOut(order_id=order.public_id, status=order.status,
                            currency=order.currency, total=order.total_amount,
                            tax=tax_out(priced), confirmation=confirmations_out(priced),
                            payment_intent_id=intent.id,
                            client_secret=intent.client_secret)


def _open_lines(order_id: str):
    """A paid order and its product lines with the plans they can still get."""
    session = get_session()
    order = post_purchase.get_order(session, order_id)
    return order, post_purchase.post_purchase_lines(
        session=session, settings=current_app.config["SETTINGS"], order=order)


@endpoint(bp, "/orders/<order_id>/post-purchase-offers", auth="public",
          summary="Plans that can still be bought for a paid order's lines",
          response=PostPurchaseOffers, errors=(404, 409))
def post_purchase_offers(order_id: str):
    """Offers for each product line of a paid order within 60 days of purchase."""
    order, lines = _open_lines(order_id)
    versions = {o["terms_version"] for line in lines for o in line["offers"]}
    return {"order_id": order.public_id, "purchase_date": order.purchase_date.isoformat(),
            "lines": lines, "terms": terms.offer_conditions(
                current_app.config["SETTINGS"], min(versions) if versions else None)}


@endpoint(bp, "/checkout/post-purchase", method="POST", auth="public", status=201,
          summary="Buy a plan for a line of a paid order (hosted page)",
          body=post_purchase.PostPurchaseIn, response=CheckoutSessionOut,
          errors=(400, 404, 409, 502))
def create_post_purchase(body: post_purchase.PostPurchaseIn):
    """A plan-only order for an earlier purchase; 30-day waiting period before claims."""
    settings = current_app.config["SETTINGS"]
    priced = post_purchase.price_post_purchase(session=get_session(), settings=settings, body=body)
    return _start_hosted(priced, body.success_url, body.cancel_url)


class PostPurchaseLink(BaseModel):
    """The signed link to buy a plan for one line later."""

    line_no: int
    sku: str
    url: str


class PostPurchaseLinks(BaseModel):
    """Signed links for each product line of a paid order (for the store's own mails)."""

    order_id: str
    links: list[PostPurchaseLink]


@endpoint(bp, "/orders/<order_id>/post-purchase-links", auth="read",
          summary="Signed post-purchase links for a paid order's product lines",
          response=PostPurchaseLinks, errors=(404, 409))
def post_purchase_links(order_id: str):
    """One signed link per product line that can still get a plan."""
    order, lines = _open_lines(order_id)
    settings = current_app.config["SETTINGS"]
    return {"order_id": order.public_id,
            "links": [{"line_no": line["line_no"], "sku": line["sku"],
                       "url": post_purchase.post_purchase_link(settings, order, line["line_no"])}
                      for line in lines if line["offers"]]}
