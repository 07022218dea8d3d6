"""Security: rate limits on public endpoints (429 with Retry-After, per address, shared
through Redis), a staff sign-in lockout per account, and security headers."""

from __future__ import annotations

import random
import socket
import time

import pytest

from tests.factories import STAFF_PASSWORD, add_staff, signed_visitor
from tests.web.pages import csrf
from warranty import create_app
from warranty.ratelimit import SweptMemoryStorage


def _caller() -> dict:
    """A client address of its own, so counts never mix between tests or runs."""
    return {"REMOTE_ADDR": f"10.{random.randrange(256)}.{random.randrange(256)}."
                           f"{random.randrange(1, 255)}"}


def _plans_link(client, where: dict, store_key: dict):
    """Ask for a plans link by mail, as the storefront does."""
    return client.post("/api/v1/customers/plans-link", json={"email": "a@example.com"},
                       headers=store_key, environ_base=where)


def test_sign_in_endpoints_answer_429_per_address(settings, store_key):
    app = create_app(settings.model_copy(update={"rate_limit_sign_in": "3/minute"}))
    client, me, other = app.test_client(), _caller(), _caller()
    codes = [_plans_link(client, me, store_key).status_code for _ in range(4)]
    assert codes[:3] == [codes[0]] * 3 and codes[0] != 429 and codes[3] == 429
    limited = _plans_link(client, me, store_key)
    assert limited.json["error"]["code"] == "too_many_requests"
    assert 0 < int(limited.headers["Retry-After"]) <= 60
    assert _plans_link(client, other, store_key).status_code != 429  # another address
    offers = client.get("/api/v1/offers?sku=NOPE", headers=store_key, environ_base=me)
    assert offers.status_code != 429  # other groups count separately


def test_pages_get_a_readable_429(settings, db):
    app = create_app(settings.model_copy(update={"rate_limit_sign_in": "2/minute"}))
    client, me = app.test_client(), _caller()
    token = csrf(client, "/my/plans")
    form = {"csrf_token": token, "email": "x@example.com", "order_ref": "nope"}
    answers = [client.post("/my/plans", data=form, environ_base=me,
                           headers={"Accept": "text/html"}) for _ in range(3)]
    assert [a.status_code != 429 for a in answers] == [True, True, False]
    assert answers[2].mimetype == "text/html" and "too_many_requests" in answers[2].text


def test_staff_sign_in_locks_an_account_after_failed_passwords(settings, db):
    add_staff(db)
    add_staff(db, email="bob@store.example")
    app = create_app(settings.model_copy(update={
        "rate_limit_staff_login_failures": "3 per 15 minutes"}))

    def attempt(email: str, password: str):
        client = app.test_client()  # a new browser, and a new address, every time
        token = csrf(client, "/staff/login")
        return client.post("/staff/login", environ_base=_caller(), data={
            "email": email, "password": password, "csrf_token": token})

    assert attempt("alice@store.example", STAFF_PASSWORD).status_code == 303  # not counted
    assert [attempt("Alice@store.example", "guess").status_code for _ in range(3)] == [401] * 3
    assert attempt("alice@store.example", STAFF_PASSWORD).status_code == 429  # locked
    assert attempt("bob@store.example", STAFF_PASSWORD).status_code == 303


def test_memory_counts_expire_without_a_timer_thread(monkeypatch):
    """The in-process storage sweeps idle keys itself instead of by a timer thread."""
    from limits import parse, strategies

    store = SweptMemoryStorage()
    limiter = strategies.SlidingWindowCounterRateLimiter(store)
    one_a_second = parse("2/second")
    assert [limiter.hit(one_a_second, "t", "a") for _ in range(3)] == [True, True, False]
    assert not store.timer.is_alive()  # the stock storage keeps restarting this thread
    later, real_time, real_monotonic = [0.0], time.time, time.monotonic
    monkeypatch.setattr(time, "time", lambda: real_time() + later[0])
    monkeypatch.setattr(time, "monotonic", lambda: real_monotonic() + later[0])
    limiter.hit(one_a_second, "t", "b")
    later[0] = 3 * SweptMemoryStorage.SWEEP_SECONDS  # b's window is long over: a sweep is due
    limiter.hit(one_a_second, "t", "c")
    assert not [key for key in store.storage if "/b/" in key]
    assert limiter.hit(one_a_second, "t", "b")


