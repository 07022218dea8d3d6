"""Bulk product upsert through HTTP."""

from sqlmodel import func, select

from tests.factories import load_rules
from warranty.catalog.models import Product


def _product(i, **extra):
    return {"sku": f"SKU-{i:05d}", "title": f"Product {i}", "category": "tv",
            "price": 10000 + i, **extra}


def test_bulk_upsert_thousands_in_one_call(client, db, staff_headers):
    load_rules(db)
    batch = [_product(i) for i in range(5000)]
    batch[7]["category"] = "cables"
    res = client.post("/api/v1/products", json={"products": batch}, headers=staff_headers)
    assert res.status_code == 200, res.json
    assert res.json["created"] == 5000 and res.json["updated"] == 0
    assert res.json["unmapped"] == [{"sku": "SKU-00007", "category": "cables"}]
    again = client.post("/api/v1/products", headers=staff_headers,
                        json={"products": [_product(1, price=555, title="Renamed"),
                                           _product(9999)]})
    assert again.json["created"] == 1 and again.json["updated"] == 1
    got = client.get("/api/v1/products/SKU-00001", headers=staff_headers).json
    assert got["price"] == 555 and got["title"] == "Renamed" and got["currency"] == "jpy"
    assert got["manufacturer_warranty_months"] == 12
    assert db.exec(select(func.count()).select_from(Product)).one() == 5001


def test_unmapped_reported_when_no_rules_loaded(client, staff_headers):
    res = client.post("/api/v1/products", json={"products": [_product(1)]},
                      headers=staff_headers)
    assert res.json["rule_set_version"] is None
    assert res.json["unmapped"] == [{"sku": "SKU-00001", "category": "tv"}]


def test_one_bad_row_stores_nothing_and_names_the_row(client, db, staff_headers):
    batch = [_product(i) for i in range(10)]
    batch[3]["price"] = -5
    res = client.post("/api/v1/products", json={"products": batch}, headers=staff_headers)
    assert res.status_code == 422
    assert res.json["error"]["code"] == "invalid_request"
    assert "products.3.price" in res.json["error"]["message"]
    assert db.exec(select(func.count()).select_from(Product)).one() == 0


def test_duplicate_sku_and_foreign_currency_refused(client, db, staff_headers):
    dup = client.post("/api/v1/products", json={"products": [_product(1), _product(1)]},
                      headers=staff_headers)
    assert dup.status_code == 422 and dup.json["error"]["code"] == "duplicate_sku"
    usd = client.post("/api/v1/products", json={"products": [_product(1, currency="usd")]},
                      headers=staff_headers)
    assert usd.status_code == 422 and usd.json["error"]["code"] == "currency_mismatch"
    assert db.exec(select(func.count()).select_from(Product)).one() == 0


def test_unknown_product_is_404(client, staff_headers):
    res = client.get("/api/v1/products/NOPE", headers=staff_headers)
    assert res.status_code == 404 and res.json["error"]["code"] == "unknown_sku"
