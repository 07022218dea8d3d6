"""The catalog's table."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from warranty.db.types import money_field, ts_field

# NFKC can lengthen text (a ligature becomes its letters): room for any 100-character sku's key.
SKU_KEY_LENGTH = 300


class Product(SQLModel, table=True):
    """A product the store sells, pushed by the store (API or CSV)."""

    id: int | None = Field(default=None, primary_key=True)
    sku: str = Field(max_length=100, index=True)  # as the store last wrote it
    # What every lookup matches: the sku however a storefront spells it (warranty.core.text.sku_key:
    # NFKC, case, invisible characters). Unique: two skus that differ only so are one product.
    sku_key: str = Field(max_length=SKU_KEY_LENGTH, unique=True, index=True)
    title: str = Field(max_length=300)
    store_category: str = Field(max_length=100, index=True)
    unit_price: int = money_field()  # minor units of the store currency
    currency: str = Field(max_length=3)
    manufacturer_warranty_months: int = Field(default=12, ge=0)
    created_at: datetime = ts_field()
    updated_at: datetime = ts_field()
