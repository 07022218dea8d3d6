"""Offers from the per-process cache: changes reach every process within a second, stale
tokens are refused at checkout, ETag/304 and Cache-Control, the memory bound, the holdout."""

from __future__ import annotations

import time

import pytest
import requests

from tests.conftest import API_TOKEN, PUBLIC_KEY, SECRET, serve
from tests.factories import add_product, load_rules, rules_doc, signed_visitor
from warranty.db.revisions import Revisions
from warranty.experiment import arms
from warranty.http.api.offers import offers_cache
from warranty.http.app import create_app
from warranty.offers.cache import ENTRY_OVERHEAD_BYTES, Entry, OfferCache
from warranty.offers.tokens import verify_offer_token

STAFF = {"Authorization": f"Bearer {API_TOKEN}"}
STORE = {"X-Warranty-Key": PUBLIC_KEY}
URLS = {"success_url": "https://shop.example/ok", "cancel_url": "https://shop.example/cart"}
WITHIN_SECONDS = 1.0


@pytest.fixture
def two_servers(settings):
    """Two app instances (two processes' worth of caches) on one database, over real HTTP."""
    with serve(create_app(settings)) as first, serve(create_app(settings)) as second:
        yield first, second


def _offers(base: str, sku: str = "TV-1") -> dict:
    res = requests.get(f"{base}/api/v1/offers", params={"sku": sku}, headers=STORE)
    assert res.status_code == 200, res.text
    return res.json()


def _until(check, what: str) -> float:
    """Poll ``check`` until true; seconds it took (fails past WITHIN_SECONDS)."""
    started = time.monotonic()
    while not check():
        elapsed = time.monotonic() - started
        assert elapsed < WITHIN_SECONDS, f"{what}: not seen within {WITHIN_SECONDS} s"
        time.sleep(0.02)
    return time.monotonic() - started


def _prices(body: dict) -> list[int]:
    return [offer["price"] for offer in body["offers"]]


def test_a_price_change_reaches_another_process_within_a_second(db, two_servers):
    first, second = two_servers
    load_rules(db)
    add_product(db, sku="TV-1", price=120000)
    assert _prices(_offers(second)) == [6000, 9960]  # cached by the second server
    assert _prices(_offers(second)) == [6000, 9960]
    res = requests.post(f"{first}/api/v1/products", headers=STAFF, json={"products": [
        {"sku": "TV-1", "title": "Test TV", "category": "tv", "price": 200000}]})
    assert res.status_code == 200, res.text
    _until(lambda: _prices(_offers(second)) == [10000, 16600], "new catalog price")
    assert _offers(first)["product_price"] == 200000


def test_a_rule_upload_reaches_another_process_within_a_second(db, two_servers):
    first, second = two_servers
    version = load_rules(db)
    add_product(db, sku="TV-1", price=120000)
    assert _offers(second)["rule_set_version"] == version
    doc = rules_doc(bands=[{"min": 1000, "max": 300000,
                            "prices": {"standard-36": {"fixed": 5000},
                                       "accident-36": {"fixed": 7000}}}])
    res = requests.post(f"{first}/api/v1/rule-sets", headers=STAFF, json={"rules": doc})
    assert res.status_code == 201, res.text
    _until(lambda: _offers(second)["rule_set_version"] == version + 1, "new rule version")
    assert _prices(_offers(second)) == [5000, 7000]


def _cart(token: str, price: int = 120000) -> dict:
    return {"order_ref": "S-1", "customer_email": "s@example.com", **URLS,
            "lines": [{"type": "product", "line_id": "p1", "sku": "TV-1", "quantity": 1,
                       "unit_price": price},
                      {"type": "plan", "for_line": "p1", "quantity": 1, "offer_token": token}]}


