"""How much of a request the service reads: body size per endpoint, and JSON nesting.

Every endpoint reads at most ``DEFAULT_BODY_BYTES``; only the ones that take bulk data or files
read more (``BODY_LIMITS``). The limit is set on the request before anything touches its body,
so a larger body is refused with 413 from its Content-Length, or as soon as a chunked one
passes the limit: never read whole first. Forms are parsed only by the pages that take them
(``warranty.http.web.pages.protect``), never by the app for every URL.
"""

from __future__ import annotations

from flask import Flask, request

KB, MB = 1024, 1024 * 1024
DEFAULT_BODY_BYTES = 64 * KB
# Endpoint -> the body it may send, in bytes.
BODY_LIMITS = {
    "catalog.upsert": 64 * MB,  # up to 10,000 products
    "orders_import.import_orders": 64 * MB,  # up to 10,000 orders
    "claims_api.add_file": 16 * MB,  # one 10 MB file as base64 in JSON
    "customer.new_claim": 52 * MB,  # a claim form with up to five 10 MB files
    "customer.resubmit": 52 * MB,
    "claims_api.file_claim": 256 * KB,  # a 5,000-character description, \u-escaped
    "claims_api.resubmit": 256 * KB,
    "rules.upload": 1 * MB,  # a rule document
    "stripe.receive": 1 * MB,  # a Stripe event
}
# Deeper JSON than any request needs is refused (400) before it is validated.
MAX_JSON_DEPTH = 32


def body_limit(endpoint: str | None) -> int:
    """The largest body ``endpoint`` accepts (the default for unknown URLs)."""
    return BODY_LIMITS.get(endpoint or "", DEFAULT_BODY_BYTES)


def _limit_body() -> None:
    """Set this request's body limit from its endpoint, before anything reads the body."""
    request.max_content_length = body_limit(request.endpoint)


def json_depth(data: object, stop: int = MAX_JSON_DEPTH) -> int:
    """How deeply ``data`` nests lists and objects (counting stops past ``stop``); iterative,
    so no nesting can exhaust the stack."""
    deepest, pending = 0, [(data, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > stop:
            return deepest
        pending.extend((child, depth + 1) for child in children)
    return deepest


def install(app: Flask) -> None:
    """Limit every request's body (first of the app's before-request functions)."""
    app.config["MAX_CONTENT_LENGTH"] = DEFAULT_BODY_BYTES
    app.before_request_funcs.setdefault(None, []).insert(0, _limit_body)
