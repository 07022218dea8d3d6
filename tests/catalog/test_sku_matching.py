"""A catalog product is the same product however the storefront spells its sku, and a store
with a catalog sells only catalog products (WARRANTY_CATALOG_ONLY)."""

from __future__ import annotations

import pytest
from sqlmodel import select

from tests.factories import add_product, load_rules
from warranty.catalog.models import Product
from warranty.http.app import create_app
from warranty.orders.models import Order, OrderLine

URLS = {"success_url": "https://shop.example/ok", "cancel_url": "https://shop.example/cart"}
# "TV-1" as storefronts send it: case, full width, zero-width space, soft hyphen, BOM, word
# joiner, other dashes, spaces around.
SPELLINGS = ["tv-1", " TV-1 ", "ＴＶ－１", "TV\u200b-1", "T\u00adV-1", "\ufeffTV-1",
             "TV\u2060-1", "TV\u2010 1".replace(" ", ""), "Tv–1", "TV\u22121"]


@pytest.fixture
def catalog(db):
    """Rules and one television, TV-1 at ¥120,000 (plans ¥6,000 and ¥9,960)."""
    load_rules(db)
    add_product(db, sku="TV-1", price=120000)


def _cart(sku: str, unit_price: int, token: str | None = None) -> dict:
    """A hosted-checkout cart of one product, with a plan when a token is given."""
    lines = [{"type": "product", "line_id": "p1", "sku": sku, "quantity": 1,
              "unit_price": unit_price}]
    if token:
        lines.append({"type": "plan", "for_line": "p1", "quantity": 1, "offer_token": token})
    return {"order_ref": "A-1", "customer_email": "a@example.com", **URLS, "lines": lines}


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_offers_and_checkout_find_the_product_however_its_sku_is_spelled(
        stripe_app, db, store_key, catalog, spelling):
    client = stripe_app.test_client()
    offers = client.get("/api/v1/offers", query_string={"sku": spelling}, headers=store_key)
    assert offers.status_code == 200, offers.json
    assert offers.json["sku"] == "TV-1" and offers.json["product_price"] == 120000
    assert [o["price"] for o in offers.json["offers"]] == [6000, 9960]
    batch = client.post("/api/v1/offers/batch", headers=store_key,
                        json={"items": [{"sku": spelling}]}).json["results"][0]
    assert batch["sku"] == "TV-1" and len(batch["offers"]) == 2
    # A near-spelling is the catalog product, at the catalog's price: never ¥1.
    cheap = client.post("/api/v1/checkout/sessions", headers=store_key,
                        json=_cart(spelling, 1))
    assert cheap.status_code == 422 and cheap.json["error"]["code"] == "price_mismatch"
    token = offers.json["offers"][0]["offer_token"]
    ok = client.post("/api/v1/checkout/sessions", headers=store_key,
                     json=_cart(spelling, 120000, token))
    assert ok.status_code == 201, ok.json
    assert ok.json["total"] == 126000
    lines = db.exec(select(OrderLine.kind, OrderLine.sku).order_by(OrderLine.line_no)).all()
    assert lines == [("product", "TV-1"), ("plan", "TV-1")]


def test_upserts_match_by_the_normalised_sku(client, db, staff_headers, catalog):
    res = client.post("/api/v1/products", headers=staff_headers, json={"products": [
        {"sku": "ｔｖ‐１", "title": "OLED TV", "category": "tv", "price": 110000}]})
    assert res.status_code == 200, res.json
    assert (res.json["created"], res.json["updated"]) == (0, 1)
    (product,) = db.exec(select(Product)).all()
    db.refresh(product)
    assert (product.sku, product.sku_key, product.unit_price) == ("ｔｖ‐１", "tv-1", 110000)
    twice = client.post("/api/v1/products", headers=staff_headers, json={"products": [
        {"sku": "CAM-1", "title": "Camera", "category": "tv", "price": 5000},
        {"sku": "cam\u200b-1", "title": "Camera", "category": "tv", "price": 5000}]})
    assert twice.status_code == 422 and twice.json["error"]["code"] == "duplicate_sku"
    assert "products.1" in twice.json["error"]["message"]
    invisible = client.post("/api/v1/products", headers=staff_headers, json={"products": [
        {"sku": "\u200b\u00ad", "title": "Nothing", "category": "tv", "price": 5000}]})
    assert invisible.status_code == 422
    assert invisible.json["error"]["details"][0]["at"] == "products.0.sku"
    staff = client.get("/api/v1/products/TV%E2%80%931", headers=staff_headers)  # "TV–1"
    assert staff.status_code == 200 and staff.json["price"] == 110000


def test_a_store_with_a_catalog_refuses_products_outside_it(stripe_app, db, store_key,
                                                             catalog):
    client = stripe_app.test_client()
    cart = _cart("TV-1", 120000)
    cart["lines"].append({"type": "product", "line_id": "p2", "sku": "TV-9", "quantity": 1,
                          "unit_price": 100, "category": "tv"})
    res = client.post("/api/v1/checkout/sessions", headers=store_key, json=cart)
    assert res.status_code == 422 and res.json["error"]["code"] == "not_in_catalog"
    assert res.json["error"]["details"] == [
        {"at": "lines.1.sku", "message": res.json["error"]["details"][0]["message"]}]
    assert "TV-9" in res.json["error"]["message"]
    assert db.exec(select(Order)).all() == []
    ad_hoc = client.get("/api/v1/offers?category=tv&price=100", headers=store_key)
    assert ad_hoc.status_code == 422 and ad_hoc.json["error"]["code"] == "not_in_catalog"
    batch = client.post("/api/v1/offers/batch", headers=store_key, json={"items": [
        {"sku": "TV-1"}, {"category": "tv", "price": 100}]}).json["results"]
    assert len(batch[0]["offers"]) == 2
    assert batch[1]["offers"] == [] and batch[1]["reason"]["code"] == "not_in_catalog"


@pytest.mark.parametrize(("setting", "with_catalog", "refused"), [
    ("auto", False, False), ("auto", True, True), (False, True, False), (True, False, True)])
def test_catalog_only_is_auto_on_or_off(stripe_settings, db, store_key, setting, with_catalog,
                                        refused):
    load_rules(db)
    if with_catalog:
        add_product(db, sku="TV-1", price=120000)
    client = create_app(stripe_settings.model_copy(update={"catalog_only": setting})
                        ).test_client()
    offers = client.get("/api/v1/offers?category=tv&price=40000", headers=store_key)
    cart = _cart("EXT-1", 40000)
    cart["lines"][0]["category"] = "tv"
    res = client.post("/api/v1/checkout/sessions", headers=store_key, json=cart)
    if refused:
        assert offers.status_code == 422 and res.status_code == 422
        assert res.json["error"]["code"] == offers.json["error"]["code"] == "not_in_catalog"
    else:
        assert offers.status_code == 200 and len(offers.json["offers"]) == 2
        assert res.status_code == 201, res.json


def test_catalog_only_reads_from_the_environment(monkeypatch):
    from warranty.core.settings import Settings

    monkeypatch.setenv("WARRANTY_ENV", "demo")
    assert Settings().catalog_only == "auto"
    for text, value in (("on", True), ("false", False), ("auto", "auto")):
        monkeypatch.setenv("WARRANTY_CATALOG_ONLY", text)
        assert Settings().catalog_only == value