def _redis_up() -> bool:
    """Whether Redis answers on 127.0.0.1:6379."""
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=0.5).close()
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _redis_up(), reason="needs Redis on 127.0.0.1:6379")
def test_processes_share_counts_through_redis(settings, store_key):
    shared = settings.model_copy(update={"rate_limit_sign_in": "3/minute",
                                         "ratelimit_storage_uri": "redis://127.0.0.1:6379"})
    first, second = create_app(shared).test_client(), create_app(shared).test_client()
    me = _caller()
    assert _plans_link(first, me, store_key).status_code != 429
    assert _plans_link(second, me, store_key).status_code != 429
    assert _plans_link(first, me, store_key).status_code != 429
    assert _plans_link(second, me, store_key).status_code == 429  # 4th across both "processes"
    apart = create_app(settings.model_copy(update={"rate_limit_sign_in": "3/minute"}))
    assert _plans_link(apart.test_client(), me, store_key).status_code != 429  # memory://


@pytest.mark.skipif(not _redis_up(), reason="needs Redis on 127.0.0.1:6379")
def test_event_intake_limits_are_shared_through_redis(settings, store_key, db):
    shared = settings.model_copy(update={
        "ratelimit_storage_uri": "redis://127.0.0.1:6379", "events_rate_per_visitor": 1.0,
        "events_burst_per_visitor": 30, "events_rate_per_ip": 100.0})
    first, second = create_app(shared).test_client(), create_app(shared).test_client()
    visitor, me = signed_visitor(f"v-{random.getrandbits(64):x}"), _caller()

    def send(client, n: int):
        return client.post("/api/v1/events", headers=store_key, environ_base=me, json={
            "visitor_id": visitor, "events": [{"type": "offer_viewed"}] * n})

    assert send(first, 20).status_code == 202
    limited = send(second, 20)  # 40 > 30 across both "processes"
    assert limited.status_code == 429 and limited.json["error"]["code"] == "rate_limited"
    assert 1 <= int(limited.headers["Retry-After"]) <= 30
    assert send(second, 10).status_code == 202  # what is left of the burst


def test_security_headers_on_json_and_pages(settings, client):
    for path in ("/livez", "/openapi.json", "/api/v1/offers", "/my/plans"):
        assert client.get(path).headers["X-Content-Type-Options"] == "nosniff", path
        assert "Strict-Transport-Security" not in client.get(path).headers
    https = create_app(settings.model_copy(update={"base_url": "https://warranty.example"}))
    for path in ("/livez", "/api/v1/offers", "/my/plans"):
        hsts = https.test_client().get(path).headers["Strict-Transport-Security"]
        assert hsts.startswith("max-age=31536000"), path


def test_behind_a_proxy_limits_count_the_forwarded_address(settings, store_key):
    app = create_app(settings.model_copy(update={"rate_limit_sign_in": "1/minute",
                                                 "proxy_hops": 1}))
    client, proxy = app.test_client(), _caller()

    def via_proxy(client_ip: str):
        return client.post("/api/v1/customers/plans-link", json={"email": "a@example.com"},
                           headers={**store_key, "X-Forwarded-For": client_ip},
                           environ_base=proxy)

    first, second = _caller()["REMOTE_ADDR"], _caller()["REMOTE_ADDR"]
    assert via_proxy(first).status_code != 429
    assert via_proxy(first).status_code == 429
    assert via_proxy(second).status_code != 429  # same proxy, another shopper
