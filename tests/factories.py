"""Small factories with explicit amounts for arranging tests."""

from __future__ import annotations

from sqlmodel import Session

from warranty import catalog, pricing


def rules_doc(currency: str = "jpy", **category_overrides) -> dict:
    """A small rule document with known bands: [1000, 50000) fixed, [50000, 300000) rate."""
    electronics = {
        "deductible": 0,
        "liability_schedule": [100, 100, 80],
        "plans": [{"coverage": "standard", "term_months": 36},
                  {"coverage": "accident", "term_months": 36}],
        "bands": [
            {"min": 1000, "max": 50000,
             "prices": {"standard-36": {"fixed": 1980}, "accident-36": {"fixed": 2980}}},
            {"min": 50000, "max": 300000,
             "prices": {"standard-36": {"rate": "0.05", "floor": 2480},
                        "accident-36": {"rate": "0.083", "floor": 3980}}},
        ],
    }
    electronics.update(category_overrides)
    return {"currency": currency, "category_map": {"tv": "electronics"},
            "categories": {"electronics": electronics}}


def load_rules(session: Session, document: dict | None = None, currency: str = "jpy") -> int:
    """Store a rule document as a new version and commit; returns the version."""
    row = pricing.save_rule_set(session=session,
                                document=pricing.parse_document(document or rules_doc(currency)),
                                store_currency=currency, created_by="test")
    session.commit()
    return row.version


def add_product(session: Session, sku: str = "TV-1", price: int = 120000,
                category: str = "tv", months: int = 12, currency: str = "jpy",
                title: str = "Test TV") -> None:
    """Upsert one product and commit."""
    catalog.upsert_products(session=session, currency=currency, products=[
        catalog.ProductIn(sku=sku, title=title, category=category, price=price,
                          manufacturer_warranty_months=months)])
    session.commit()
