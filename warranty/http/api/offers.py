"""Storefront offers: plans for a catalog sku or an ad-hoc category and price."""

from __future__ import annotations

import hashlib
import time

import orjson
from flask import Blueprint, Flask, Response, current_app, request
from pydantic import BaseModel, ConfigDict, Field, model_validator

from warranty.catalog import services as catalog
from warranty.core.dates import store_today
from warranty.core.text import SingleLine
from warranty.db import revisions
from warranty.db.engine import read
from warranty.http.api.spec import endpoint
from warranty.http.session import get_session
from warranty.offers import services
from warranty.offers.cache import Entry, OfferCache
from warranty.offers.tokens import bucket_expiry, bucket_start
from warranty.pricing import terms

bp = Blueprint("offers", __name__, url_prefix="/api/v1")
MAX_BATCH_ITEMS = 50
CATALOG_ONLY_MESSAGE = ("this store sells only catalog products: ask for offers by sku "
                        "(WARRANTY_CATALOG_ONLY)")


class ProductSpec(BaseModel):
    """Either ``sku`` (catalog product) or ``category`` and ``price`` (ad-hoc)."""

    sku: SingleLine | None = Field(default=None, min_length=1, max_length=100)
    category: SingleLine | None = Field(default=None, min_length=1, max_length=100)
    price: int | None = Field(default=None, ge=0, le=10**12, description="minor units")
    manufacturer_warranty_months: int = Field(default=12, ge=0, le=240)

    @model_validator(mode="after")
    def _one_kind(self) -> ProductSpec:
        """sku alone, or category with price."""
        if self.sku is None and (self.category is None or self.price is None):
            raise ValueError("give sku, or category and price")
        if self.sku is not None and (self.category is not None or self.price is not None):
            raise ValueError("give sku, or category and price, not both")
        return self


class OfferQuery(ProductSpec):
    """The query of GET /offers: a product, and the key when not sent as a header."""

    key: str | None = Field(default=None, description="the store's public key")


class Offer(BaseModel):
    """One plan offered for the product, with a signed token for checkout."""

    plan_code: str
    coverage: str
    term_months: int
    price: int = Field(description="minor units")
    currency: str
    deductible: int
    liability_schedule: list[float]
    covers: list[str]
    term_start: str
    term_end: str
    breakdown_cover_start: str
    accident_cover_start: str | None
    expires_at: int = Field(description="unix time after which checkout refuses the token")
    offer_token: str
    # The final-confirmation items the plan choice shows (with the answer's ``terms``).
    price_with_tax: int = Field(description="minor units: the price with the tax included")
    tax: int = Field(description="minor units: the tax in price_with_tax")
    terms_version: str
    terms_url: str


class OfferTerms(BaseModel):
    """The conditions every offer of the answer is sold under (final-confirmation items)."""

    version: str | None = Field(description="the terms version a plan bought now gets")
    free_look_days: int
    cancellation_fee: int = Field(description="minor units")
    repair_only: bool
    tax_mode: str
    tax_percent: str


class NoOfferReason(BaseModel):
    """Why there are no offers."""

    code: str
    message: str


class OffersResponse(BaseModel):
    """Offers for one product; empty with a reason when it is not eligible."""

    sku: str | None
    category: str
    warranty_category: str | None
    product_price: int
    currency: str
    rule_set_version: int | None
    offers: list[Offer]
    terms: OfferTerms | None = Field(default=None, description="absent when there is no "
                                                                "product to offer for")
    reason: NoOfferReason | None


def _offers_body(session, settings, ref: services.ProductRef, *, now: float | None = None,
                 rule_version: int | None = None) -> dict:
    """The OffersResponse shape for one product reference."""
    result = services.make_offers(session=session, ref=ref, currency=settings.currency,
                                  secret=settings.secret_key,
                                  today=store_today(settings.timezone),
                                  ttl_seconds=settings.offer_ttl_seconds, now=now,
                                  bucket_seconds=settings.offer_bucket_seconds,
                                  rule_version=rule_version)
    reason = ({"code": result.reason_code, "message": result.reason}
              if result.reason_code else None)
    # Built as a dict: this endpoint is hot and the shape is fixed by OffersResponse.
    return {
        "sku": ref.sku, "category": ref.store_category,
        "warranty_category": result.warranty_category, "product_price": ref.price,
        "currency": result.currency, "rule_set_version": result.rule_set_version,
        "offers": result.offers, "terms": terms.add_offer_terms(
            settings, result.offers, rule_set_version=result.rule_set_version,
            category=result.warranty_category), "reason": reason,
    }


