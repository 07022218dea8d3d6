"""The store's catalog: products pushed by the store, mapped onto warranty categories."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, select

from warranty import pricing
from warranty.csv_records import read_records
from warranty.dates import utcnow
from warranty.errors import NotFound, ValidationFailed
from warranty.models import MAX_COLUMN_AMOUNT, Product
from warranty.offers import ProductRef
from warranty.text import SingleLine

MAX_BATCH = 10_000
CSV_COLUMNS = ("sku", "title", "category", "price", "manufacturer_warranty_months")


class ProductIn(BaseModel):
    """A product as the store sends it. ``price`` is in minor units of the store currency."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    sku: SingleLine = Field(min_length=1, max_length=100)
    title: SingleLine = Field(min_length=1, max_length=300)
    category: SingleLine = Field(min_length=1, max_length=100,
                                 description="the store's own category")
    price: int = Field(ge=0, le=MAX_COLUMN_AMOUNT, description="unit price in minor units")
    manufacturer_warranty_months: int = Field(default=12, ge=0, le=240)
    currency: str | None = Field(default=None, description="optional; must be the store's")

    @field_validator("currency")
    @classmethod
    def _lower(cls, value: str | None) -> str | None:
        """Currency codes compare in lower case."""
        return value.lower() if value else value


class Unmapped(BaseModel):
    """A product whose store category maps to no warranty category."""

    sku: str
    category: str


class UpsertResult(BaseModel):
    """What a bulk upsert did."""

    created: int
    updated: int
    unmapped: list[Unmapped]
    rule_set_version: int | None = Field(description="rules the mapping was checked against")


def upsert_products(*, session: Session, products: list[ProductIn],
                    currency: str) -> UpsertResult:
    """Insert or update products by sku in the caller's transaction."""
    if len(products) > MAX_BATCH:
        raise ValidationFailed(f"at most {MAX_BATCH} products per call")
    seen: set[str] = set()
    for index, item in enumerate(products):
        if item.sku in seen:
            raise ValidationFailed(f"products.{index}: sku {item.sku!r} appears twice",
                                   code="duplicate_sku")
        seen.add(item.sku)
        if item.currency and item.currency != currency:
            raise ValidationFailed(f"products.{index}: currency {item.currency.upper()} is not "
                                   f"the store currency {currency.upper()}",
                                   code="currency_mismatch")
    existing = _existing_skus(session, [p.sku for p in products])
    now = utcnow()
    rows = [{"sku": p.sku, "title": p.title, "store_category": p.category,
             "unit_price": p.price, "currency": currency,
             "manufacturer_warranty_months": p.manufacturer_warranty_months,
             "created_at": now, "updated_at": now} for p in products]
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = Product.__table__
    stmt = insert(table)
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.sku],
        set_={col: stmt.excluded[col] for col in
              ("title", "store_category", "unit_price", "currency",
               "manufacturer_warranty_months", "updated_at")},
    )
    if rows:
        # One statement compiled once and run as executemany: compiling a multi-row VALUES
        # per chunk cost more than the database work (10,000 products: 7.5 s -> 0.7 s on PG).
        session.connection().execute(stmt, rows)
    version, unmapped = _unmapped(session, products)
    return UpsertResult(created=len(products) - len(existing), updated=len(existing),
                        unmapped=unmapped, rule_set_version=version)


def _existing_skus(session: Session, skus: list[str]) -> set[str]:
    """Which of ``skus`` the catalog already holds.

    PostgreSQL gets one array parameter: lists of hundreds of IN parameters made psycopg's
    prepared statements plan badly on a growing table (100,000 products took minutes)."""
    table = Product.__table__
    if session.get_bind().dialect.name == "postgresql":
        any_sku = table.c.sku == sa.any_(sa.bindparam("skus", type_=postgresql.ARRAY(sa.String)))
        return set(session.execute(sa.select(table.c.sku).where(any_sku),
                                   {"skus": skus}).scalars())
    existing: set[str] = set()
    for start in range(0, len(skus), 500):
        chunk = skus[start:start + 500]
        existing |= set(session.execute(sa.select(table.c.sku)
                                        .where(table.c.sku.in_(chunk))).scalars())
    return existing


def _unmapped(session: Session, products: Iterable[ProductIn]) -> tuple[int | None, list]:
    """Products whose category the current rules don't map (all of them if no rules)."""
    version = pricing.latest_version(session)
    if version is None:
        return None, [Unmapped(sku=p.sku, category=p.category) for p in products]
    rules = pricing.get_version(session, version)
    return version, [Unmapped(sku=p.sku, category=p.category) for p in products
                     if rules.warranty_category(p.category) is None]


def parse_csv(text: str) -> list[ProductIn]:
    """Products from CSV text with a header row; errors name the line."""
    return read_records(text, ProductIn, CSV_COLUMNS, required=4)


_columns = Product.__table__.c
_OFFER_REF = sa.select(_columns.sku, _columns.store_category, _columns.unit_price,
                       _columns.manufacturer_warranty_months, _columns.title).where(
    _columns.sku == sa.bindparam("sku"))


def product_ref(*, session: Session | sa.Connection, sku: str):
    """What offers need of a catalog product (one indexed Core select, no ORM object)."""
    row = session.execute(_OFFER_REF, {"sku": sku}).first()
    if row is None:
        raise NotFound(f"no product with sku {sku!r}", code="unknown_sku")
    return ProductRef(sku=row[0], store_category=row[1], price=row[2],
                      manufacturer_warranty_months=row[3], title=row[4])


def products_by_sku(session: Session, skus: set[str]) -> dict[str, Product]:
    """The catalog's products among ``skus``, by sku (one query; none for no skus)."""
    if not skus:
        return {}
    return {p.sku: p for p in session.exec(select(Product).where(Product.sku.in_(skus)))}


def get_product(session: Session, sku: str) -> Product:
    """A product by sku, or NotFound."""
    product = session.exec(select(Product).where(Product.sku == sku)).first()
    if product is None:
        raise NotFound(f"no product with sku {sku!r}", code="unknown_sku")
    return product