def test_an_offer_made_before_a_price_change_is_refused_as_stale(db, client, staff_headers,
                                                                 store_key):
    load_rules(db)
    add_product(db, sku="TV-1", price=120000)
    token = client.get("/api/v1/offers?sku=TV-1", headers=store_key).json["offers"][0][
        "offer_token"]
    res = client.post("/api/v1/products", headers=staff_headers, json={"products": [
        {"sku": "TV-1", "title": "Test TV", "category": "tv", "price": 130000}]})
    assert res.status_code == 200
    refused = client.post("/api/v1/checkout/sessions", json=_cart(token, 130000),
                          headers=store_key)
    assert refused.status_code == 409, refused.json
    assert refused.json["error"]["code"] == "offer_stale"
    assert "lines.1" in refused.json["error"]["message"]


def test_an_offer_made_before_a_rule_upload_is_refused_as_stale(db, client, store_key):
    load_rules(db)
    add_product(db, sku="TV-1", price=120000)
    token = client.get("/api/v1/offers?sku=TV-1", headers=store_key).json["offers"][0][
        "offer_token"]
    load_rules(db)  # the same prices, a new version: the offer names the old one
    refused = client.post("/api/v1/checkout/payment-intents",
                          json={k: v for k, v in _cart(token).items() if k not in URLS},
                          headers=store_key)
    assert refused.status_code == 409 and refused.json["error"]["code"] == "offer_stale"


