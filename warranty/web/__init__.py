"""HTML pages (customer, staff, embed, demo store) and what they share: CSRF tokens, the
page language, security headers, downloads."""

from __future__ import annotations

import hmac
import secrets
from functools import partial

from flask import Blueprint, Response, current_app, g, request, send_file, session

from warranty import i18n, money, uploads
from warranty.dates import store_today
from warranty.errors import DomainError
from warranty.errors_http import refuse_unstorable
from warranty.models import ClaimFile
from warranty.settings import Settings

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
# Pages load nothing from elsewhere and run no script at all.
CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
       "base-uri 'none'; frame-ancestors 'none'")


class CsrfFailed(DomainError):
    """A form posted without the token of this browser's session."""

    code = "csrf_failed"
    status = 400


def settings() -> Settings:
    """The app's settings."""
    return current_app.config["SETTINGS"]


def today():
    """Today in the store's time zone."""
    return store_today(settings().timezone)


def csrf_token() -> str:
    """This browser session's CSRF token, made on first use."""
    token = session.get("csrf")
    if not isinstance(token, str) or len(token) < 32:
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def check_csrf() -> None:
    """Refuse an unsafe request whose form token does not match the session's."""
    if request.method not in UNSAFE:
        return
    expected = session.get("csrf")
    given = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token") or ""
    if not isinstance(expected, str) or not hmac.compare_digest(expected.encode(),
                                                                given.encode()):
        raise CsrfFailed("this form has expired; reload the page and try again")


def choose_language() -> str:
    """?lang= (remembered in the session), else the remembered one, else Accept-Language."""
    asked = request.args.get("lang")
    if asked in i18n.LANGUAGES:
        session["lang"] = asked
        return asked
    remembered = session.get("lang")
    if remembered in i18n.LANGUAGES:
        return remembered
    return request.accept_languages.best_match(i18n.LANGUAGES, default=i18n.DEFAULT)


def page_language() -> str:
    """The language of the page being rendered."""
    if "lang" not in g:
        g.lang = choose_language()
    return g.lang


def protect(bp: Blueprint) -> None:
    """Give a page blueprint CSRF checks and the page language (JSON APIs never get this)."""

    @bp.before_request
    def _before():
        page_language()
        if request.method in UNSAFE:
            # The pages are what takes forms: screened here, where they are read.
            refused = refuse_unstorable(request.form.to_dict(flat=False))
            if refused is not None:
                return refused
        check_csrf()
        return None


def install(bp: Blueprint) -> None:
    """App-wide template helpers and headers; called once, from the customer blueprint."""

    @bp.app_context_processor
    def _helpers() -> dict:
        lang = page_language()
        return {"lang": lang, "t": partial(i18n.t, lang), "csrf_token": csrf_token,
                "other_languages": [code for code in i18n.LANGUAGES if code != lang],
                "money": money.format_amount}

    @bp.after_app_request
    def _headers(response: Response) -> Response:
        # Every response, JSON included: no MIME sniffing, HTTPS only once served over it.
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        if settings().base_url.startswith("https://"):
            response.headers.setdefault("Strict-Transport-Security",
                                        "max-age=31536000; includeSubDomains")
        if response.mimetype == "text/html":
            response.headers.setdefault("Content-Security-Policy", CSP)
            response.headers.setdefault("X-Frame-Options", "DENY")
            # Mailed links carry a token in the URL: never leak it to another site.
            response.headers.setdefault("Referrer-Policy", "no-referrer")
            response.headers.setdefault("Cache-Control", "no-store")
        return response


def send_claim_file(row: ClaimFile) -> Response:
    """A claim attachment as a download, never rendered inline by the browser."""
    path = uploads.path_of(settings().upload_dir, row.stored_name)
    if not path.is_file():
        raise DomainError("this file is no longer stored", code="file_missing", status=404)
    response = send_file(path, mimetype=row.content_type, as_attachment=True,
                         download_name=row.original_name, max_age=0)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


def read_uploads(field: str = "files") -> list[uploads.Upload]:
    """The files of a multipart form, each read up to one byte over the limit."""
    received = []
    for item in request.files.getlist(field):
        if not item or (not item.filename and not item.content_length):
            continue
        data = item.stream.read(uploads.MAX_FILE_BYTES + 1)
        if not item.filename and not data:
            continue  # the browser's empty file input
        received.append(uploads.Upload(filename=item.filename or "file", data=data))
    return received
