"""Offers for several products in one call, as the cart needs them."""

from tests.factories import add_product, load_rules
from warranty.http.app import create_app


def test_batch_gives_each_item_what_get_offers_gives(settings, db, store_key):
    # Catalog and ad-hoc items side by side: a store that sells outside its catalog too.
    client = create_app(settings.model_copy(update={"catalog_only": False})).test_client()
    load_rules(db)
    add_product(db, sku="TV-1", price=120000)
    add_product(db, sku="TV-2", price=40000)
    items = [{"sku": "TV-2"}, {"sku": "TV-1"}, {"category": "tv", "price": 60000},
             {"sku": "NOPE"}, {"category": "cables", "price": 5000}]
    res = client.post("/api/v1/offers/batch", json={"items": items}, headers=store_key)
    assert res.status_code == 200, res.json
    results = res.json["results"]
    assert [r["sku"] for r in results] == ["TV-2", "TV-1", None, "NOPE", None]
    assert [o["price"] for o in results[0]["offers"]] == [1980, 2980]
    assert [o["price"] for o in results[1]["offers"]] == [6000, 9960]  # 5% and 8.3% of 120000
    assert [o["price"] for o in results[2]["offers"]] == [3000, 4980]
    assert results[3]["offers"] == [] and results[3]["reason"]["code"] == "unknown_sku"
    assert results[4]["reason"]["code"] == "unmapped_category"
    single = client.get("/api/v1/offers?sku=TV-1", headers=store_key).json
    for key in ("sku", "category", "warranty_category", "product_price", "currency",
                "rule_set_version", "reason"):
        assert results[1][key] == single[key]
    assert [o["plan_code"] for o in results[1]["offers"]] == [
        o["plan_code"] for o in single["offers"]]


def test_batch_limits_and_validation(client, db, store_key):
    load_rules(db)
    for body in ({"items": []}, {"items": [{"sku": "A"}] * 51}, {"items": [{"price": 5}]},
                 {"items": [{"sku": "A", "key": "pk"}]}, {"items": [{"sku": "A"}], "x": 1}):
        res = client.post("/api/v1/offers/batch", json=body, headers=store_key)
        assert res.status_code == 422, (body, res.json)
    assert client.post("/api/v1/offers/batch", json={"items": [{"sku": "A"}]}).status_code == 401


def test_batch_without_rules_is_404(client, store_key):
    res = client.post("/api/v1/offers/batch", json={"items": [{"category": "tv", "price": 5}]},
                      headers=store_key)
    assert res.status_code == 404 and res.json["error"]["code"] == "no_rules"