def test_one_buckets_answers_are_identical_with_a_strong_etag_and_304(db, client, store_key):
    load_rules(db)
    add_product(db, sku="TV-1", price=120000)
    first = client.get("/api/v1/offers?sku=TV-1", headers=store_key)
    second = client.get("/api/v1/offers?sku=TV-1", headers=store_key)
    settings = client.application.config["SETTINGS"]
    assert first.status_code == second.status_code == 200
    etag = first.headers["ETag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    if first.json["offers"][0]["expires_at"] == second.json["offers"][0]["expires_at"]:
        assert first.data == second.data and second.headers["ETag"] == etag
    expires = first.json["offers"][0]["expires_at"]
    assert expires % settings.offer_bucket_seconds == settings.offer_ttl_seconds % \
        settings.offer_bucket_seconds
    control = first.headers["Cache-Control"]
    assert control.startswith("public, max-age=")
    assert 0 <= int(control.rsplit("=", 1)[1]) <= settings.offer_max_age_seconds
    assert "Origin" in first.headers["Vary"]
    again = client.get("/api/v1/offers?sku=TV-1",
                       headers={**store_key, "If-None-Match": second.headers["ETag"]})
    assert again.status_code == 304 and again.data == b""
    assert again.headers["ETag"] == second.headers["ETag"]
    other = client.get("/api/v1/offers?sku=TV-1",
                       headers={**store_key, "If-None-Match": '"something-else"'})
    assert other.status_code == 200 and other.json == second.json
    # The per-request checks still run on a cached answer: the key, validation.
    assert client.get("/api/v1/offers?sku=TV-1").status_code == 401
    assert client.get("/api/v1/offers?sku=TV-1&price=-1", headers=store_key).status_code == 422


def test_the_batch_answers_from_the_same_cache(db, client, store_key):
    load_rules(db)
    add_product(db, sku="TV-1", price=120000)
    single = client.get("/api/v1/offers?sku=TV-1", headers=store_key).json
    cache = offers_cache(client.application)
    hits = cache.stats()["hits"]
    batch = client.post("/api/v1/offers/batch", headers=store_key, json={"items": [
        {"sku": "TV-1"}, {"sku": "NOPE"}, {"category": "tv", "price": 40000}]}).json
    if batch["results"][0]["offers"][0]["expires_at"] == single["offers"][0]["expires_at"]:
        assert batch["results"][0] == single and cache.stats()["hits"] == hits + 1
    assert batch["results"][1]["reason"]["code"] == "unknown_sku"
    assert batch["results"][2]["reason"]["code"] == "not_in_catalog"  # auto: a catalog exists


def test_the_cache_stays_within_its_memory_bound(db, settings, store_key):
    load_rules(db)
    app = create_app(settings.model_copy(update={
        "offer_cache_mb": 1, "catalog_only": False, "rate_limit_offers": "100000/minute"}))
    client = app.test_client()
    asked = 1200  # about 1.3 kB each: more than 1 MB
    for price in range(1000, 1000 + asked):
        assert client.get(f"/api/v1/offers?category=tv&price={price}",
                          headers=store_key).status_code == 200
    stats = offers_cache(app).stats()
    assert stats["bytes"] <= stats["max_bytes"] == 2**20
    assert stats["evictions"] > 0 and stats["entries"] < asked


def test_lru_order_and_revision_changes_drop_entries():
    now = [0.0]
    current = [Revisions(catalog=1, rules=1)]
    cache = OfferCache(max_bytes=3 * (10 + 2 + ENTRY_OVERHEAD_BYTES), revision_seconds=1.0,
                       read_revisions=lambda: current[0], clock=lambda: now[0])
    entry = Entry(body=b"x" * 10, etag='""', bucket_end=60)
    assert cache.revisions() == current[0]
    for key in "abc":
        cache.put(key, entry)
    assert cache.get("a") is entry  # now the most recent: "b" goes first
    cache.put("d", entry)
    assert cache.get("b") is None and len(cache) == 3
    current[0] = Revisions(catalog=2, rules=1)
    now[0] = 0.5
    assert cache.revisions().catalog == 1 and len(cache) == 3  # not read again yet
    now[0] = 1.0
    assert cache.revisions().catalog == 2 and len(cache) == 0
    assert cache.stats()["invalidations"] == 1


def test_holdout_visitors_get_no_offers_shown_and_offers_carry_nothing_of_the_visitor(
        db, client, store_key, settings):
    load_rules(db)
    add_product(db, sku="TV-1", price=120000)
    by_arm = {}
    for n in range(200):
        vid = signed_visitor(f"cache{n:010d}")
        arm = arms.assign_arm(vid, salt=settings.experiment_salt, share=settings.holdout_share)
        by_arm.setdefault(arm, vid)
        if len(by_arm) == 2:
            break
    for arm, vid in by_arm.items():
        assignment = client.get(f"/api/v1/experiment/assignment?visitor_id={vid}",
                                headers=store_key).json
        assert assignment["arm"] == arm and assignment["show_offers"] == (arm == "treatment")
    # The offers answer is one for everybody (the embed shows it only to the treatment arm):
    # no cookie or visitor id changes it, so a cached copy can't leak one arm's view.
    plain = client.get("/api/v1/offers?sku=TV-1", headers=store_key)
    client.set_cookie("wty_vid", by_arm["holdout"])
    holdout = client.get("/api/v1/offers?sku=TV-1", headers=store_key)
    assert "visitor" not in plain.text and "arm" not in plain.json
    if plain.headers["ETag"] == holdout.headers["ETag"]:
        assert plain.data == holdout.data
    assert "Cookie" not in plain.headers.get("Vary", "")


def test_a_new_bucket_signs_the_cached_offers_again_as_a_fresh_answer_would(
        db, settings, store_key, monkeypatch):
    load_rules(db)
    add_product(db, sku="TV-1", price=120000, months=24)
    app = create_app(settings)
    client = app.test_client()
    first = client.get("/api/v1/offers?sku=TV-1", headers=store_key)
    later = time.time() + settings.offer_bucket_seconds
    monkeypatch.setattr(time, "time", lambda: later)
    again = client.get("/api/v1/offers?sku=TV-1", headers=store_key)
    fresh = create_app(settings).test_client().get("/api/v1/offers?sku=TV-1", headers=store_key)
    assert offers_cache(app).stats()["misses"] == 1  # signed again, not read and priced again
    assert again.json["offers"][0]["expires_at"] == \
        first.json["offers"][0]["expires_at"] + settings.offer_bucket_seconds
    assert again.data == fresh.data and again.headers["ETag"] == fresh.headers["ETag"]
    assert again.headers["ETag"] != first.headers["ETag"]
    claim = verify_offer_token(again.json["offers"][0]["offer_token"], secret=SECRET,
                               sku="TV-1", product_price=120000, currency="jpy")
    assert claim.manufacturer_warranty_months == 24 and claim.price == 6000
