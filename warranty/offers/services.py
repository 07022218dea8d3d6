"""Plan offers for a product."""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa
from sqlmodel import Session

from warranty.catalog.models import Product
from warranty.core.errors import InvalidOffer, NotFound
from warranty.core.text import sku_key
from warranty.coverage.dates import coverage_dates
from warranty.offers.tokens import TOKEN_VERSION, OfferClaim, bucket_expiry, serializer
from warranty.pricing import prices
from warranty.pricing import rules as pricing_rules

# What each coverage pays for, shown with every offer.
COVERS = {
    "standard": ["mechanical and electrical breakdown after the manufacturer's warranty"],
    "accident": ["mechanical and electrical breakdown after the manufacturer's warranty",
                 "accidental damage (drops, spills, cracked screens) from purchase"],
}


@dataclass(frozen=True)
class ProductRef:
    """What an offer is for: a catalog sku, or an ad-hoc category and price."""

    sku: str | None
    store_category: str
    price: int  # minor units
    manufacturer_warranty_months: int
    title: str = ""


@dataclass
class OfferResult:
    """Offers for one product, or none and why."""

    product: ProductRef
    currency: str
    warranty_category: str | None
    rule_set_version: int | None
    offers: list[dict]
    reason_code: str | None = None
    reason: str | None = None


def ref_for_product(product: Product) -> ProductRef:
    """The offer reference of a catalog product."""
    return ProductRef(sku=product.sku, store_category=product.store_category,
                      price=product.unit_price,
                      manufacturer_warranty_months=product.manufacturer_warranty_months,
                      title=product.title)


_product = Product.__table__.c
_OFFER_REF = sa.select(_product.sku, _product.store_category, _product.unit_price,
                       _product.manufacturer_warranty_months, _product.title).where(
    _product.sku_key == sa.bindparam("key"))


def product_ref(*, session: Session | sa.Connection, sku: str):
    """What offers need of a catalog product (one indexed Core select, no ORM object)."""
    row = session.execute(_OFFER_REF, {"key": sku_key(sku)}).first()
    if row is None:
        raise NotFound(f"no product with sku {sku!r}", code="unknown_sku")
    return ProductRef(sku=row[0], store_category=row[1], price=row[2],
                      manufacturer_warranty_months=row[3], title=row[4])


def make_offers(*, session: Session | sa.Connection, ref: ProductRef, currency: str, secret: str,
                today: date, ttl_seconds: int, now: float | None = None,
                bucket_seconds: int = 1, rule_version: int | None = None) -> OfferResult:
    """Price every eligible plan for ``ref`` under the current rules and sign each offer.

    Tokens expire at the start of ``now``'s bucket of ``bucket_seconds`` plus the TTL, so
    every answer within one bucket is the same, byte for byte (what the offers cache keeps).
    ``rule_version`` names the rules to price under (the cache's revision), else the newest.
    """
    if rule_version:
        version, rules = rule_version, pricing_rules.get_version(session, rule_version)
    else:
        version, rules = pricing_rules.current_rules(session)
    category = rules.warranty_category(ref.store_category)
    result = OfferResult(product=ref, currency=currency, warranty_category=category,
                         rule_set_version=version, offers=[])
    if category is None:
        result.reason_code = "unmapped_category"
        result.reason = f"store category '{ref.store_category}' maps to no warranty category"
        return result
    try:
        plans = prices.price_plans(rules, category, ref.price, ref.manufacturer_warranty_months)
    except prices.NoOffer as no:
        result.reason_code, result.reason = no.code, no.reason
        return result
    expires = bucket_expiry(now or time.time(), ttl_seconds, bucket_seconds)
    cat_rules = rules.categories[category]
    deductible, liability = cat_rules.deductible, cat_rules.offer_liability_schedule
    signer = serializer(secret)
    for plan in plans:
        spec = plan.spec
        token = signer.dumps(_token_payload(
            sku=ref.sku, category=ref.store_category, product_price=ref.price,
            manufacturer_months=ref.manufacturer_warranty_months, plan_code=spec.code,
            price=plan.price, currency=currency, rule_version=version, expires=expires))
        result.offers.append({
            "plan_code": spec.code,
            "coverage": spec.coverage,
            "term_months": spec.term_months,
            "price": plan.price,
            "currency": currency,
            "deductible": deductible,
            "liability_schedule": liability,
            "covers": COVERS[spec.coverage],
            **_offer_dates(today, spec.term_months, ref.manufacturer_warranty_months,
                           spec.coverage),
            "expires_at": expires,
            "offer_token": token,
        })
    return result


def _token_payload(*, sku: str | None, category: str, product_price: int,
                   manufacturer_months: int, plan_code: str, price: int, currency: str,
                   rule_version: int, expires: int) -> dict:
    """What an offer token signs (``warranty.offers.tokens.verify_offer_token`` reads it)."""
    return {"v": TOKEN_VERSION, "sku": sku, "cat": category, "pp": product_price,
            "mfr": manufacturer_months, "plan": plan_code, "price": price, "cur": currency,
            "rv": rule_version, "exp": expires}


def resign(body: dict, *, manufacturer_months: int, secret: str, expires: int) -> dict:
    """An offers answer (the API's shape, as ``make_offers`` made it) with every token signed
    again for ``expires``: what a new time bucket changes, without reading or pricing again."""
    signer = serializer(secret)
    for offer in body["offers"]:
        offer["expires_at"] = expires
        offer["offer_token"] = signer.dumps(_token_payload(
            sku=body["sku"], category=body["category"], product_price=body["product_price"],
            manufacturer_months=manufacturer_months, plan_code=offer["plan_code"],
            price=offer["price"], currency=offer["currency"],
            rule_version=body["rule_set_version"], expires=expires))
    return body


@functools.lru_cache(maxsize=4096)  # pure; a day's offers use a few dozen combinations
def _offer_dates(today: date, term_months: int, manufacturer_months: int,
                 coverage: str) -> dict[str, str | None]:
    """When an offer's term and covers start and end for a purchase ``today``."""
    dates = coverage_dates(purchase_date=today, term_months=term_months,
                           manufacturer_months=manufacturer_months, coverage=coverage)
    return {
        "term_start": dates.purchase_date.isoformat(),
        "term_end": dates.term_end.isoformat(),
        "breakdown_cover_start": dates.breakdown_start.isoformat(),
        "accident_cover_start": dates.accident_start.isoformat()
        if dates.accident_start else None,
    }


def reprice(*, session: Session, claim: OfferClaim, store_category: str,
            manufacturer_months: int) -> tuple[prices.PricedPlan, str]:
    """Price a verified offer again on the server under the rule version it was made with.

    Returns the priced plan and its warranty category; refuses when the server's price
    differs from the token's or the plan is no longer eligible.
    """
    rules = pricing_rules.get_version(session, claim.rule_set_version)
    category = rules.warranty_category(store_category)
    if category is None:
        raise InvalidOffer("product's category has no plans", code="offer_not_eligible")
    try:
        plans = prices.price_plans(rules, category, claim.product_price, manufacturer_months)
    except prices.NoOffer as no:
        raise InvalidOffer(f"plan is no longer offered: {no.reason}",
                           code="offer_not_eligible") from None
    plan = next((p for p in plans if p.spec.code == claim.plan_code), None)
    if plan is None:
        raise InvalidOffer("plan is not offered for this product", code="offer_not_eligible")
    if plan.price != claim.price:
        raise InvalidOffer("plan price differs from the offer", code="offer_price_mismatch")
    return plan, category
