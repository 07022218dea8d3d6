"""Security: rate limits on public endpoints (429 with Retry-After, per address, shared
through Redis), a staff sign-in lockout per account, and security headers."""

from __future__ import annotations

import random
import socket
import time

import pytest
from flask import request

from tests.factories import STAFF_PASSWORD, add_staff, signed_visitor
from tests.http.web.pages import csrf
from warranty.http.app import create_app
from warranty.http.ratelimit import SweptMemoryStorage


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


def test_no_spelling_of_the_address_escapes_the_accounts_counts(settings, db):
    """Whatever follows the address (white space past the field's 320 characters, each
    attempt different), an attempt that reaches the account's password counts against that
    account and address, and waits like the others."""
    add_staff(db)
    app = create_app(settings.model_copy(update={
        "rate_limit_sign_in": "1000/minute", "staff_login_free_failures": 2,
        "rate_limit_staff_login_failures": "5 per 15 minutes"}))
    attacker = _caller()
    blanks = " \t\n\x0b\x0c\r\x1c\x1d\x1e\x1f\x85\xa0\u2000\u3000"

    def spelled(n: int) -> str:
        rng = random.Random(n)
        return "alice@store.example" + "".join(rng.choice(blanks) for _ in range(330)) + "x"

    assert [_login(app, "alice@store.example", f"guess-{n}", attacker).status_code
            for n in range(2)] == [401, 401]
    # The address waits now: no spelling of it gets its password checked.
    assert {_login(app, spelled(n), f"guess-{n}", attacker).status_code
            for n in range(10)} <= {401, 429}
    assert _login(app, spelled(99), STAFF_PASSWORD, attacker).status_code != 303
    assert _login(app, "alice@store.example", STAFF_PASSWORD, attacker).status_code == 429
    # Leading blanks, past 320 characters too, name the account like the address itself.
    padded = " " * 400 + "Alice@store.example"
    assert _login(app, padded, STAFF_PASSWORD, attacker).status_code == 429
    assert _login(app, padded, STAFF_PASSWORD, _caller()).status_code == 303


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
    visitor, me = signed_visitor(f"v-{random.getrandbits(64):x}"), _caller()

    def send(client, n: int):
        return client.post("/api/v1/events", headers=store_key, environ_base=me, json={
            "visitor_id": visitor, "events": [{"type": "offer_viewed"}] * n})

    assert send(first, 20).status_code == 202
    limited = send(second, 20)  # 40 > 30 across both "processes"
    assert limited.status_code == 429 and limited.json["error"]["code"] == "rate_limited"
    assert 1 <= int(limited.headers["Retry-After"]) <= 30
    assert send(second, 10).status_code == 202  # what is left of the burst


@pytest.mark.skipif(not _redis_up(), reason="needs Redis on 127.0.0.1:6379")
def test_staff_sign_in_backoff_through_redis_ends_and_never_fails(settings, db):
    """With Redis (the several-process deployment) a wait is stored with its expiry: the
    address waits its backoff and then signs in, never a 500, never a wait without end."""
    email = f"r{random.getrandbits(48):x}@store.example"  # counts of its own in shared Redis
    add_staff(db, email=email)
    app = create_app(settings.model_copy(update={
        "ratelimit_storage_uri": "redis://127.0.0.1:6379", "rate_limit_sign_in": "1000/minute",
        "staff_login_free_failures": 2, "staff_login_backoff_seconds": 1.5,
        "rate_limit_staff_login_failures": "50/hour"}))
    me = _caller()
    assert [_login(app, email, "typo", me).status_code for _ in range(2)] == [401, 401]
    waiting = _login(app, email, STAFF_PASSWORD, me)
    assert waiting.status_code == 429 and 1 <= int(waiting.headers["Retry-After"]) <= 2
    time.sleep(2.1)
    assert _login(app, email, STAFF_PASSWORD, me).status_code == 303
    # Past the account's cap every failing address waits the whole cap, in Redis too.
    capped = create_app(settings.model_copy(update={
        "ratelimit_storage_uri": "redis://127.0.0.1:6379", "rate_limit_sign_in": "1000/minute",
        "rate_limit_staff_login_failures": "2 per 15 minutes"}))
    botnet = [_caller() for _ in range(3)]
    assert [_login(capped, email, "guess", a).status_code for a in botnet] == [401] * 3
    refused = _login(capped, email, "guess", botnet[2])
    assert refused.status_code == 429 and 850 < int(refused.headers["Retry-After"]) <= 900


