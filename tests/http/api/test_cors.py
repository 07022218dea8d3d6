"""CORS over real HTTP: the storefront endpoints answer the store's allowed origins only;
nothing else ever answers another origin."""

from __future__ import annotations

import json

import pytest
import requests

from devtools.settings import demo_settings
from tests.conftest import API_TOKEN, PUBLIC_KEY
from tests.factories import add_product, load_rules, signed_visitor
from warranty.http.app import create_app
from warranty.http.cors import STOREFRONT_ENDPOINTS

STORE = "http://shop.example:8000"
OTHER = "https://evil.example"

# Every storefront endpoint with the method the embed uses and a path to it.
STOREFRONT = [
    ("GET", "/api/v1/offers?sku=TV-1"),
    ("POST", "/api/v1/offers/batch"),
    ("GET", "/api/v1/experiment/assignment?visitor_id=v_cors_test"),
    ("POST", "/api/v1/events"),
    ("POST", "/api/v1/checkout/sessions"),
    ("POST", "/api/v1/checkout/payment-intents"),  # a store's own payment form
    ("GET", "/api/v1/orders/ord_nothere/post-purchase-offers"),
    ("POST", "/api/v1/checkout/post-purchase"),
]
# Staff, finance, admin, customer, Stripe and operator endpoints: never cross-origin.
NEVER = [
    ("GET", "/api/v1/contracts"),
    ("GET", "/api/v1/rule-sets"),
    ("POST", "/api/v1/products"),
    ("GET", "/api/v1/reports/finance?from=2026-01-01&to=2026-01-31"),
    ("GET", "/api/v1/customer/plans"),
    ("POST", "/api/v1/claims"),
    ("POST", "/api/v1/customers/plans-link"),
    ("POST", "/api/v1/customer-tokens"),
    ("POST", "/stripe/webhook"),
    ("GET", "/metrics"),
    ("GET", "/healthz"),
    ("GET", "/my/plans"),
    ("GET", "/staff/login"),
]


@pytest.fixture
def service(settings, db, shared_server):
    """The app over HTTP with the store's origin allowed, the test catalog loaded."""
    load_rules(db)
    add_product(db)
    app = create_app(settings.model_copy(update={"allowed_origins": STORE}))
    with shared_server.mounted(app) as url:
        yield url


