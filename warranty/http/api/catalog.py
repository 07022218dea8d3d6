"""Catalog endpoints: the store pushes products; staff read them."""

from __future__ import annotations

from flask import Blueprint, current_app
from pydantic import BaseModel, Field

from warranty.catalog import services as catalog
from warranty.http.api.spec import endpoint
from warranty.http.session import get_session

bp = Blueprint("catalog", __name__, url_prefix="/api/v1")


class ProductUpsert(BaseModel):
    """A bulk upsert: up to 10,000 products in one transaction."""

    products: list[catalog.ProductIn] = Field(min_length=1, max_length=catalog.MAX_BATCH)


class ProductOut(BaseModel):
    """A product as stored."""

    sku: str
    title: str
    category: str
    price: int
    currency: str
    manufacturer_warranty_months: int


@endpoint(bp, "/products", method="POST", summary="Insert or update products by sku",
          auth="admin", body=ProductUpsert, response=catalog.UpsertResult)
def upsert(body: ProductUpsert):
    """Upsert a batch of products in one transaction."""
    session = get_session()
    result = catalog.upsert_products(session=session, products=body.products,
                                     currency=current_app.config["SETTINGS"].currency)
    session.commit()
    return result


@endpoint(bp, "/products/<sku>", summary="One product", auth="read", response=ProductOut,
          errors=(404,))
def get_product(sku: str):
    """A product by sku."""
    product = catalog.get_product(get_session(), sku)
    return ProductOut(sku=product.sku, title=product.title, category=product.store_category,
                      price=product.unit_price, currency=product.currency,
                      manufacturer_warranty_months=product.manufacturer_warranty_months)
