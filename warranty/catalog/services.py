"""The store's catalog: products pushed by the store, mapped onto warranty categories."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, select

from warranty.catalog.models import SKU_KEY_LENGTH, Product
from warranty.core import money
from warranty.core.csv_records import read_records
from warranty.core.dates import utcnow
from warranty.core.errors import NotFound, ValidationFailed
from warranty.core.settings import Settings
from warranty.core.text import SingleLine, sku_key
from warranty.db import revisions
from warranty.db.engine import write_transaction
from warranty.db.types import MAX_COLUMN_AMOUNT
from warranty.pricing import rules as pricing_rules

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

    @field_validator("sku")
    @classmethod
    def _matchable(cls, value: str) -> str:
        """A sku that still says something once normalised (not only invisible characters)."""
        key = sku_key(value)
        if not key:
            raise ValueError("the sku has no visible characters")
        if len(key) > SKU_KEY_LENGTH:
            raise ValueError("the sku is too long once normalised")
        return value

    @field_validator("currency")
    @classmethod
    def _lower(cls, value: str | None) -> str | None:
        """Currency codes compare in lower case."""
        return value.lower() if value else value

    @field_validator("price")
    @classmethod
    def _chargeable(cls, value: int, info: ValidationInfo) -> int:
        """With the store currency known (CSV import), a price Stripe would charge."""
        currency = (info.context or {}).get("currency")
        problem = money.stripe_amount_problem(value, currency) if currency else None
        if problem:
            raise ValueError(problem)
        return value


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
    """Insert or update products by sku in the caller's transaction.

    Products are matched by their sku key (``warranty.core.text.sku_key``): "TV-1" and "ｔｖ‐1"
    are one product, updated in place and stored under the spelling sent last.
    """
    write_transaction(session)
    if len(products) > MAX_BATCH:
        raise ValidationFailed(f"at most {MAX_BATCH} products per call")
    seen: dict[str, int] = {}
    keys = []
    for index, item in enumerate(products):
        key = sku_key(item.sku)
        if key in seen:
            raise ValidationFailed(
                f"products.{index}: sku {item.sku!r} is the same product as "
                f"products.{seen[key]} ({products[seen[key]].sku!r})", code="duplicate_sku")
        seen[key] = index
        keys.append(key)
        if item.currency and item.currency != currency:
            raise ValidationFailed(f"products.{index}: currency {item.currency.upper()} is not "
                                   f"the store currency {currency.upper()}",
                                   code="currency_mismatch")
        problem = money.stripe_amount_problem(item.price, currency)
        if problem:
            # A price Stripe would refuse to charge (three-decimal currencies: steps of 10).
            raise ValidationFailed(f"products.{index}: sku {item.sku!r}: price {item.price}: "
                                   f"{problem}", code="price_not_chargeable",
                                   details=[{"at": f"products.{index}.price", "sku": item.sku,
                                             "message": problem}])
    existing = _existing_keys(session, keys)
    now = utcnow()
    # In sku-key order: concurrent upserts then lock the rows they share in the same order
    # and wait for each other instead of deadlocking (PostgreSQL aborts one of two that lock
    # the same rows in opposite orders).
    ordered = sorted(zip(products, keys, strict=True), key=lambda pair: pair[1])
    rows = [{"sku": p.sku, "sku_key": key, "title": p.title, "store_category": p.category,
             "unit_price": p.price, "currency": currency,
             "manufacturer_warranty_months": p.manufacturer_warranty_months,
             "created_at": now, "updated_at": now} for p, key in ordered]
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = Product.__table__
    stmt = insert(table)
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.sku_key],
        set_={col: stmt.excluded[col] for col in
              ("sku", "title", "store_category", "unit_price", "currency",
               "manufacturer_warranty_months", "updated_at")},
    )
    if rows:
        # One statement compiled once and run as executemany: compiling a multi-row VALUES
        # per chunk cost more than the database work (10,000 products: 7.5 s -> 0.7 s on PG).
        session.connection().execute(stmt, rows)
        # Cached offers key on the catalog's revision: they change when this commits.
        revisions.bump_catalog(session)
    version, unmapped = _unmapped(session, products)
    return UpsertResult(created=len(products) - len(existing), updated=len(existing),
                        unmapped=unmapped, rule_set_version=version)


def _existing_keys(session: Session, keys: list[str]) -> set[str]:
    """Which of these sku keys the catalog already holds.

    PostgreSQL gets one array parameter: lists of hundreds of IN parameters made psycopg's
    prepared statements plan badly on a growing table (100,000 products took minutes)."""
    column = Product.__table__.c.sku_key
    if session.get_bind().dialect.name == "postgresql":
        any_key = column == sa.any_(sa.bindparam("keys", type_=postgresql.ARRAY(sa.String)))
        return set(session.execute(sa.select(column).where(any_key), {"keys": keys}).scalars())
    existing: set[str] = set()
    for start in range(0, len(keys), 500):
        chunk = keys[start:start + 500]
        existing |= set(session.execute(sa.select(column).where(column.in_(chunk))).scalars())
    return existing


def _unmapped(session: Session, products: Iterable[ProductIn]) -> tuple[int | None, list]:
    """Products whose category the current rules don't map (all of them if no rules)."""
    version = pricing_rules.latest_version(session)
    if version is None:
        return None, [Unmapped(sku=p.sku, category=p.category) for p in products]
    rules = pricing_rules.get_version(session, version)
    return version, [Unmapped(sku=p.sku, category=p.category) for p in products
                     if rules.warranty_category(p.category) is None]


def parse_csv(text: str, currency: str | None = None) -> list[ProductIn]:
    """Products from CSV text with a header row; errors name the line.

    With ``currency`` (the store's), a price Stripe would refuse is an error of its line.
    """
    return read_records(text, ProductIn, CSV_COLUMNS, required=4,
                        context={"currency": currency} if currency else None)


_columns = Product.__table__.c
_ANY_PRODUCT = sa.select(_columns.id).limit(1)


def products_by_sku(session: Session, skus: Iterable[str]) -> dict[str, Product]:
    """The catalog's products for these skus as a storefront spells them: each given sku that
    matches a product, mapped to it (one query; none for no skus)."""
    keys = {sku: sku_key(sku) for sku in skus}
    if not keys:
        return {}
    found = {p.sku_key: p for p in session.exec(
        select(Product).where(Product.sku_key.in_(set(keys.values()))))}
    return {sku: found[key] for sku, key in keys.items() if key in found}


def get_product(session: Session, sku: str) -> Product:
    """A product by sku (however it is spelled), or NotFound."""
    product = session.exec(select(Product).where(Product.sku_key == sku_key(sku))).first()
    if product is None:
        raise NotFound(f"no product with sku {sku!r}", code="unknown_sku")
    return product


def catalog_only(session: Session | sa.Connection, settings: Settings) -> bool:
    """Whether checkout and offers take only catalog products (``WARRANTY_CATALOG_ONLY``):
    on or off as set, and by default (``auto``) on once the store has loaded a catalog."""
    if isinstance(settings.catalog_only, bool):
        return settings.catalog_only
    return session.execute(_ANY_PRODUCT).first() is not None


class NotInCatalog(ValidationFailed):
    """A product the store's catalog lacks, where only catalog products are sold."""

    code = "not_in_catalog"
