"""Rate limits on the public endpoints (Flask-Limiter), counted per client address.

Counts live in ``WARRANTY_RATELIMIT_STORAGE_URI``: ``memory://`` keeps them per process
(fine for one process and for tests); with several gunicorn workers or hosts use Redis
(``redis://127.0.0.1:6379``) so every process shares them. A limited request gets 429 with
``Retry-After``, through the app's error handler (JSON for the API, a page for browsers).

Staff sign-in has a second limit keyed by the email typed in: after
``WARRANTY_RATE_LIMIT_STAFF_LOGIN_FAILURES`` wrong passwords that account's sign-in is locked
for the window, whatever address the attempts come from.
"""

from __future__ import annotations

from flask import Flask, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from warranty.settings import Settings

# Setting name → the endpoints (and methods) it limits.
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
LIMITED_ENDPOINTS = frozenset(name for names in GROUPS.values() for name in names)


def _login_email() -> str:
    """The account a staff sign-in attempt is for."""
    return "staff-login:" + (request.form.get("email") or "").strip().lower()[:320]


def install(app: Flask, settings: Settings) -> Limiter | None:
    """Attach this app's limiter (its own counters) and the limits of every group."""
    if not settings.rate_limits_enabled:
        return None
    limiter = Limiter(get_remote_address, app=app, storage_uri=settings.ratelimit_storage_uri,
                      headers_enabled=True, strategy="moving-window",
                      key_prefix="warranty")
    for setting, endpoints in GROUPS.items():
        for endpoint in endpoints:
            if endpoint in app.view_functions:
                posts = setting in ("rate_limit_sign_in", "rate_limit_claims")
                _wrap(app, endpoint, limiter.limit(getattr(settings, setting),
                                                   methods=["POST"] if posts else None))
    _wrap(app, "staff.login", limiter.limit(
        settings.rate_limit_staff_login_failures, key_func=_login_email, methods=["POST"],
        deduct_when=lambda response: response.status_code == 401,
        scope="staff-login-failures"))
    return limiter


def _wrap(app: Flask, endpoint: str, decorator) -> None:
    """Limit one view of this app only (the view functions are shared between apps)."""
    app.view_functions[endpoint] = decorator(app.view_functions[endpoint])
