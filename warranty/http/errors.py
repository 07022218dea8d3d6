"""One place that turns every error into JSON (API) or a readable page (HTML)."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import Flask, jsonify, make_response, render_template, request
from werkzeug.exceptions import HTTPException

from warranty.core import errors
from warranty.core.errors import DomainError
from warranty.core.text import one_line, unstorable_text

log = logging.getLogger(__name__)
# PostgreSQL's answers when two transactions collided and one was rolled back: a
# serialization failure, a deadlock. Trying again works; nothing was changed.
COLLISIONS = {"40001", "40P01"}


class UnsupportedMediaType(DomainError):
    """A request body in a content type the endpoint does not read."""

    code = "unsupported_media_type"


class RateLimited(DomainError):
    """Too many requests from one caller; the answer says when to try again."""

    code = "rate_limited"


# The HTTP status of each kind of domain error: the first class in the error's MRO that is
# listed here wins, so a module's own error (claims' UploadRefused is a ValidationFailed)
# answers as its kind does, and any other DomainError is a 400.
STATUS: dict[type[DomainError], int] = {
    errors.OfferStale: 409,  # a valid offer overtaken by a price or rules change: ask again
    errors.ValidationFailed: 422,
    errors.NotFound: 404,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.Conflict: 409,
    errors.Unavailable: 503,
    errors.PaymentProviderError: 502,
    UnsupportedMediaType: 415,
    RateLimited: 429,
    DomainError: 400,
}


def status_of(exc: DomainError) -> int:
    """The HTTP status that answers ``exc``."""
    return next(STATUS[cls] for cls in type(exc).__mro__ if cls in STATUS)


def error_body(exc: DomainError) -> dict:
    """The JSON body: ``{"error": {"code", "message"[, "details"]}}``."""
    return json_error(exc.code, exc.message, exc.details)


def json_error(code: str, message: str, details=None) -> dict:
    """The API's error shape for any error, domain or not."""
    error: dict = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return {"error": error}


def _size(count: int | None) -> str:
    """``64 KB``, ``52 MB``."""
    if count is None:
        return "size"
    return f"{count // (1024 * 1024)} MB" if count >= 1024 * 1024 else f"{count // 1024} KB"


def _request_line() -> str:
    """``GET /api/v1/claims/...`` for the log: the path is the caller's text, so its line
    breaks and other controls become spaces (no forged log lines)."""
    return f"{request.method} {one_line(request.path)}"


def wants_json() -> bool:
    """API, webhooks and JSON clients get JSON; browsers on pages get HTML."""
    path = request.path
    if path.startswith(("/api/", "/openapi.json", "/stripe/", "/healthz", "/livez", "/metrics")):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def _respond(status: int, code: str, message: str, details=None):
    """Render an error for the caller."""
    if wants_json():
        return jsonify(json_error(code, message, details)), status
    return render_template("error.html", status=status, code=code, message=message), status


def refuse_unstorable(fields: dict):
    """A 400 response when query or form ``fields`` hold text no database can store."""
    at = unstorable_text(fields)
    if at:
        return _respond(400, "invalid_text", f"invalid text in {at.split('.')[0]}: "
                        "NUL characters are not allowed")
    return None


def register(app: Flask) -> None:
    """Install the handlers on ``app``."""

    @app.before_request
    def refuse_unstorable_query():
        # Query strings and path ids (/claims/%00) of every page and endpoint: a NUL byte
        # would reach PostgreSQL (which refuses it) from any text field or id. Bodies are
        # screened where they are read: JSON by the API (spec.parse_body), forms by the
        # pages that take them (web.pages.protect), so no URL parses a body it does not use.
        view_args = request.view_args
        if view_args and (refused := refuse_unstorable(view_args)):
            return refused
        query = request.environ.get("QUERY_STRING", "")
        if query.isascii() and "%" not in query and "\x00" not in query:
            return None  # plain ASCII without escapes decodes to no NUL, no lone surrogate
        return refuse_unstorable(request.args.to_dict(flat=False))

    @app.errorhandler(DomainError)
    def domain_error(exc: DomainError):
        return _respond(status_of(exc), exc.code, exc.message, exc.details)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        code = (exc.name or "error").lower().replace(" ", "_").replace("'", "")
        if exc.code == 413:
            limit = request.max_content_length
            body, status = _respond(413, code, f"the request body is larger than the "
                                    f"{_size(limit)} this endpoint accepts",
                                    {"limit_bytes": limit})
            return body, status
        body, status = _respond(exc.code or 500, code, exc.description or exc.name)
        # The exception's own headers that say how to go on (Retry-After, Allow, ...).
        headers = [(k, v) for k, v in exc.get_headers() if k.lower() != "content-type"]
        return body, status, headers

    @app.errorhandler(sa.exc.OperationalError)
    @app.errorhandler(sa.exc.InterfaceError)
    def database_unavailable(exc: sa.exc.DBAPIError):
        if getattr(exc.orig, "sqlstate", None) in COLLISIONS:
            log.warning("concurrent change on %s: %s", _request_line(),
                        str(exc.orig).splitlines()[0])
            return _respond(409, "concurrent_change", "another request changed the same data "
                            "at the same moment; nothing was changed, reload and try again")
        # Down, restarting, unreachable (or SQLite's lock held too long): worth a retry.
        log.warning("database unavailable on %s: %s", _request_line(),
                    str(exc.orig).splitlines()[0] if exc.orig else exc)
        response = make_response(_respond(503, "database_unavailable",
                                          "the database is unavailable; try again shortly"))
        response.headers["Retry-After"] = "5"
        return response

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unhandled error on %s", _request_line())
        return _respond(500, "internal_error", "something went wrong on our side; "
                        "nothing was changed")