def test_security_headers_on_json_and_pages(settings, client):
    for path in ("/livez", "/openapi.json", "/api/v1/offers", "/my/plans"):
        assert client.get(path).headers["X-Content-Type-Options"] == "nosniff", path
        assert "Strict-Transport-Security" not in client.get(path).headers
    https = create_app(settings.model_copy(update={"base_url": "https://warranty.example"}))
    for path in ("/livez", "/api/v1/offers", "/my/plans"):
        hsts = https.test_client().get(path).headers["Strict-Transport-Security"]
        assert hsts.startswith("max-age=31536000"), path


def test_answers_to_credentialed_requests_are_never_stored_by_a_cache(client, db, settings,
                                                                     staff_headers, store_key):
    """A customer token is a header shared caches know nothing of (unlike Authorization): a
    cache in front that keyed on the URL would hand one customer's plans to the next. Every
    answer to a request with credentials says no-store, exports and the customer API too."""
    from tests.factories import paid_order
    from tests.http.api.test_claims_api import _customer
    from tests.http.web.pages import sign_in_staff

    paid_order(db)
    add_staff(db, role="finance")
    answers = {
        "customer plans": client.get("/api/v1/customer/plans",
                                     headers=_customer(settings, store_key)),
        "customer token": client.post("/api/v1/customer-tokens", headers=staff_headers,
                                      json={"email": "buyer@example.com"}),
        "history": client.get("/api/v1/customers/history?email=buyer@example.com",
                              headers=staff_headers),
        "csv export": client.get("/api/v1/reports/contracts?from=2020-01-01&to=2030-12-31"
                                 "&format=csv", headers=staff_headers),
    }
    sign_in_staff(client)
    answers["export page"] = client.get("/staff/reports/export/contracts?from=2020-01-01"
                                        "&to=2030-12-31&format=csv")
    for what, res in answers.items():
        assert res.status_code in (200, 201), (what, res.status_code)
        assert "no-store" in res.headers.get("Cache-Control", ""), what


def test_behind_a_proxy_limits_count_the_forwarded_address(settings, store_key):
    proxy = _caller()
    app = create_app(settings.model_copy(update={"rate_limit_sign_in": "1/minute",
                                                 "trusted_proxies": proxy["REMOTE_ADDR"]}))
    client = app.test_client()

    def via_proxy(client_ip: str):
        return client.post("/api/v1/customers/plans-link", json={"email": "a@example.com"},
                           headers={**store_key, "X-Forwarded-For": client_ip},
                           environ_base=proxy)

    first, second = _caller()["REMOTE_ADDR"], _caller()["REMOTE_ADDR"]
    assert via_proxy(first).status_code != 429
    assert via_proxy(first).status_code == 429
    assert via_proxy(second).status_code != 429  # same proxy, another shopper


def _limited_app(settings, **update):
    """An app whose sign-in endpoints allow one call per minute per client."""
    return create_app(settings.model_copy(update={"rate_limit_sign_in": "1/minute", **update}))


def test_forwarded_addresses_from_anyone_else_are_ignored(settings, store_key):
    client, me = _limited_app(settings, trusted_proxies="10.250.0.0/16").test_client(), _caller()

    def spoofed(forwarded: str):
        return client.post("/api/v1/customers/plans-link", json={"email": "a@example.com"},
                           headers={**store_key, "X-Forwarded-For": forwarded},
                           environ_base=me)

    # A client that makes up a new X-Forwarded-For each time is still one client.
    assert spoofed("203.0.113.1").status_code != 429
    assert spoofed("203.0.113.2").status_code == 429
    assert spoofed("10.250.0.9, 203.0.113.3").status_code == 429


