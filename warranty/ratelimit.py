"""Rate limits on the public endpoints, counted per client address, with the `limits` library.

Counts live in ``WARRANTY_RATELIMIT_STORAGE_URI``: ``memory://`` keeps them per process
(fine for one process and for tests); with several gunicorn workers or hosts use Redis
(``redis://127.0.0.1:6379``) so every process shares them. Windows are sliding-window
counters: constant memory per key and one storage call per limited request. A limited
request gets 429 with ``Retry-After``, through the app's error handler (JSON for the API, a
page for browsers). Endpoints without a limit pay nothing.

Staff sign-in has a second limit keyed by the email typed in: after
``WARRANTY_RATE_LIMIT_STAFF_LOGIN_FAILURES`` wrong passwords that account's sign-in is locked
for the window, whatever address the attempts come from.

The event intake weighs each batch by its number of events, against a limit per visitor and
one per address (``take``), in the same storage.
"""

from __future__ import annotations

import ipaddress
import math
import time
from dataclasses import dataclass
from functools import lru_cache

from flask import Flask, Response, current_app, request
from limits import RateLimitItem, RateLimitItemPerSecond, parse, storage, strategies
from werkzeug.exceptions import TooManyRequests

from warranty.settings import Settings

# Setting name → the endpoints it limits.
GROUPS = {
    "rate_limit_offers": ["offers.get_offers", "offers.batch_offers",
                          "experiment.get_assignment", "checkout.post_purchase_offers"],
    "rate_limit_checkout": ["checkout.create_session", "checkout.create_payment_intent",
                            "checkout.create_post_purchase", "plans_add.buy"],
    "rate_limit_sign_in": ["customer.find_plans", "contracts.plans_link",
                           "claims_api.customer_token", "staff.login"],
    "rate_limit_claims": ["claims_api.file_claim", "claims_api.add_file", "customer.new_claim",
                          "customer.resubmit", "claims_api.resubmit"],
}
# Groups whose pages are also shown with GET: only their POSTs count.
POST_ONLY = frozenset({"rate_limit_sign_in", "rate_limit_claims"})
LIMITED_ENDPOINTS = frozenset(name for names in GROUPS.values() for name in names)
STAFF_LOGIN = "staff.login"
EXTENSION = "warranty.ratelimit"
NAMESPACE = "warranty"  # first part of every counter's key (shared Redis stays readable)


class SweptMemoryStorage(storage.MemoryStorage):
    """limits' in-process storage, with idle keys swept on the request path every few
    seconds. The stock one starts a new timer thread every 10 ms while requests come in,
    and that thread walks every key each time: a thread start for every few requests and,
    with many client addresses, a sweep that grows with them. Expired counts are still
    dropped on read, so a sweep only frees memory."""

    SWEEP_SECONDS = 5.0

    def __init__(self) -> None:
        """The stock storage without its timer thread."""
        super().__init__()
        self.timer.cancel()
        self.timer.join()
        self._next_sweep = time.monotonic() + self.SWEEP_SECONDS

    def _MemoryStorage__schedule_expiry(self) -> None:  # replaces the stock timer thread
        """Sweep expired keys when the last sweep is old enough."""
        now = time.monotonic()
        if now >= self._next_sweep:
            self._next_sweep = now + self.SWEEP_SECONDS
            self._MemoryStorage__expire_events()


def _storage(uri: str) -> storage.Storage:
    """The counters' storage for a ``WARRANTY_RATELIMIT_STORAGE_URI``."""
    if uri.rstrip("/") == "memory:":
        return SweptMemoryStorage()
    return storage.storage_from_string(uri)


@dataclass(frozen=True)
class Rule:
    """One endpoint's limit (each endpoint counts on its own) and whether only POSTs count."""

    item: RateLimitItem
    post_only: bool


