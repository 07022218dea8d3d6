"""Plan offers for a product, and the signed tokens checkout accepts."""

from __future__ import annotations

import functools
import hashlib
import json
import time
from dataclasses import dataclass
from datetime import date

import orjson
from itsdangerous import BadSignature, Signer, URLSafeSerializer
from itsdangerous.encoding import base64_encode, want_bytes
from sqlmodel import Session

from warranty import pricing
from warranty.coverage import coverage_dates
from warranty.errors import InvalidOffer
from warranty.models import Product
from warranty.text import sku_key

# What each coverage pays for, shown with every offer.
COVERS = {
    "standard": ["mechanical and electrical breakdown after the manufacturer's warranty"],
    "accident": ["mechanical and electrical breakdown after the manufacturer's warranty",
                 "accidental damage (drops, spills, cracked screens) from purchase"],
}
TOKEN_VERSION = 1


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


class _OfferSigner(Signer):
    """itsdangerous' signer with its derived key computed once, not once per signature."""

    @functools.lru_cache(maxsize=4)  # noqa: B019 (one signer per serializer, cached below)
    def derive_key(self, secret_key=None) -> bytes:
        """The HMAC key derived from the secret and salt, as itsdangerous derives it."""
        return super().derive_key(secret_key)


class _OrjsonText:
    """The JSON module itsdangerous serializes with: compact JSON by orjson, as text (what
    itsdangerous' own compact JSON gives, in half the time). Values orjson can't write
    (integers past 64 bits, infinities) take the standard library's path, and tokens are
    read by the standard library, which reads both."""

    @staticmethod
    def dumps(obj) -> str:
        """Compact JSON text."""
        try:
            return orjson.dumps(obj).decode()
        except TypeError:
            return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)

    loads = staticmethod(json.loads)


class _OfferSerializer(URLSafeSerializer):
    """itsdangerous' URL-safe serializer, tuned for a hot path through its public hooks:
    orjson, no zlib attempt per token (offers are short), one signer per salt, not per
    call, and its key derived once. Tokens stay ordinary itsdangerous tokens."""

    default_signer = _OfferSigner
    default_serializer = _OrjsonText

    def dump_payload(self, obj) -> bytes:
        """Compact JSON in URL-safe base64, never compressed."""
        return base64_encode(want_bytes(self.serializer.dumps(obj)))

    @functools.lru_cache(maxsize=4)  # noqa: B019 (the serializer itself is cached per secret)
    def make_signer(self, salt=None):
        """The HMAC signer, built once."""
        return super().make_signer(salt)


@functools.lru_cache(maxsize=8)
def _serializer(secret: str) -> URLSafeSerializer:
    """HMAC-SHA256 signer for offer tokens, with a salt of its own."""
    return _OfferSerializer(secret, salt="warranty.offer",
                            signer_kwargs={"digest_method": hashlib.sha256})


def ref_for_product(product: Product) -> ProductRef:
    """The offer reference of a catalog product."""
    return ProductRef(sku=product.sku, store_category=product.store_category,
                      price=product.unit_price,
                      manufacturer_warranty_months=product.manufacturer_warranty_months,
                      title=product.title)


def make_offers(*, session: Session, ref: ProductRef, currency: str, secret: str, today: date,
                ttl_seconds: int, now: float | None = None) -> OfferResult:
    """Price every eligible plan for ``ref`` under the current rules and sign each offer."""
    version, rules = pricing.current_rules(session)
    category = rules.warranty_category(ref.store_category)
    result = OfferResult(product=ref, currency=currency, warranty_category=category,
                         rule_set_version=version, offers=[])
    if category is None:
        result.reason_code = "unmapped_category"
        result.reason = f"store category '{ref.store_category}' maps to no warranty category"
        return result
    try:
        plans = pricing.price_plans(rules, category, ref.price, ref.manufacturer_warranty_months)
    except pricing.NoOffer as no:
        result.reason_code, result.reason = no.code, no.reason
        return result
    expires = int((now or time.time()) + ttl_seconds)
    cat_rules = rules.categories[category]
    deductible, liability = cat_rules.deductible, cat_rules.offer_liability_schedule
    signer = _serializer(secret)
    for plan in plans:
        spec = plan.spec
        token = signer.dumps({
            "v": TOKEN_VERSION, "sku": ref.sku, "cat": ref.store_category, "pp": ref.price,
            "mfr": ref.manufacturer_warranty_months, "plan": spec.code, "price": plan.price,
            "cur": currency, "rv": version, "exp": expires,
        })
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


@dataclass(frozen=True)
class OfferClaim:
    """What a verified offer token says."""

    sku: str | None
    store_category: str
    product_price: int
    manufacturer_warranty_months: int
    plan_code: str
    price: int
    currency: str
    rule_set_version: int
    expires_at: int


def verify_offer_token(token: str, *, secret: str, sku: str | None, product_price: int,
                       currency: str, now: float | None = None) -> OfferClaim:
    """Check a token's signature, expiry and that it is for this product at this price."""
    if not isinstance(token, str) or not token or len(token) > 2000:
        raise InvalidOffer("offer token is missing or malformed", code="offer_malformed")
    try:
        data = _serializer(secret).loads(token)
    except BadSignature:
        raise InvalidOffer("offer token is forged or altered", code="offer_bad_signature") from None
    try:
        claim = OfferClaim(
            sku=data["sku"], store_category=str(data["cat"]), product_price=int(data["pp"]),
            manufacturer_warranty_months=int(data["mfr"]), plan_code=str(data["plan"]),
            price=int(data["price"]), currency=str(data["cur"]), rule_set_version=int(data["rv"]),
            expires_at=int(data["exp"]),
        )
    except (KeyError, TypeError, ValueError, OverflowError):  # OverflowError: int(Infinity)
        raise InvalidOffer("offer token is malformed", code="offer_malformed") from None
    if data.get("v") != TOKEN_VERSION:
        raise InvalidOffer("offer token is from an unsupported version", code="offer_malformed")
    if claim.expires_at < (now or time.time()):
        raise InvalidOffer("offer has expired; ask for a fresh offer", code="offer_expired")
    if (claim.sku is None) != (sku is None) or (
            sku is not None and sku_key(claim.sku) != sku_key(sku)):
        raise InvalidOffer("offer is for another product", code="offer_product_mismatch")
    if claim.product_price != product_price:
        raise InvalidOffer("offer was made for another product price",
                           code="offer_price_mismatch")
    if claim.currency != currency:
        raise InvalidOffer("offer is in another currency", code="offer_currency_mismatch")
    return claim


def reprice(*, session: Session, claim: OfferClaim, store_category: str,
            manufacturer_months: int) -> tuple[pricing.PricedPlan, str]:
    """Price a verified offer again on the server under the rule version it was made with.

    Returns the priced plan and its warranty category; refuses when the server's price
    differs from the token's or the plan is no longer eligible.
    """
    rules = pricing.get_version(session, claim.rule_set_version)
    category = rules.warranty_category(store_category)
    if category is None:
        raise InvalidOffer("product's category has no plans", code="offer_not_eligible")
    try:
        plans = pricing.price_plans(rules, category, claim.product_price, manufacturer_months)
    except pricing.NoOffer as no:
        raise InvalidOffer(f"plan is no longer offered: {no.reason}",
                           code="offer_not_eligible") from None
    plan = next((p for p in plans if p.spec.code == claim.plan_code), None)
    if plan is None:
        raise InvalidOffer("plan is not offered for this product", code="offer_not_eligible")
    if plan.price != claim.price:
        raise InvalidOffer("plan price differs from the offer", code="offer_price_mismatch")
    return plan, category