def _ad_hoc_ref(item: ProductSpec) -> services.ProductRef:
    """The reference of a product given by category and price."""
    return services.ProductRef(sku=None, store_category=item.category, price=item.price,
                             manufacturer_warranty_months=item.manufacturer_warranty_months)


# --- the per-process cache of rendered answers (warranty/offers/cache.py) -------------------

CACHE = "warranty.offers_cache"


def install_cache(app: Flask, settings) -> None:
    """Give ``app`` its offers cache (one per app: per database and process), unless
    WARRANTY_OFFER_CACHE_MB is 0."""
    if not settings.offer_cache_mb:
        return
    url = settings.database_url
    app.extensions[CACHE] = OfferCache(
        max_bytes=settings.offer_cache_mb * 2**20,
        revision_seconds=settings.offer_revision_seconds,
        read_revisions=lambda: read(url, revisions.read),
        committed_here=lambda: revisions.committed_here(url))


def offers_cache(app: Flask) -> OfferCache | None:
    """The app's offers cache (None when turned off)."""
    return app.extensions.get(CACHE)


class _Answer:
    """What one product's offers depend on, and how to work them out on a miss."""

    __slots__ = ("key", "bucket", "now", "rules")

    def __init__(self, settings, cache: OfferCache | None, item: ProductSpec):
        self.now = time.time()
        self.bucket = bucket_start(self.now, settings.offer_bucket_seconds)
        if cache is None:
            self.rules, self.key = None, None
            return
        current = cache.revisions()
        self.rules = current.rules or None  # 0: no row yet (rules stored before 0016)
        product = (("sku", item.sku) if item.sku is not None else
                   ("ad_hoc", item.category, item.price, item.manufacturer_warranty_months))
        self.key = (*product, current.catalog, current.rules, store_today(settings.timezone),
                    settings.currency)

    def cached(self, settings, cache: OfferCache | None) -> Entry | None:
        """The cached answer, signed again first when it is of a past bucket."""
        entry = cache.get(self.key) if cache is not None else None
        if entry is None or entry.bucket_end > self.now:
            return entry
        body = services.resign(orjson.loads(entry.body),
                               manufacturer_months=entry.manufacturer_months,
                               secret=settings.secret_key,
                               expires=bucket_expiry(self.now, settings.offer_ttl_seconds,
                                                     settings.offer_bucket_seconds))
        entry = _entry(settings, body, self.bucket, entry.manufacturer_months)
        cache.put(self.key, entry)
        return entry


def _entry(settings, body: dict, bucket: int, manufacturer_months: int) -> Entry:
    """A rendered answer: the JSON bytes (as jsonify writes them) and a strong ETag."""
    data = current_app.json.dumps(body).encode() + b"\n"
    etag = '"' + hashlib.blake2b(data, digest_size=16).hexdigest() + '"'
    return Entry(body=data, etag=etag, bucket_end=bucket + settings.offer_bucket_seconds,
                 manufacturer_months=manufacturer_months)


def _catalog_only(settings, cache: OfferCache | None, conn=None) -> bool:
    """Whether only catalog products get offers (asked once per catalog revision)."""
    if isinstance(settings.catalog_only, bool):
        return settings.catalog_only

    def ask() -> bool:
        return (catalog.catalog_only(conn, settings) if conn is not None else
                read(settings.database_url, lambda c: catalog.catalog_only(c, settings)))

    return ask() if cache is None else cache.memo("catalog_only", ask)


def _conditional(settings, entry: Entry) -> Response:
    """The answer, or 304 when the client holds it already; cacheable within its bucket."""
    max_age = max(0, min(settings.offer_max_age_seconds, int(entry.bucket_end - time.time())))
    # CORS adds Origin (warranty.http.cors); the key may come as a header instead of the query.
    headers = [("ETag", entry.etag), ("Cache-Control", f"public, max-age={max_age}"),
               ("Vary", "Origin, X-Warranty-Key")]
    held = request.environ.get("HTTP_IF_NONE_MATCH")
    if held and request.if_none_match.contains_weak(entry.etag.strip('"')):
        return current_app.response_class(status=304, headers=headers)
    headers.append(("Content-Type", "application/json"))
    return current_app.response_class(entry.body, headers=headers)


@endpoint(bp, "/offers", summary="Plan offers for a product", auth="public",
          query=OfferQuery, response=OffersResponse, errors=(404,))
