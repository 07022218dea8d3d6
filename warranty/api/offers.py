"""Storefront offers: plans for a catalog sku or an ad-hoc category and price."""

from __future__ import annotations

from flask import Blueprint, current_app
from pydantic import BaseModel, Field, model_validator

from warranty import catalog, offers
from warranty.api.spec import endpoint
from warranty.dates import store_today
from warranty.db import get_session

bp = Blueprint("offers", __name__, url_prefix="/api/v1")


class OfferQuery(BaseModel):
    """Either ``sku`` (catalog product) or ``category`` and ``price`` (ad-hoc)."""

    sku: str | None = Field(default=None, min_length=1, max_length=100)
    category: str | None = Field(default=None, min_length=1, max_length=100)
    price: int | None = Field(default=None, ge=0, le=10**12, description="minor units")
    manufacturer_warranty_months: int = Field(default=12, ge=0, le=240)
    key: str | None = Field(default=None, description="the store's public key")

    @model_validator(mode="after")
    def _one_kind(self) -> OfferQuery:
        """sku alone, or category with price."""
        if self.sku is None and (self.category is None or self.price is None):
            raise ValueError("give sku, or category and price")
        if self.sku is not None and (self.category is not None or self.price is not None):
            raise ValueError("give sku, or category and price, not both")
        return self


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


@endpoint(bp, "/offers", summary="Plan offers for a product", auth="public",
          query=OfferQuery, response=OffersResponse, errors=(404,))
def get_offers(query: OfferQuery):
    """Price every eligible plan and sign an offer for each."""
    settings = current_app.config["SETTINGS"]
    session = get_session()
    if query.sku is not None:
        ref = offers.ref_for_product(catalog.get_product(session, query.sku))
    else:
        ref = offers.ProductRef(sku=None, store_category=query.category, price=query.price,
                                manufacturer_warranty_months=query.manufacturer_warranty_months)
    result = offers.make_offers(session=session, ref=ref, currency=settings.currency,
                                secret=settings.secret_key,
                                today=store_today(settings.timezone),
                                ttl_seconds=settings.offer_ttl_seconds)
    reason = (NoOfferReason(code=result.reason_code, message=result.reason)
              if result.reason_code else None)
    # Built as a dict: this endpoint is hot and the shape is fixed by OffersResponse.
    return {
        "sku": ref.sku, "category": ref.store_category,
        "warranty_category": result.warranty_category, "product_price": ref.price,
        "currency": result.currency, "rule_set_version": result.rule_set_version,
        "offers": result.offers, "reason": reason.model_dump() if reason else None,
    }
