"""CORS for the storefront endpoints that embed.js calls from the store's own pages.

A store loads ``<script src="https://warranty.example/embed.js">`` on its own domain; the
embed then calls this service's API from the store's origin. Browsers let it read the
answers only for origins listed in ``WARRANTY_ALLOWED_ORIGINS`` (exact origins; empty = same
origin only), and only on the storefront endpoints below: staff, finance, admin and customer
endpoints never answer another origin. No credentials are allowed (the embed sends none:
the public key travels in the query string).

Preflights (OPTIONS with ``Access-Control-Request-Method``) are answered here, before the
rate limiter, so they are never counted against the storefront's limits.
"""

from __future__ import annotations

from flask import Flask, Response, request

from warranty.core.errors import Forbidden

# The storefront endpoints the embed calls (and a store's own script may call).
STOREFRONT_ENDPOINTS = frozenset({
    "offers.get_offers", "offers.batch_offers",
    "experiment.get_assignment", "experiment.post_events",
    "checkout.create_session", "checkout.create_payment_intent",
    "checkout.post_purchase_offers", "checkout.create_post_purchase",
})
ALLOWED_HEADERS = "Content-Type, X-Warranty-Key"
PREFLIGHT_MAX_AGE_SECONDS = 600  # browsers cache a preflight this long (Chromium caps 7200)


class OriginNotAllowed(Forbidden):
    """A preflight from an origin that is not in WARRANTY_ALLOWED_ORIGINS."""

    code = "origin_not_allowed"


def install(app: Flask, allowed_origins: str) -> None:
    """Answer preflights and add CORS headers on the storefront endpoints of ``app``.

    Call before the rate limiter is installed: its check runs after ours, so an answered
    preflight never reaches it.
    """
    allowed = frozenset(origin for origin in allowed_origins.split(",") if origin)

    @app.before_request
    def _preflight() -> Response | None:
        if request.method != "OPTIONS" or request.endpoint not in STOREFRONT_ENDPOINTS or \
                "Access-Control-Request-Method" not in request.headers:
            return None
        if request.headers.get("Origin") not in allowed:
            raise OriginNotAllowed(f"origin {request.headers.get('Origin')!r} may not call "
                                   "this service; add it to WARRANTY_ALLOWED_ORIGINS")
        response = Response(status=204)
        methods = sorted(request.url_rule.methods - {"HEAD", "OPTIONS"})
        response.headers["Access-Control-Allow-Methods"] = ", ".join(methods)
        response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
        response.headers["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE_SECONDS)
        return response

    @app.after_request
    def _allow_origin(response: Response) -> Response:
        if request.endpoint not in STOREFRONT_ENDPOINTS:
            return response
        # The answer differs by origin: caches must key on it.
        vary = response.headers.get("Vary")
        if vary is None:
            response.headers["Vary"] = "Origin"
        elif "origin" not in {part.strip().lower() for part in vary.split(",")}:
            response.vary.add("Origin")
        origin = request.headers.get("Origin")
        if origin in allowed:
            response.headers["Access-Control-Allow-Origin"] = origin
        return response
