"""Rate limits on the public endpoints, counted per client address, with the `limits` library.

Counts live in ``WARRANTY_RATELIMIT_STORAGE_URI``: ``memory://`` keeps them per process
(fine for one process and for tests); with several gunicorn workers or hosts use Redis
(``redis://127.0.0.1:6379``) so every process shares them. Windows are sliding-window
counters: constant memory per key and one storage call per limited request. A limited
request gets 429 with ``Retry-After``, through the app's error handler (JSON for the API, a
page for browsers). Endpoints without a limit pay nothing.

Staff sign-in is throttled per account *and* address, so that nobody without the password
can keep the rightful user out: each (account, address) may fail
``WARRANTY_STAFF_LOGIN_FREE_FAILURES`` times freely, then waits before its next try, a delay
doubling from ``WARRANTY_STAFF_LOGIN_BACKOFF_SECONDS`` up to
``WARRANTY_STAFF_LOGIN_BACKOFF_CAP_SECONDS``. While it waits its attempts are refused (429)
before the password is checked: it is the guessing that is slowed. Past the account's cap
(``WARRANTY_RATE_LIMIT_STAFF_LOGIN_FAILURES`` from all addresses in the window) every address
that fails waits the whole cap, but an address with no recent failure on that account still
gets its try, so the rightful user signs in from their own address. A correct password ends
its address's backoff.

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

from warranty.core.settings import Settings
from warranty.staff.accounts import login_email

# Setting name → the endpoints it limits.
GROUPS = {
    "rate_limit_offers": ["offers.get_offers", "offers.batch_offers",
                          "experiment.get_assignment", "checkout.post_purchase_offers"],
    "rate_limit_checkout": ["checkout.create_session", "checkout.create_payment_intent",
                            "checkout.create_post_purchase", "plans_add.buy"],
    "rate_limit_sign_in": ["customer.find_plans", "customer.confirm_sign_in",
                           "customer.mail_link", "contracts.plans_link",
                           "claims_api.customer_token", "staff.login"],
    "rate_limit_claims": ["claims_api.file_claim", "claims_api.add_file", "customer.new_claim",
                          "customer.resubmit", "claims_api.resubmit"],
}
# Groups whose pages are also shown with GET: only their POSTs count.
POST_ONLY = frozenset({"rate_limit_sign_in", "rate_limit_claims"})
LIMITED_ENDPOINTS = frozenset(name for names in GROUPS.values() for name in names)
STAFF_LOGIN = "staff.login"
EXTENSION = "warranty.http.ratelimit"
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
        self.login_free = settings.staff_login_free_failures
        self.login_backoff = settings.staff_login_backoff_seconds
        self.login_backoff_cap = settings.staff_login_backoff_cap_seconds

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

    def _login_keys(self) -> tuple[str, str, str]:
        """Counter keys of this attempt: its account, its (account, address), its wait."""
        email, address = _login_email(), client_key()  # IPv6: per /64
        base = f"{NAMESPACE}/staff-login"
        return (f"{base}/account/{email}", f"{base}/pair/{email}/{address}",
                f"{base}/wait/{email}/{address}")

    def _check_login_lockout(self) -> None:
        """Refuse, before the password is checked, an attempt from an (account, address)
        that is still waiting out its backoff."""
        _, _, wait = self._login_keys()
        if self.storage.get(wait) > 0:
            retry = max(1, math.ceil(self.storage.get_expiry(wait) - time.time()))
            raise TooManyRequests("too many failed sign-ins from this address for this "
                                  f"account; try again in {retry} seconds",
                                  retry_after=retry)

    def count_login_failure(self, response: Response) -> Response:
        """A wrong password (401 from staff sign-in) counts for its account and address and
        sets the address's wait; a correct one (303) ends that address's backoff."""
        if request.endpoint != STAFF_LOGIN or request.method != "POST":
            return response
        account, pair, wait = self._login_keys()
        window = self.login_failures.get_expiry()
        if response.status_code == 303:
            self.storage.clear(pair)
            self.storage.clear(wait)
        elif response.status_code == 401:
            failures = self.storage.incr(pair, window)
            total = self.storage.incr(account, window)
            delay = self.login_delay(failures, total)
            if delay:
                self.storage.clear(wait)
                # Whole seconds, rounded up: Redis keeps no expiry of a fraction (it refuses
                # it after counting, which left a wait that never ended).
                self.storage.incr(wait, math.ceil(delay))
        return response

    def login_delay(self, failures: int, account_failures: int) -> float:
        """Seconds an (account, address) with ``failures`` waits before its next try."""
        if account_failures >= self.login_failures.amount:
            return self.login_backoff_cap
        if failures < self.login_free:
            return 0
        return min(self.login_backoff_cap,
                   self.login_backoff * 2 ** (failures - self.login_free))

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
    """The account a staff sign-in attempt is for, read as sign-in reads it."""
    return login_email(request.form.get("email"))


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
