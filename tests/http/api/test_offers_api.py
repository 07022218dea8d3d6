"""Offers for catalog and ad-hoc products (offer tokens: tests/offers/test_tokens.py)."""

import time
from datetime import date

import pytest

from tests.factories import add_product, load_rules
from warranty.core.dates import store_today


def test_offers_for_a_catalog_product(client, db, store_key):
    load_rules(db)
    add_product(db, sku="TV-1", price=120000)
    res = client.get("/api/v1/offers?sku=TV-1", headers=store_key)
    assert res.status_code == 200, res.json
    body = res.json
    assert body["warranty_category"] == "electronics" and body["reason"] is None
    assert body["rule_set_version"] == 1
    by_code = {o["plan_code"]: o for o in body["offers"]}
    assert by_code["standard-36"]["price"] == 6000  # 5% of 120000
    assert by_code["accident-36"]["price"] == 9960  # 8.3% of 120000
    today = store_today("Asia/Tokyo")
    std = by_code["standard-36"]
    assert std["term_start"] == today.isoformat()
    assert date.fromisoformat(std["term_end"]).year == today.year + 3
    assert std["accident_cover_start"] is None
    assert by_code["accident-36"]["accident_cover_start"] == today.isoformat()
    assert std["currency"] == "jpy" and std["deductible"] == 0
    assert std["liability_schedule"] == [100, 100, 80]
    assert std["expires_at"] > time.time() + 3000


def test_ad_hoc_category_and_price(client, db, store_key):
    load_rules(db)
    res = client.get("/api/v1/offers?category=tv&price=5000", headers=store_key)
    assert res.status_code == 200
    assert [o["price"] for o in res.json["offers"]] == [1980, 2980]
    assert res.json["sku"] is None


@pytest.mark.parametrize(("query", "code"), [
    ("category=tv&price=500", "price_outside_bands"),
    ("category=cables&price=5000", "unmapped_category"),
    ("category=tv&price=5000&manufacturer_warranty_months=36&only=std", None),
])
def test_ineligible_products_get_empty_list_and_reason(client, db, store_key, query, code):
    doc = None
    if code is None:  # a category whose only plan is inside the manufacturer's warranty
        from tests.factories import rules_doc
        doc = rules_doc(plans=[{"coverage": "standard", "term_months": 36}])
        for band in doc["categories"]["electronics"]["bands"]:
            band["prices"].pop("accident-36")
        code = "nothing_past_manufacturer_warranty"
        query = query.replace("&only=std", "")
    load_rules(db, doc)
    res = client.get(f"/api/v1/offers?{query}", headers=store_key)
    assert res.status_code == 200
    assert res.json["offers"] == []
    assert res.json["reason"]["code"] == code and res.json["reason"]["message"]


def test_no_rules_loaded(client, store_key):
    res = client.get("/api/v1/offers?category=tv&price=5000", headers=store_key)
    assert res.status_code == 404 and res.json["error"]["code"] == "no_rules"


@pytest.mark.parametrize("query", [
    "", "sku=", "price=100", "category=tv", "category=tv&price=abc", "category=tv&price=-1",
    "sku=A&category=tv&price=5", "category=tv&price=1e99", "category=tv&price=5&"
    "manufacturer_warranty_months=9999", "sku=" + "x" * 500,
])
def test_malformed_offer_queries_are_422(client, db, store_key, query):
    load_rules(db)
    res = client.get(f"/api/v1/offers?{query}", headers=store_key)
    assert res.status_code == 422, res.json
    assert res.json["error"]["code"] == "invalid_request"


def test_unknown_sku_is_404(client, db, store_key):
    load_rules(db)
    res = client.get("/api/v1/offers?sku=NOPE", headers=store_key)
    assert res.status_code == 404 and res.json["error"]["code"] == "unknown_sku"
