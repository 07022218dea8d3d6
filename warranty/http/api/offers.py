"""Storefront offers: plans for a catalog sku or an ad-hoc category and price."""

from __future__ import annotations

from flask import Blueprint, current_app
from pydantic import BaseModel, ConfigDict, Field, model_validator

from warranty.catalog import services as catalog
from warranty.core.dates import store_today
from warranty.core.text import SingleLine
from warranty.db.engine import read
from warranty.http.api.spec import endpoint
from warranty.http.session import get_session
from warranty.offers import services

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
    reason: NoOfferReason | None


def _offers_body(session, settings, ref: services.ProductRef) -> dict:
    """The OffersResponse shape for one product reference."""
    result = services.make_offers(session=session, ref=ref, currency=settings.currency,
                                secret=settings.secret_key,
                                today=store_today(settings.timezone),
                                ttl_seconds=settings.offer_ttl_seconds)
    reason = ({"code": result.reason_code, "message": result.reason}
              if result.reason_code else None)
    # Built as a dict: this endpoint is hot and the shape is fixed by OffersResponse.
    return {
        "sku": ref.sku, "category": ref.store_category,
        "warranty_category": result.warranty_category, "product_price": ref.price,
        "currency": result.currency, "rule_set_version": result.rule_set_version,
        "offers": result.offers, "reason": reason,
    }


def _ad_hoc_ref(item: ProductSpec) -> services.ProductRef:
    """The reference of a product given by category and price."""
    return services.ProductRef(sku=None, store_category=item.category, price=item.price,
                             manufacturer_warranty_months=item.manufacturer_warranty_months)


@endpoint(bp, "/offers", summary="Plan offers for a product", auth="public",
          query=OfferQuery, response=OffersResponse, errors=(404,))
def get_offers(query: OfferQuery):
    """Price every eligible plan and sign an offer for each."""
    settings = current_app.config["SETTINGS"]

    def offers_for(conn):
        # Committed data only, on an autocommit connection: no session, no transaction.
        if query.sku is not None:
            ref = services.product_ref(session=conn, sku=query.sku)
        elif catalog.catalog_only(conn, settings):
            raise catalog.NotInCatalog(CATALOG_ONLY_MESSAGE)
        else:
            ref = _ad_hoc_ref(query)
        return _offers_body(conn, settings, ref)

    return read(settings.database_url, offers_for)


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
    """Offers for each item, as GET /offers gives them; one catalog query for every sku."""
    settings = current_app.config["SETTINGS"]
    session = get_session()
    skus = {item.sku for item in body.items if item.sku is not None}
    products = catalog.products_by_sku(session, skus)
    ad_hoc = any(item.sku is None for item in body.items)
    only_catalog = ad_hoc and catalog.catalog_only(session, settings)
    results = []
    for item in body.items:
        if item.sku is None and only_catalog:
            results.append({
                "sku": None, "category": item.category, "warranty_category": None,
                "product_price": item.price, "currency": settings.currency,
                "rule_set_version": None, "offers": [],
                "reason": {"code": "not_in_catalog", "message": CATALOG_ONLY_MESSAGE}})
        elif item.sku is None:
            results.append(_offers_body(session, settings, _ad_hoc_ref(item)))
        elif item.sku in products:
            results.append(_offers_body(session, settings,
                                        services.ref_for_product(products[item.sku])))
        else:
            results.append({
                "sku": item.sku, "category": None, "warranty_category": None,
                "product_price": None, "currency": settings.currency, "rule_set_version": None,
                "offers": [], "reason": {"code": "unknown_sku",
                                         "message": f"no product with sku {item.sku!r}"}})
    return {"results": results}
