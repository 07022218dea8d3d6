"""Typed settings read from WARRANTY_* environment variables."""

from __future__ import annotations

import ipaddress
import re
from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from warranty.core.tax import TaxPolicy, default_rate, parse_rate, registration_problem
from warranty.core.text import single_line

# An origin as a browser sends it in the Origin header (lower case): scheme, host, port.
ORIGIN = re.compile(r"(https?)://([a-z0-9.-]+|\[[0-9a-f:.]+\])(:\d{1,5})?")
# Values that ship in the README, the demo or the tests: refused in production.
PLACEHOLDER_SECRETS = {
    "", "changeme", "change-me", "secret", "password", "demo-secret", "demo-token",
    "demo-password-123", "test-secret", "test-secret-key", "test-admin-token", "pk_demo",
    "pk_test_store", "pk_bench", "sk_test_demo", "sk_test_standin", "whsec_demo", "whsec_test",
    "pk_live_...", "pk_...", "sk_live_...", "sk_test_...", "whsec_...",
}
PLACEHOLDER_PREFIXES = ("demo-", "demo_", "test-", "test_", "example", "your-", "your_",
                        "changeme", "change-me", "<", "$(")
# The prefixes Stripe puts before the random part of a key.
_KEY_PREFIX = re.compile(r"^(pk|sk|rk|whsec)_((live|test)_)?")
# Production: (setting, what it is, required).
CHECKED_SECRETS = (("secret_key", "a real secret", True), ("api_token", "a real secret", True),
                   ("public_key", "the store's own key", True),
                   ("stripe_api_key", "a real Stripe key", False),
                   ("stripe_webhook_secret", "the endpoint's own signing secret", False),
                   ("store_webhook_secret", "a real secret", False),
                   ("smtp_password", "a real password", False))
MIN_SECRET_LENGTH = 16


def is_placeholder(value: str) -> bool:
    """Whether a key or secret is one the README, demo or tests ship, a template (``...``,
    ``<...>``), or characters repeated (``aaaa...``, ``abab...``) rather than random."""
    text = value.strip().lower()
    if text in PLACEHOLDER_SECRETS or text.startswith(PLACEHOLDER_PREFIXES) or "..." in text:
        return True
    body = _KEY_PREFIX.sub("", text)
    return body.startswith(PLACEHOLDER_PREFIXES) or body in ("demo", "test") or len(
        set(body)) < 6


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str) -> tuple[Network, ...]:
    """Comma-separated IPs or networks (``10.0.0.0/8, 2001:db8::1``); ValueError otherwise."""
    return tuple(ipaddress.ip_network(part.strip(), strict=False)
                 for part in text.split(",") if part.strip())