def get_offers(query: OfferQuery):
    """Price every eligible plan and sign an offer for each.

    Answers carry a strong ``ETag`` (``If-None-Match`` gets 304) and ``Cache-Control:
    public`` for at most WARRANTY_OFFER_MAX_AGE_SECONDS within the tokens' bucket: they are
    the same for every shopper, and for both arms of the holdout (the embed decides from
    the visitor's signed assignment whether to show them)."""
    settings = current_app.config["SETTINGS"]
    cache = offers_cache(current_app)
    answer = _Answer(settings, cache, query)
    if query.sku is None and _catalog_only(settings, cache):
        raise catalog.NotInCatalog(CATALOG_ONLY_MESSAGE)
    entry = answer.cached(settings, cache)
    if entry is None:
        def offers_for(conn):
            # Committed data only, on an autocommit connection: no session, no transaction.
            ref = (services.product_ref(session=conn, sku=query.sku) if query.sku is not None
                   else _ad_hoc_ref(query))
            return ref, _offers_body(conn, settings, ref, now=answer.now,
                                     rule_version=answer.rules)

        ref, body = read(settings.database_url, offers_for)
        entry = _entry(settings, body, answer.bucket, ref.manufacturer_warranty_months)
        if cache is not None:
            cache.put(answer.key, entry)
    return _conditional(settings, entry)


class OfferItem(ProductSpec):
    """One product of a batch: ``sku``, or ``category`` and ``price``."""

    model_config = ConfigDict(extra="forbid")


class OfferBatch(BaseModel):
    """Several products at once, e.g. every item in a cart."""

    model_config = ConfigDict(extra="forbid")

    items: list[OfferItem] = Field(min_length=1, max_length=MAX_BATCH_ITEMS)


class BatchOffersResult(OffersResponse):
    """One item's offers; an unknown sku gets no offers, reason ``unknown_sku``."""

    category: str | None
    product_price: int | None


class BatchOffersResponse(BaseModel):
    """Results in the order of the items."""

    results: list[BatchOffersResult]


@endpoint(bp, "/offers/batch", method="POST", summary="Plan offers for several products",
          auth="public", body=OfferBatch, response=BatchOffersResponse, errors=(404,))
def batch_offers(body: OfferBatch):
    """Offers for each item, as GET /offers gives them (from the same cache); one catalog
    query for every sku not cached."""
    settings = current_app.config["SETTINGS"]
    cache = offers_cache(current_app)
    answers = [_Answer(settings, cache, item) for item in body.items]
    parts: list[bytes | None] = []
    for item, answer in zip(body.items, answers, strict=True):
        entry = None
        if cache is not None and (item.sku is not None or not _catalog_only(settings, cache)):
            entry = answer.cached(settings, cache)
        parts.append(entry.body.rstrip(b"\n") if entry is not None else None)
    missing = [i for i, part in enumerate(parts) if part is None]
    if missing:
        session = get_session()
        items = [body.items[i] for i in missing]
        skus = {item.sku for item in items if item.sku is not None}
        products = catalog.products_by_sku(session, skus)
        only_catalog = any(item.sku is None for item in items) and _catalog_only(
            settings, cache, session)
        for i, item in zip(missing, items, strict=True):
            answer = answers[i]
            if item.sku is None and only_catalog:
                result = {
                    "sku": None, "category": item.category, "warranty_category": None,
                    "product_price": item.price, "currency": settings.currency,
                    "rule_set_version": None, "offers": [], "terms": None,
                    "reason": {"code": "not_in_catalog", "message": CATALOG_ONLY_MESSAGE}}
            elif item.sku is not None and item.sku not in products:
                result = {
                    "sku": item.sku, "category": None, "warranty_category": None,
                    "product_price": None, "currency": settings.currency,
                    "rule_set_version": None, "offers": [], "terms": None,
                    "reason": {"code": "unknown_sku",
                               "message": f"no product with sku {item.sku!r}"}}
            else:
                ref = (_ad_hoc_ref(item) if item.sku is None
                       else services.ref_for_product(products[item.sku]))
                entry = _entry(settings, _offers_body(session, settings, ref, now=answer.now,
                                                      rule_version=answer.rules),
                               answer.bucket, ref.manufacturer_warranty_months)
                if cache is not None:
                    cache.put(answer.key, entry)
                parts[i] = entry.body.rstrip(b"\n")
                continue
            parts[i] = current_app.json.dumps(result).encode()
    data = b'{"results":[' + b",".join(parts) + b"]}\n"
    return Response(data, status=200, mimetype="application/json")
