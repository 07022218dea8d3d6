"""What the service reads of a request: a body limit per endpoint (413 with a code, never the
whole body read first), forms parsed only by the pages that take them, JSON nesting bounded."""

from __future__ import annotations

import io
import json
import tracemalloc

import pytest

from tests.factories import signed_visitor
from tests.http.web.pages import csrf
from warranty.http.request_limits import BODY_LIMITS, DEFAULT_BODY_BYTES


def _json(size: int) -> bytes:
    """A JSON object of about ``size`` bytes."""
    return json.dumps({"pad": "x" * size}).encode()


@pytest.mark.parametrize("path", ["/api/v1/events", "/api/v1/checkout/sessions",
                                  "/api/v1/offers/batch", "/api/v1/contracts/ct_x/cancel",
                                  "/api/v1/customers/plans-link", "/api/v1/nothing-here"])
def test_small_endpoints_refuse_a_body_past_64_kb_with_a_413(client, staff_headers, store_key,
                                                             path):
    res = client.post(path, data=_json(DEFAULT_BODY_BYTES), content_type="application/json",
                      headers={**staff_headers, **store_key})
    if path.endswith("nothing-here"):
        assert res.status_code == 404  # nothing reads the body of a URL with no route
        return
    assert res.status_code == 413, res.get_data(as_text=True)
    assert res.json["error"]["code"] == "request_entity_too_large"
    assert res.json["error"]["details"] == {"limit_bytes": 64 * 1024}
    assert "64 KB" in res.json["error"]["message"]
    fits = client.post(path, data=_json(DEFAULT_BODY_BYTES - 200),
                       content_type="application/json", headers={**staff_headers, **store_key})
    assert fits.status_code != 413


def test_bulk_endpoints_take_large_bodies(client, staff_headers):
    products = [{"sku": f"SKU-{n}", "title": "A product title " * 4, "category": "tv",
                 "price": 1000 + n} for n in range(3000)]  # about 400 KB
    body = json.dumps({"products": products}).encode()
    assert len(body) > 5 * DEFAULT_BODY_BYTES
    res = client.post("/api/v1/products", data=body, content_type="application/json",
                      headers=staff_headers)
    assert res.status_code == 200 and res.json["created"] == 3000
    assert BODY_LIMITS["catalog.upsert"] == BODY_LIMITS["orders_import.import_orders"]
    assert BODY_LIMITS["customer.new_claim"] > 5 * 10 * 1024 * 1024  # five 10 MB photos


def test_a_page_gets_a_readable_413(client):
    token = csrf(client)
    res = client.post("/my/plans", data={"csrf_token": token, "email": "a@example.com",
                                         "order_ref": "x" * (70 * 1024)},
                      headers={"Accept": "text/html"})
    assert res.status_code == 413
    html = res.get_data(as_text=True)
    assert "<!doctype html>" in html and "request_entity_too_large" in html


class CountingStream(io.RawIOBase):
    """A request body of ``total`` bytes that counts what the server read of it."""

    def __init__(self, total: int):
        self.total, self.read_bytes = total, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = min(len(buffer), self.total - self.read_bytes)
        buffer[:count] = b" " * count
        self.read_bytes += count
        return count


def test_a_chunked_body_is_cut_off_at_the_limit_not_read_whole(client, store_key):
    # No Content-Length (as with Transfer-Encoding: chunked): reading stops at the limit.
    stream = CountingStream(20 * 1024 * 1024)
    res = client.post("/api/v1/events", content_type="application/json",
                      headers={**store_key, "Transfer-Encoding": "chunked"},
                      environ_overrides={"wsgi.input": stream, "wsgi.input_terminated": True})
    assert res.status_code == 413 and res.json["error"]["code"] == "request_entity_too_large"
    assert stream.read_bytes <= DEFAULT_BODY_BYTES + 64 * 1024


def _peak_while(call) -> int:
    """Peak bytes allocated while ``call`` runs."""
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(("method", "path", "status"), [
    ("get", "/livez", 200), ("post", "/api/v1/products", 415), ("post", "/stripe/webhook", 413),
    ("post", "/no/such/page", 404)])
def test_a_big_form_sent_to_a_url_that_takes_no_form_is_not_parsed(client, staff_headers,
                                                                   method, path, status):
    # 3 MB of tiny fields: parsed, it costs well over a hundred megabytes.
    body = b"a=&" * 1_000_000
    answers = []

    def send():
        answers.append(getattr(client, method)(
            path, data=body, content_type="application/x-www-form-urlencoded",
            headers=staff_headers))

    peak = _peak_while(send)
    assert answers[0].status_code == status, answers[0].get_data(as_text=True)
    assert peak < 4 * 1024 * 1024, f"{peak / 2**20:.0f} MB allocated"


def test_pages_still_screen_their_forms_for_unstorable_text(client):
    token = csrf(client)
    res = client.post("/my/plans", data={"csrf_token": token, "email": "a\x00@example.com",
                                         "order_ref": "A-1"})
    assert res.status_code == 400 and b"invalid_text" in res.data


def _nested(depth: int) -> str:
    """A product list nested ``depth`` levels deep in total (the object counts as one)."""
    return '{"products": ' + "[" * (depth - 1) + "]" * (depth - 1) + "}"


@pytest.mark.parametrize("depth", [33, 100, 50_000])
def test_json_nested_past_32_levels_is_a_400(client, staff_headers, store_key, depth):
    res = client.post("/api/v1/products", data=_nested(depth), content_type="application/json",
                      headers=staff_headers)
    assert res.status_code == 400, res.get_data(as_text=True)[:200]
    assert res.json["error"]["code"] == "json_too_deep"
    nested = "[" * depth + "]" * depth
    beacon = f'{{"visitor_id": "{signed_visitor("deep")}", "events": {nested}}}'
    if len(beacon) < DEFAULT_BODY_BYTES:
        res = client.post("/api/v1/events", data=beacon, content_type="text/plain",
                          headers=store_key)
        assert res.status_code == 400 and res.json["error"]["code"] == "json_too_deep"


def test_json_of_32_levels_is_validated_as_usual(client, staff_headers):
    res = client.post("/api/v1/products", data=_nested(32), content_type="application/json",
                      headers=staff_headers)
    assert res.status_code == 422 and res.json["error"]["code"] == "invalid_request"