class Settings(BaseSettings):
    """Every knob of the service; see README "Configuration"."""

    model_config = SettingsConfigDict(env_prefix="WARRANTY_", extra="ignore")

    env: Literal["production", "demo", "test"] = "production"
    database_url: str = "sqlite:///warranty.db"
    secret_key: str = ""
    # Bearer token for staff and finance endpoints (more can be issued with the CLI).
    api_token: str = ""
    # The store's public key, sent by the storefront embed.
    public_key: str = "pk_demo"

    currency: str = "jpy"
    timezone: str = "Asia/Tokyo"
    offer_ttl_seconds: int = Field(default=3600, ge=120)
    # Offer tokens expire at the start of their bucket plus the TTL, so one bucket's offers
    # are identical and cached (per process, below; and by a CDN for offer_max_age_seconds).
    offer_bucket_seconds: int = Field(default=60, ge=1, le=3600)
    # Memory of each process's offers cache (LRU); 0 turns the cache off.
    offer_cache_mb: int = Field(default=256, ge=0, le=65536)
    # How often each process reads the catalog/rules revision (a change is served within it).
    offer_revision_seconds: float = Field(default=0.5, gt=0, le=1.0)
    # Cache-Control max-age of an offers answer (never past its bucket's end).
    offer_max_age_seconds: int = Field(default=10, ge=0, le=3600)
    # Checkout and offers take only products of the catalog (a sku outside it is refused):
    # true, false, or auto = on once the store has loaded any product. Off, a store without
    # a catalog sends a category and price with each product (ad-hoc products).
    catalog_only: bool | Literal["auto"] = "auto"
    # Conversion experiment: this share of visitors (by a hash of salt and visitor id) sees
    # no offers. Changing the salt starts a new experiment; see warranty/experiment/arms.py.
    holdout_share: float = Field(default=0.10, ge=0.0, le=1.0)
    experiment_salt: str = "holdout-1"
    # Event intake limits per visitor and per address, in the rate-limit storage: events per
    # second, and the burst allowed (a window of burst/rate seconds; see
    # warranty/http/ratelimit.py).
    events_rate_per_visitor: float = Field(default=5.0, gt=0)
    events_burst_per_visitor: int = Field(default=300, ge=1)
    events_rate_per_ip: float = Field(default=50.0, gt=0)
    events_burst_per_ip: int = Field(default=3000, ge=1)
    # The demo storefront at / (warranty/http/web/demo_store.py); defaults to on in demo and test.
    demo_store: bool | None = None
    # Store's gross margin on orders, for LTV (average order value × margin × ...).
    gross_margin: Decimal = Field(default=Decimal("0.3"), ge=0, le=1)

    # Consumption tax on plans (docs/domain/tax.md): inclusive = prices as shown include it,
    # exclusive = it is added at checkout. The rate is a decimal fraction ("0.10"); unset, it
    # is 10% for JPY and none otherwise. Rounded once per order and rate by tax_rounding.
    tax_mode: Literal["inclusive", "exclusive"] = "inclusive"
    tax_rate: str = ""
    tax_rounding: Literal["down", "up", "half_up", "half_down", "half_even"] = "down"
    # A qualified invoice issuer's registration number (T + 13 digits): shown with the rate
    # and the tax per rate on order confirmations, purchase mails and the order export.
    tax_registration_number: str = ""

    stripe_api_key: str = ""
    stripe_api_base: str | None = None
    stripe_webhook_secret: str = ""
    stripe_max_network_retries: int = Field(default=2, ge=0, le=10)
    stripe_timeout_seconds: float = Field(default=30.0, gt=0, le=300)

    base_url: str = "http://127.0.0.1:5000"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    smtp_timeout_seconds: float = 10.0
    mail_from: str = "warranty@example.com"

    # The provider the terms and certificates name (the store's legal entity): its legal
    # name, postal address and a contact (mail address, telephone or page), one line each.
    store_legal_name: str = Field(default="", max_length=200)
    store_address: str = Field(default="", max_length=300)
    store_contact: str = Field(default="", max_length=200)
    # Repair-or-replace-only service (the seller's own warranty, exempt from insurance
    # regulation in Japan): claims are settled by repair or replacement, never in cash.
    repair_only: bool = False

    # Cancellation: free look window and fee (minor units) for later cancellations.
    free_look_days: int = Field(default=30, ge=0)
    cancellation_fee: int = Field(default=0, ge=0)
    # How many days back a cancellation may be dated; further only by an admin with a reason.
    cancel_backdate_days: int = Field(default=30, ge=0, le=3660)

    # Outbound webhooks to the store (contract events), signed with the secret.
    store_webhook_url: str = ""
    store_webhook_secret: str = ""
    store_webhook_timeout_seconds: float = 10.0

    # Worker retries (mail, outbound webhooks, refunds): exponential backoff with a cap.
    retry_base_seconds: float = Field(default=30.0, ge=0)
    retry_cap_seconds: float = Field(default=6 * 3600.0, ge=0)
    mail_max_attempts: int = Field(default=10, ge=1)
    webhook_max_attempts: int = Field(default=12, ge=1)
    worker_interval_seconds: float = Field(default=2.0, gt=0)

    # Our reverse proxies (comma-separated IPs or networks): X-Forwarded-For and -Proto are
    # read only from them, and the client (rate limits, /metrics allowlist) is the right-most
    # forwarded address that is not one of them (warranty/http/proxies.py). Empty: the header is
    # ignored and the connecting peer is the client.
    trusted_proxies: str = ""
    # Replaced by trusted_proxies (it trusted the last hops from anyone): refused when set.
    proxy_hops: int = 0
    # Rate limits per client address (see warranty/http/ratelimit.py); limits syntax "N/minute".
    # memory:// counts per process; use redis://host:6379 with several processes.
    rate_limits_enabled: bool = True
    ratelimit_storage_uri: str = "memory://"
    rate_limit_offers: str = "600/minute"
    rate_limit_checkout: str = "60/minute"
    rate_limit_sign_in: str = "10/minute"
    rate_limit_claims: str = "30/hour"
    # Staff sign-in throttling (warranty/http/ratelimit.py), per account and address: this many
    # wrong passwords pass freely, then each further attempt waits a delay doubling from
    # the backoff, up to the cap. Past the account's cap of failures from all addresses in
    # the window, an address that failed waits the cap; one that did not still gets in.
    rate_limit_staff_login_failures: str = "20 per 15 minutes"
    staff_login_free_failures: int = Field(default=3, ge=0, le=100)
    staff_login_backoff_seconds: float = Field(default=2.0, gt=0)
    staff_login_backoff_cap_seconds: float = Field(default=900.0, gt=0)

    # A staff-page sign-in lasts this long (then sign in again).
    staff_session_hours: float = Field(default=12.0, gt=0)
    # A customer's sign-in (mailed link, or email and order reference) lasts this long.
    customer_session_hours: float = Field(default=24.0, gt=0)
    # A customer token minted for a store backend (POST /api/v1/customer-tokens) works this
    # long; it can be revoked earlier (warranty revoke-customer-sessions).
    customer_token_minutes: float = Field(default=60.0, gt=0, le=24 * 60)

    # Store origins whose pages may call the storefront endpoints (CORS, warranty/http/cors.py):
    # comma-separated exact origins such as "https://shop.example"; empty = same origin only.
    allowed_origins: str = ""

    # /metrics: callers from these comma-separated IPs/networks need no bearer token.
    metrics_allow: str = ""

    # Claim photos and PDFs live here, outside the web root, under random names.
    upload_dir: str = "var/uploads"
    # Claims whose estimate is below this (minor units) are approved without review; 0 = off.
    auto_approve_under: int = Field(default=0, ge=0)
    # A claim for an incident inside the term may be filed up to this many days after the
    # term's last day (the plan may have expired meanwhile); later filings are denied.
    claim_filing_days_after_term: int = Field(default=90, ge=0, le=3650)

    @field_validator("upload_dir")
    @classmethod
    def _absolute_upload_dir(cls, value: str) -> str:
        """Resolved once, against the directory the service starts in: a relative folder
        would otherwise mean one thing to the code that stores files and another to the one
        that sends them (Flask resolves against the package)."""
        return str(Path(value).expanduser().resolve())

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_networks(cls, value: str) -> str:
        """IPs or networks, such as 10.0.0.5, 10.1.0.0/16, fd00::/8."""
        try:
            return ",".join(str(net) for net in parse_networks(value))
        except ValueError:
            raise ValueError("list IP addresses or networks, comma-separated, such as "
                             "10.0.0.5,10.1.0.0/16,fd00::/8") from None

    @field_validator("rate_limit_offers", "rate_limit_checkout", "rate_limit_sign_in",
                     "rate_limit_claims", "rate_limit_staff_login_failures")
    @classmethod
    def _rate(cls, value: str) -> str:
        """A limit in the limits library's syntax, read at start rather than at the first
        request (whose error would print the value)."""
        from limits import parse

        try:
            parse(value)
        except ValueError:
            raise ValueError("write a rate such as 10/minute or 20 per 15 minutes") from None
        return value

    @field_validator("ratelimit_storage_uri")
    @classmethod
    def _storage_uri(cls, value: str) -> str:
        """memory:// or a storage the limits library knows (redis://, rediss://, ...): checked
        here, so that a mistyped URI, which holds the storage's password, is never printed."""
        from limits.storage import SCHEMES

        scheme, separator, _ = value.partition("://")
        if not separator or scheme.lower() not in SCHEMES or scheme.lower().startswith("async"):
            raise ValueError("use memory:// or redis://[:password@]host:6379[/db] (or another "
                             "storage of the limits library)")
        return value

    @field_validator("proxy_hops")
    @classmethod
    def _no_proxy_hops(cls, value: int) -> int:
        """The old setting trusted X-Forwarded-For from anyone: say what replaced it."""
        if value:
            raise ValueError("WARRANTY_PROXY_HOPS is gone: list your reverse proxies' "
                             "addresses in WARRANTY_TRUSTED_PROXIES instead")
        return value

    @field_validator("tax_rate")
    @classmethod
    def _tax_rate(cls, value: str) -> str:
        """Empty (the currency's default) or a decimal fraction such as 0.10 or 0.08875."""
        return str(parse_rate(value)) if value.strip() else ""

    @field_validator("tax_registration_number")
    @classmethod
    def _registration_number(cls, value: str) -> str:
        """T and 13 digits with a valid check digit (or empty: the store is not registered)."""
        number = value.strip().upper()
        if number:
            problem = registration_problem(number)
            if problem:
                raise ValueError(problem)
        return number

    @field_validator("store_legal_name", "store_address", "store_contact")
    @classmethod
    def _one_line(cls, value: str) -> str:
        """Shown on pages, in mails and PDFs: one line of text, no control characters."""
        return single_line(value.strip())

    @field_validator("currency")
    @classmethod
    def _lower_currency(cls, value: str) -> str:
        """Stripe names currencies in lower case."""
        return value.strip().lower()

    @field_validator("allowed_origins")
    @classmethod
    def _exact_origins(cls, value: str) -> str:
        """Each entry an origin as browsers send it: scheme://host[:port], nothing more."""
        origins = []
        entries = filter(None, (part.strip() for part in value.split(",")))
        for position, entry in enumerate(entries, start=1):
            match = ORIGIN.fullmatch(entry.rstrip("/").lower())
            if match is None or int((match.group(3) or ":0")[1:]) > 65535:
                raise ValueError(f"entry {position} of WARRANTY_ALLOWED_ORIGINS is not an "
                                 "origin like https://shop.example or http://127.0.0.1:8000 "
                                 "(no path, no *)")
            scheme, host, port = match.groups()
            default = {"http": ":80", "https": ":443"}[scheme]
            origins.append(f"{scheme}://{host}{'' if port == default else port or ''}")
        return ",".join(origins)

    @model_validator(mode="after")
    def _bucket_within_ttl(self) -> Settings:
        """A token lives at least its TTL less one bucket: keep that at least one bucket."""
        if self.offer_bucket_seconds * 2 > self.offer_ttl_seconds:
            raise ValueError("WARRANTY_OFFER_BUCKET_SECONDS must be at most half of "
                             "WARRANTY_OFFER_TTL_SECONDS")
        return self

    @model_validator(mode="after")
    def _default_demo_store(self) -> Settings:
        """The demo store is served in demo and test unless set explicitly."""
        if self.demo_store is None:
            self.demo_store = self.env in ("demo", "test")
        return self

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> Settings:
        """In production every key and secret is the store's own: never one the README, the
        demo or the tests ship. Messages name the setting, never its value."""
        problems = []
        if self.env == "production":
            for name, what, required in CHECKED_SECRETS:
                value = getattr(self, name)
                if not value and not required:
                    continue
                if name in ("secret_key", "api_token") and len(value) < MIN_SECRET_LENGTH:
                    problems.append(f"WARRANTY_{name.upper()} must be set to {what} "
                                    f"({MIN_SECRET_LENGTH}+ characters) in production")
                elif is_placeholder(value):
                    problems.append(f"WARRANTY_{name.upper()} is a placeholder (from the "
                                    f"README, the demo or the tests); set {what} in "
                                    "production")
        if self.store_webhook_url and len(self.store_webhook_secret) < MIN_SECRET_LENGTH:
            problems.append("WARRANTY_STORE_WEBHOOK_SECRET must be set (16+ characters) "
                            "when WARRANTY_STORE_WEBHOOK_URL is")
        if problems:
            raise ValueError("\n".join(problems))
        return self

    @property
    def tax(self) -> TaxPolicy:
        """The store's tax setting (warranty.core.tax.TaxPolicy)."""
        rate = Decimal(self.tax_rate) if self.tax_rate else default_rate(self.currency)
        return TaxPolicy(mode=self.tax_mode, rate=rate, rounding=self.tax_rounding,
                         currency=self.currency,
                         registration_number=self.tax_registration_number)

    @property
    def is_sqlite(self) -> bool:
        """True when the database is a SQLite file or memory."""
        return self.database_url.startswith("sqlite")


