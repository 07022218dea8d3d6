"""Security: rate limits on public endpoints (429 with Retry-After, per address, shared
through Redis), a staff sign-in lockout per account, and security headers."""

from __future__ import annotations

import random
import socket
import time

import pytest

from tests.factories import STAFF_PASSWORD, add_staff
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


def _login(app, email: str, password: str, where: dict):
    """One staff sign-in attempt from a new browser at ``where`` (an address)."""
    client = app.test_client()
    token = csrf(client, "/staff/login")
    return client.post("/staff/login", environ_base=where, data={
        "email": email, "password": password, "csrf_token": token})


def test_wrong_passwords_from_one_address_never_lock_the_rightful_user_out(settings, db):
    add_staff(db)
    add_staff(db, email="bob@store.example")
    app = create_app(settings.model_copy(update={
        "rate_limit_sign_in": "1000/minute", "staff_login_free_failures": 3,
        "rate_limit_staff_login_failures": "5 per 15 minutes"}))
    attacker, office = _caller(), _caller()
    codes = [_login(app, "Alice@store.example", f"guess-{n}", attacker).status_code
             for n in range(8)]
    assert codes[:3] == [401] * 3 and set(codes[3:]) == {429}  # backoff after 3 failures
    # Waiting, the attacker's address is refused before the password is even checked.
    assert _login(app, "alice@store.example", STAFF_PASSWORD, attacker).status_code == 429
    # The rightful user, from an address without failures, gets in at once.
    assert _login(app, "alice@store.example", STAFF_PASSWORD, office).status_code == 303
    assert _login(app, "bob@store.example", STAFF_PASSWORD, attacker).status_code == 303


def test_past_the_account_cap_every_failing_address_waits_and_fresh_ones_still_try(settings,
                                                                                     db):
    add_staff(db)
    app = create_app(settings.model_copy(update={
        "rate_limit_sign_in": "1000/minute", "staff_login_free_failures": 3,
        "rate_limit_staff_login_failures": "4 per 15 minutes"}))
    botnet = [_caller() for _ in range(6)]
    # Four addresses spend the account's cap of four failures ...
    assert [_login(app, "alice@store.example", "guess", a).status_code
            for a in botnet[:4]] == [401] * 4
    # ... after which each new address gets one guess, then waits the whole cap.
    assert _login(app, "alice@store.example", "guess", botnet[4]).status_code == 401
    refused = _login(app, "alice@store.example", "guess", botnet[4])
    assert refused.status_code == 429 and 850 < int(refused.headers["Retry-After"]) <= 900
    assert _login(app, "alice@store.example", STAFF_PASSWORD, _caller()).status_code == 303


def test_the_same_address_signs_in_after_its_backoff(settings, db):
    add_staff(db)
    app = create_app(settings.model_copy(update={
        "rate_limit_sign_in": "1000/minute", "staff_login_free_failures": 2,
        "staff_login_backoff_seconds": 1, "rate_limit_staff_login_failures": "50/hour"}))
    me = _caller()
    assert [_login(app, "alice@store.example", "typo", me).status_code
            for _ in range(2)] == [401, 401]
    waiting = _login(app, "alice@store.example", STAFF_PASSWORD, me)
    assert waiting.status_code == 429 and waiting.headers["Retry-After"] == "1"
    assert "try again in 1 seconds" in waiting.text
    time.sleep(1.1)
    assert _login(app, "alice@store.example", STAFF_PASSWORD, me).status_code == 303
    # The correct password ended that address's backoff: a typo later is free again.
    assert _login(app, "alice@store.example", "typo", me).status_code == 401
    assert _login(app, "alice@store.example", "typo", me).status_code == 401


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
    visitor, me = f"v-{random.getrandbits(64):x}", _caller()

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