class RateLimits:
    """One app's limits and counters."""

    def __init__(self, settings: Settings):
        """Counters in the configured storage; a rule for each limited endpoint."""
        self.storage = _storage(settings.ratelimit_storage_uri)
        self.strategy = strategies.SlidingWindowCounterRateLimiter(self.storage)
        self.rules = {endpoint: Rule(parse(getattr(settings, setting)), setting in POST_ONLY)
                      for setting, endpoints in GROUPS.items() for endpoint in endpoints}
        self.login_failures = parse(settings.rate_limit_staff_login_failures)

    def retry_after(self, item: RateLimitItem, *identifiers: str) -> int:
        """Whole seconds until the window lets one more through (at least 1)."""
        reset = self.strategy.get_window_stats(item, NAMESPACE, *identifiers).reset_time
        return max(1, math.ceil(reset - time.time()))

    def check_request(self) -> None:
        """Count this request against its endpoint's limit; 429 when it is spent."""
        rule = self.rules.get(request.endpoint)
        if rule is None or (rule.post_only and request.method != "POST"):
            return
        scope, address = request.endpoint, client_key()
        if not self.strategy.hit(rule.item, NAMESPACE, scope, address):
            raise TooManyRequests(str(rule.item),
                                  retry_after=self.retry_after(rule.item, scope, address))
        if request.endpoint == STAFF_LOGIN:
            self._check_login_lockout()

    def _check_login_lockout(self) -> None:
        """Refuse sign-in to an account whose failure allowance is spent."""
        email = _login_email()
        if not self.strategy.test(self.login_failures, NAMESPACE, "staff-login-failures", email):
            raise TooManyRequests(
                "too many failed sign-ins for this account; try again later",
                retry_after=self.retry_after(self.login_failures, "staff-login-failures",
                                             email))

    def count_login_failure(self, response: Response) -> Response:
        """A wrong password (401 from staff sign-in) spends one of the account's failures."""
        if (request.endpoint == STAFF_LOGIN and request.method == "POST"
                and response.status_code == 401):
            self.strategy.hit(self.login_failures, NAMESPACE, "staff-login-failures",
                              _login_email())
        return response

    def take(self, cost: int, limits: list[tuple[RateLimitItem, str, str]]) -> int:
        """Spend ``cost`` from every (item, scope, key) at once: 0 when allowed, else the
        seconds to wait (nothing is spent when any of them refuses)."""
        for item, scope, key in limits:
            if not self.strategy.test(item, NAMESPACE, scope, key, cost=cost):
                return self.retry_after(item, scope, key)
        for item, scope, key in limits:
            self.strategy.hit(item, NAMESPACE, scope, key, cost=cost)
        return 0


@lru_cache(maxsize=4096)
def address_key(address: str | None) -> str:
    """What limits count a client address under: an IPv4 address as it is, an IPv6 address
    by its /64 (one subscriber's network: its hosts pick any of 2^64 addresses at will), an
    IPv4-mapped IPv6 address as its IPv4 address."""
    if not address:
        return "-"
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address[:64]
    if ip.version == 6 and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def client_key() -> str:
    """The current request's client, as limits count it (see ``address_key``)."""
    return address_key(request.remote_addr)


def per_second(rate: float, burst: int) -> RateLimitItem:
    """``burst`` per the time ``rate`` per second takes to refill it."""
    return RateLimitItemPerSecond(burst, max(1, math.ceil(burst / rate)))


def _login_email() -> str:
    """The account a staff sign-in attempt is for."""
    return (request.form.get("email") or "").strip().lower()[:320]


def limits() -> RateLimits | None:
    """The current app's limits (None when rate limiting is off)."""
    return current_app.extensions.get(EXTENSION)


def install(app: Flask, settings: Settings) -> RateLimits | None:
    """Attach this app's limits (its own counters) to every request."""
    if not settings.rate_limits_enabled:
        return None
    rate_limits = RateLimits(settings)
    app.extensions[EXTENSION] = rate_limits
    app.before_request(rate_limits.check_request)
    app.after_request(rate_limits.count_login_failure)
    return rate_limits