def test_the_client_is_the_right_most_address_that_is_not_a_trusted_proxy(settings,
                                                                          store_key):
    app = _limited_app(settings, trusted_proxies="10.250.0.0/16, fd00:1::/64")
    client = app.test_client()
    seen, schemes = [], []

    def note():
        seen.append(request.remote_addr)
        schemes.append(request.scheme)

    app.before_request_funcs[None].append(note)

    def hop(peer: str, forwarded: str, proto: str = ""):
        headers = {**store_key, "X-Forwarded-For": forwarded}
        if proto:
            headers["X-Forwarded-Proto"] = proto
        return client.get("/livez", headers=headers, environ_base={"REMOTE_ADDR": peer})

    hop("10.250.0.2", "198.51.100.7")  # one proxy
    hop("10.250.0.2", "1.2.3.4, 198.51.100.8, 10.250.0.3")  # the client's own made-up hop
    hop("fd00:1::2", "2001:db8::5, 10.250.0.3")  # an IPv6 proxy, then an IPv4 one
    hop("10.250.0.2", "10.250.0.7, 10.250.0.3")  # only our proxies: the left-most is the client
    hop("10.250.0.2", "not-an-address, 10.250.0.3")  # garbage: stop at the last proxy
    hop("192.0.2.10", "198.51.100.9")  # not from a proxy: the header is ignored
    assert seen == ["198.51.100.7", "198.51.100.8", "2001:db8::5", "10.250.0.7", "10.250.0.3",
                    "192.0.2.10"]
    for peer in ("10.250.0.2", "192.0.2.10"):  # only a proxy says the scheme was https
        client.get("/livez", headers={"X-Forwarded-Proto": "https"},
                   environ_base={"REMOTE_ADDR": peer})
    assert schemes[-2:] == ["https", "http"]


def test_ipv6_clients_are_limited_per_64(settings, store_key):
    client = _limited_app(settings).test_client()
    prefix = f"2001:db8:{random.getrandbits(16):x}:{random.getrandbits(16):x}"

    def ask(address: str):
        return client.post("/api/v1/customers/plans-link", json={"email": "a@example.com"},
                           headers=store_key, environ_base={"REMOTE_ADDR": address})

    assert ask(f"{prefix}::1").status_code != 429
    # Another address of the same /64 (a host picks any at will): the same client.
    assert ask(f"{prefix}:dead:beef:1:2").status_code == 429
    assert ask(f"{prefix}:ffff:ffff:ffff:ffff").status_code == 429
    other = f"2001:db8:{random.getrandbits(16):x}:{random.getrandbits(16):x}::1"
    assert ask(other).status_code != 429  # another /64 is another client


def test_event_intake_limits_ipv6_addresses_per_64(app, settings, store_key):
    app.config["SETTINGS"] = settings.model_copy(update={
        "events_rate_per_ip": 0.001, "events_burst_per_ip": 150})
    client = app.test_client()
    prefix = f"2001:db8:{random.getrandbits(16):x}:{random.getrandbits(16):x}"

    def send(address: str, visitor: str):
        return client.post("/api/v1/events", headers=store_key,
                           environ_base={"REMOTE_ADDR": address},
                           json={"visitor_id": signed_visitor(visitor),
                                 "events": [{"type": "exposure"}] * 100})

    assert send(f"{prefix}::1", "v6-one").status_code == 202
    assert send(f"{prefix}::2", "v6-two").status_code == 429  # same /64: 200 > 150
    assert send(f"2001:db8:ffff:{random.getrandbits(16):x}::1", "v6-three").status_code == 202


def test_the_metrics_allowlist_cannot_be_reached_by_a_forwarded_address(settings):
    app = create_app(settings.model_copy(update={"metrics_allow": "127.0.0.1",
                                                 "trusted_proxies": "10.250.0.2"}))
    client = app.test_client()
    spoofed = client.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1"},
                         environ_base={"REMOTE_ADDR": "192.0.2.50"})
    assert spoofed.status_code == 401
    relayed = client.get("/metrics", headers={"X-Forwarded-For": "192.0.2.50"},
                         environ_base={"REMOTE_ADDR": "10.250.0.2"})
    assert relayed.status_code == 401


def test_proxy_hops_is_refused_with_what_replaced_it(monkeypatch):
    from pydantic import ValidationError

    from warranty.core.settings import Settings

    monkeypatch.setenv("WARRANTY_ENV", "demo")
    monkeypatch.setenv("WARRANTY_PROXY_HOPS", "1")
    with pytest.raises(ValidationError, match="WARRANTY_TRUSTED_PROXIES"):
        Settings()
    monkeypatch.delenv("WARRANTY_PROXY_HOPS")
    monkeypatch.setenv("WARRANTY_TRUSTED_PROXIES", "10.0.0.0/8, 10.1.2.3")
    assert Settings().trusted_proxies == "10.0.0.0/8,10.1.2.3/32"
    monkeypatch.setenv("WARRANTY_TRUSTED_PROXIES", "10.0.0.0/8, proxy.internal")
    with pytest.raises(ValidationError, match="trusted_proxies"):
        Settings()