def preflight(url: str, method: str, path: str, origin: str) -> requests.Response:
    """What a browser asks before a cross-origin call with a JSON body."""
    return requests.options(url + path, timeout=10, headers={
        "Origin": origin, "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "content-type"})


def test_the_list_names_every_storefront_endpoint_the_embed_calls():
    app = create_app(demo_settings(env="test"))
    adapter = app.url_map.bind("localhost")
    for method, path in STOREFRONT:
        endpoint, _ = adapter.match(path.split("?")[0], method=method)
        assert endpoint in STOREFRONT_ENDPOINTS
    assert len(STOREFRONT) == len(STOREFRONT_ENDPOINTS)


@pytest.mark.parametrize(("method", "path"), STOREFRONT)
def test_preflight_from_the_store_is_allowed(service, method, path):
    res = preflight(service, method, path, STORE)
    assert res.status_code == 204, res.text
    assert res.headers["Access-Control-Allow-Origin"] == STORE
    assert res.headers["Access-Control-Allow-Methods"] == method
    assert "content-type" in res.headers["Access-Control-Allow-Headers"].lower()
    assert int(res.headers["Access-Control-Max-Age"]) > 0
    assert "Origin" in res.headers["Vary"]
    assert "Access-Control-Allow-Credentials" not in res.headers


@pytest.mark.parametrize(("method", "path"), STOREFRONT)
def test_preflight_from_another_origin_is_refused(service, method, path):
    res = preflight(service, method, path, OTHER)
    assert res.status_code == 403
    assert res.json()["error"]["code"] == "origin_not_allowed"
    assert "Access-Control-Allow-Origin" not in res.headers


def test_requests_from_the_store_can_be_read_and_others_cannot(service):
    for origin, readable in ((STORE, True), (OTHER, False), (None, False)):
        headers = {"Origin": origin} if origin else {}
        offers = requests.get(f"{service}/api/v1/offers?sku=TV-1&key={PUBLIC_KEY}",
                              headers=headers, timeout=10)
        batch = requests.post(f"{service}/api/v1/offers/batch?key={PUBLIC_KEY}",
                              json={"items": [{"sku": "TV-1"}]}, headers=headers, timeout=10)
        events = requests.post(f"{service}/api/v1/events?key={PUBLIC_KEY}", headers={
            **headers, "Content-Type": "text/plain"}, timeout=10,
            data=json.dumps({"visitor_id": signed_visitor("v_cors_test"),
                             "events": [{"type": "exposure"}]}))
        for res in (offers, batch, events):
            assert res.status_code in (200, 202), res.text
            assert res.headers.get("Access-Control-Allow-Origin") == (
                origin if readable else None)
            assert "Origin" in res.headers["Vary"]  # caches keep one answer per origin
            assert "Access-Control-Allow-Credentials" not in res.headers
        assert offers.json()["offers"]  # served either way: CORS only decides who may read


def test_errors_of_storefront_endpoints_are_readable_by_the_store(service):
    res = requests.post(f"{service}/api/v1/checkout/sessions?key={PUBLIC_KEY}",
                        json={"lines": []}, headers={"Origin": STORE}, timeout=10)
    assert res.status_code == 422 and res.json()["error"]["code"] == "invalid_request"
    assert res.headers["Access-Control-Allow-Origin"] == STORE  # the embed shows the reason


@pytest.mark.parametrize(("method", "path"), NEVER)
def test_other_endpoints_never_answer_another_origin(service, method, path):
    res = preflight(service, method, path, STORE)
    assert "Access-Control-Allow-Origin" not in res.headers
    assert res.status_code != 204
    res = requests.request(method, service + path, timeout=10, headers={
        "Origin": STORE, "Authorization": f"Bearer {API_TOKEN}", "X-Warranty-Key": PUBLIC_KEY})
    assert "Access-Control-Allow-Origin" not in res.headers
    assert "Access-Control-Allow-Credentials" not in res.headers


def test_no_setting_means_same_origin_only(settings, db, shared_server):
    load_rules(db)
    add_product(db)
    with shared_server.mounted(create_app(settings)) as url:
        assert preflight(url, "POST", "/api/v1/offers/batch", STORE).status_code == 403
        res = requests.get(f"{url}/api/v1/offers?sku=TV-1&key={PUBLIC_KEY}",
                           headers={"Origin": STORE}, timeout=10)
    assert res.status_code == 200 and "Access-Control-Allow-Origin" not in res.headers


def test_preflights_are_not_counted_by_the_rate_limit(settings, db, shared_server):
    load_rules(db)
    add_product(db)
    limited = settings.model_copy(update={"allowed_origins": STORE, "rate_limits_enabled": True,
                                          "rate_limit_offers": "3/minute"})
    with shared_server.mounted(create_app(limited)) as url:
        for _ in range(5):
            assert preflight(url, "POST", "/api/v1/offers/batch", STORE).status_code == 204
        answers = [requests.post(f"{url}/api/v1/offers/batch?key={PUBLIC_KEY}",
                                 json={"items": [{"sku": "TV-1"}]}, headers={"Origin": STORE},
                                 timeout=10) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[-1].headers["Access-Control-Allow-Origin"] == STORE  # readable: Retry-After


@pytest.mark.parametrize("value", ["*", "https://shop.example/path", "shop.example",
                                   "ftp://shop.example", "https://shop.example:99999"])
def test_allowed_origins_must_be_exact_origins(value):
    with pytest.raises(ValueError, match="WARRANTY_ALLOWED_ORIGINS"):
        demo_settings(allowed_origins=value)


def test_allowed_origins_are_kept_as_browsers_send_them():
    settings = demo_settings(allowed_origins=" https://Shop.Example/ ,http://127.0.0.1:8000,"
                                             "https://shop.example:443")
    assert settings.allowed_origins == ("https://shop.example,http://127.0.0.1:8000,"
                                        "https://shop.example")