def describe_problems(exc: Exception) -> str:
    """What is wrong with the settings, one line per problem naming the variable, never its
    value (pydantic's own text repeats the input, secrets included). Every entry point
    prints this: the command line, the WSGI app under gunicorn, the worker."""
    lines = ["invalid settings (WARRANTY_* environment variables):"]
    if isinstance(exc, ValidationError):
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        inputs = [str(err.get("input", "")) for err in exc.errors(include_url=False)]
        for err, given in zip(errors, inputs, strict=True):
            message = err["msg"].removeprefix("Value error, ")
            if len(given) >= 3:  # our own messages never quote a value; make sure of it
                message = message.replace(given, "(value not shown)")
            where = ".".join(str(part) for part in err["loc"])
            for part in message.splitlines():
                lines.append(f"  WARRANTY_{where.upper()}: {part}" if where else f"  {part}")
    else:  # pydantic-settings' own errors name the field and the source, not the value
        lines.append(f"  {str(exc).splitlines()[0]}")
    return "\n".join(lines)


def load_settings() -> Settings:
    """Settings from the environment; SettingsProblem with ``describe_problems`` if wrong."""
    try:
        return Settings()
    except (ValidationError, SettingsError) as exc:
        raise SettingsProblem(describe_problems(exc)) from None


class SettingsProblem(Exception):
    """Settings that cannot start the service; the message names the variables only."""
