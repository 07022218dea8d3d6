"""Malformed requests get a JSON error with a code, never a 500."""

import pytest


@pytest.mark.parametrize(("method", "path", "kwargs", "status", "code"), [
    ("post", "/api/v1/products", {"data": "{not json", "content_type": "application/json"},
     400, "invalid_json"),
    ("post", "/api/v1/products", {"data": "sku=1"}, 415, "unsupported_media_type"),
    ("post", "/api/v1/products", {"json": []}, 422, "invalid_request"),
    ("post", "/api/v1/products", {"json": {"products": []}}, 422, "invalid_request"),
    ("post", "/api/v1/products", {"json": {"products": [{"sku": "A"}]}}, 422, "invalid_request"),
    ("post", "/api/v1/products", {"json": {"products": [{"sku": "A", "title": "t",
     "category": "c", "price": 1.5}]}}, 422, "invalid_request"),
    ("post", "/api/v1/products", {"json": {"products": [{"sku": "A", "title": "t",
     "category": "c", "price": "١٢"}]}}, 422, "invalid_request"),
    ("post", "/api/v1/rule-sets", {"json": {"rules": "text"}}, 422, "invalid_request"),
    ("post", "/api/v1/rule-sets", {"json": {"rules": {}}}, 422, "invalid_rules"),
    ("post", "/api/v1/rule-sets", {"json": {"rules": {"currency": 5, "categories": []}}},
     422, "invalid_rules"),
    ("get", "/api/v1/rule-sets/abc", {}, 404, "not_found"),
    ("get", "/api/v1/nothing-here", {}, 404, "not_found"),
    ("delete", "/api/v1/products", {}, 405, "method_not_allowed"),
])
def test_bad_requests_get_json_errors(client, staff_headers, method, path, kwargs, status, code):
    res = getattr(client, method)(path, headers=staff_headers, **kwargs)
    assert res.status_code == status, res.get_data(as_text=True)
    assert res.json["error"]["code"] == code
    assert res.json["error"]["message"]


def test_oversized_body_is_413(client, staff_headers):
    big = b"{" + b" " * (65 * 1024 * 1024) + b"}"
    res = client.post("/api/v1/products", data=big, content_type="application/json",
                      headers=staff_headers)
    assert res.status_code == 413 and res.json["error"]["code"] == "request_entity_too_large"


def test_health_endpoints(client):
    assert client.get("/livez").json == {"status": "ok"}
    health = client.get("/healthz").json
    assert health["status"] == "ok" and health["database"] == "ok"


def test_html_clients_get_a_readable_page(client):
    res = client.get("/no-such-page", headers={"Accept": "text/html"})
    assert res.status_code == 404
    assert b"<!doctype html>" in res.data and b"not_found" in res.data


@pytest.mark.parametrize("text", ["nul\x00byte", "lone\ud800surrogate"])
def test_unstorable_text_is_refused_not_a_500(client, staff_headers, store_key, text):
    import json
    body = json.dumps({"products": [{"sku": text, "title": "t", "category": "tv",
                                     "price": 1}]})
    res = client.post("/api/v1/products", data=body, content_type="application/json",
                      headers=staff_headers)
    assert res.status_code == 422 and res.json["error"]["code"] == "invalid_text"
    query = client.get("/api/v1/offers?sku=a%00b", headers=store_key)
    assert query.status_code == 400 and query.json["error"]["code"] == "invalid_text"


def test_unstorable_text_in_a_path_is_refused_on_every_route(app, client, db, settings,
                                                             staff_headers, store_key):
    """A NUL in an id of the path (``/api/v1/claims/%00``) is a 400 like one in a query,
    never a 500 from PostgreSQL, on every route that takes an id, signed in or not."""
    from werkzeug.routing.converters import NumberConverter

    from tests.factories import add_staff
    from tests.http.web.pages import sign_in_customer, sign_in_staff

    add_staff(db)
    sign_in_staff(client)
    sign_in_customer(client, settings)
    headers = {**staff_headers, **store_key}
    walked = []
    for rule in app.url_map.iter_rules():
        if not rule.arguments or rule.endpoint == "static":
            continue
        # Text ids get the NUL; numbers (<int:...>) can't hold one and get 1.
        numeric = {name for name, converter in rule._converters.items()
                   if isinstance(converter, NumberConverter)}
        if not set(rule.arguments) - numeric:
            continue
        values = {name: 1 if name in numeric else "a\x00b" for name in rule.arguments}
        url = rule.build(values, append_unknown=False)[1]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            res = client.open(url, method=method, headers=headers,
                              json={} if method == "POST" else None)
            walked.append(rule.endpoint)
            assert res.status_code < 500, (method, rule.rule, res.get_data(as_text=True))
            if res.status_code not in (302, 401, 403, 405):
                assert res.status_code == 400, (method, rule.rule, res.status_code)
    assert {"claims_api.get_claim", "customer.claim_page", "staff.review",
            "checkout.post_purchase_offers"} <= set(walked)


@pytest.mark.parametrize("amount", [2**63, 2**64, 10**30, -(2**64)])
@pytest.mark.parametrize(("path", "body"), [
    ("/api/v1/products", lambda n: {"products": [{"sku": "A", "title": "t", "category": "c",
                                                  "price": n}]}),
    ("/api/v1/checkout/payment-intents", lambda n: {
        "order_ref": "X", "customer_email": "a@example.com",
        "lines": [{"type": "product", "line_id": "p", "sku": "TV-1", "quantity": 1,
                   "unit_price": n}]}),
    ("/api/v1/contracts/ct_x/cancel", lambda n: {"amount": n, "reason": "r"}),
    ("/api/v1/claims/clm_x/approve", lambda n: {"decision": "repair", "amount": n}),
    ("/api/v1/orders/import", lambda n: {"orders": [{"order_ref": "R", "email": "a@b.example",
                                                     "purchase_date": "2026-01-05",
                                                     "total_amount": n}]}),
])
def test_amounts_past_64_bits_are_a_clear_error(client, staff_headers, store_key, path, body,
                                                amount):
    """An amount no money column can hold (or no 64-bit integer) is refused with the
    field named: the error echoes what was sent, and that must not break the answer."""
    res = client.post(path, headers={**staff_headers, **store_key}, json=body(amount))
    assert res.status_code == 422, res.get_data(as_text=True)[:300]
    assert res.json["error"]["code"] in ("invalid_request", "invalid_claim")
