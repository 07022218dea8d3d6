"""What every HTML page shares: sign-in sessions, CSRF tokens, the page language, security
headers, claim file and certificate downloads, uploads.

Signing in is server-side (warranty.auth.sessions): customer pages and staff pages each have
a cookie of their own (``wty_customer``, ``wty_staff`` on ``/staff`` only) holding an opaque
random id. Flask's signed cookie keeps only what proves nothing: the language, the CSRF
token of a visitor not signed in, the demo store's cart. A signed-in page's CSRF token is
derived from its session's id, so it changes at every sign-in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import timedelta
from functools import partial

from flask import Blueprint, Response, current_app, g, request, send_file, session

from warranty.auth import sessions as auth_sessions
from warranty.auth.models import AuthSession
from warranty.claims import attachments as uploads
from warranty.claims.models import ClaimFile
from warranty.contracts import certificate
from warranty.contracts.models import Contract
from warranty.core import i18n, money
from warranty.core.dates import store_today, utcnow
from warranty.core.errors import DomainError, NotFound
from warranty.core.settings import Settings
from warranty.db.engine import get_write_engine
from warranty.http.babel import page_language
from warranty.http.errors import refuse_unstorable
from warranty.http.session import get_session
from warranty.pricing import terms

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
# Pages load nothing from elsewhere and run no script at all.
CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
       "base-uri 'none'; frame-ancestors 'none'")


class CsrfFailed(DomainError):
    """A form posted without the token of this browser's session."""

    code = "csrf_failed"


def settings() -> Settings:
    """The app's settings."""
    return current_app.config["SETTINGS"]


def today():
    """Today in the store's time zone."""
    return store_today(settings().timezone)


# kind of session -> (cookie name, cookie path)
COOKIES = {"customer": ("wty_customer", "/"), "staff": ("wty_staff", "/staff")}


def realm() -> str:
    """Whose pages these are: ``staff`` under /staff, ``customer`` everywhere else."""
    path = request.path
    return "staff" if path == "/staff" or path.startswith("/staff/") else "customer"


def _auth_cache() -> dict:
    """This request's sessions by kind: (cookie id, row) or (None, None)."""
    if "auth" not in g:
        g.auth = {}
    return g.auth


def signed_in(kind: str) -> AuthSession | None:
    """The live session of ``kind`` this browser's cookie names, if any."""
    cache = _auth_cache()
    if kind not in cache:
        raw = request.cookies.get(COOKIES[kind][0])
        row = auth_sessions.find(get_session(), raw, kind) if raw else None
        cache[kind] = (raw, row) if row is not None else (None, None)
        if row is not None and auth_sessions.needs_touch(row):
            _touch(row)
    return cache[kind][1]


def _touch(row: AuthSession) -> None:
    """Note the session's use: in the request's own transaction when it writes, else in a
    short one of its own (a page that only reads commits nothing)."""
    if request.method in UNSAFE:
        row.last_seen_at = utcnow()
        get_session().add(row)
        return
    with get_write_engine(settings().database_url).begin() as conn:
        auth_sessions.touch(conn, row.id)


def sign_in(kind: str, *, subject: str, scope: str, lifetime: timedelta, created_by: str,
            staff_user_id: int | None = None, order_ref: str | None = None) -> AuthSession:
    """Start a new session of ``kind`` for this browser (a new id: no fixation), ending the
    one it had; the caller commits. The cookie is set on the response."""
    db = get_session()
    previous = signed_in(kind)
    if previous is not None:
        auth_sessions.end(session=db, row=previous)
    auth_sessions.prune(session=db)
    raw, row = auth_sessions.start(session=db, kind=kind, subject=subject, scope=scope,
                                   lifetime=lifetime, created_by=created_by,
                                   staff_user_id=staff_user_id, order_ref=order_ref)
    _auth_cache()[kind] = (raw, row)
    g.setdefault("cookie_changes", {})[kind] = (raw, row.expires_at)
    session.pop("csrf", None)  # the form token of the visitor before sign-in is not reused
    return row


def sign_out(kind: str) -> None:
    """End this browser's session of ``kind`` on the server and drop its cookie."""
    row = signed_in(kind)
    if row is not None:
        auth_sessions.end(session=get_session(), row=row)
    _auth_cache()[kind] = (None, None)
    g.setdefault("cookie_changes", {})[kind] = None


def _apply_cookies(response: Response) -> Response:
    """Set or drop the session cookies this request changed."""
    secure = settings().base_url.startswith("https://")
    for kind, change in g.get("cookie_changes", {}).items():
        name, path = COOKIES[kind]
        if change is None:
            response.delete_cookie(name, path=path, secure=secure, httponly=True,
                                   samesite="Lax")
        else:
            raw, expires = change
            response.set_cookie(name, raw, expires=expires, path=path, secure=secure,
                                httponly=True, samesite="Lax")
    return response


def csrf_token() -> str:
    """The CSRF token of this page's session: derived from the signed-in session's id, or
    a random one kept in the signed cookie for a visitor not signed in."""
    kind = realm()
    signed_in(kind)
    raw = _auth_cache()[kind][0]
    if raw is not None:
        digest = hmac.new(settings().secret_key.encode(), f"csrf:{kind}:{raw}".encode(),
                          hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    token = session.get("csrf")
    if not isinstance(token, str) or len(token) < 32:
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def check_csrf() -> None:
    """Refuse an unsafe request whose form token does not match the session's."""
    if request.method not in UNSAFE:
        return
    expected = csrf_token()
    given = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token") or ""
    if not hmac.compare_digest(expected.encode(), given.encode()):
        raise CsrfFailed("this form has expired; reload the page and try again")


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
                "money": money.format_amount, "terms_path": terms.path,
                "customer_session": lambda: (signed_in("customer") if realm() == "customer"
                                             else None)}

    @bp.after_app_request
    def _headers(response: Response) -> Response:
        _apply_cookies(response)
        # Every response, JSON included: no MIME sniffing, HTTPS only once served over it.
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        if settings().base_url.startswith("https://"):
            response.headers.setdefault("Strict-Transport-Security",
                                        "max-age=31536000; includeSubDomains")
        if _credentialed():
            # Someone's own data: no cache may keep it for the next caller. (Caches know
            # Authorization, not X-Customer-Token, and nothing of our cookies.)
            response.headers.setdefault("Cache-Control", "private, no-store")
        if response.mimetype == "text/html":
            response.headers.setdefault("Content-Security-Policy", CSP)
            response.headers.setdefault("X-Frame-Options", "DENY")
            # Mailed links carry a token in the URL: never leak it to another site.
            response.headers.setdefault("Referrer-Policy", "no-referrer")
            response.headers.setdefault("Cache-Control", "no-store")
        return response


def _credentialed() -> bool:
    """Whether the request carried credentials: a bearer or customer token, a session."""
    return bool(request.headers.get("Authorization") or request.headers.get("X-Customer-Token")
                or any(request.cookies.get(name) for name, _ in COOKIES.values()))


def send_certificate(db, contract: Contract, lang: str) -> Response:
    """A contract's certificate as a PDF download, never cached (it names the customer)."""
    filename, data = certificate.certificate_pdf(session=db, settings=settings(),
                                                 contract=contract, lang=i18n.pick(lang))
    return Response(data, mimetype="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="{filename}"',
        "Cache-Control": "private, no-store"})


def send_claim_file(row: ClaimFile) -> Response:
    """A claim attachment as a download, never rendered inline by the browser."""
    path = uploads.path_of(settings().upload_dir, row.stored_name)
    if not path.is_file():
        raise NotFound("this file is no longer stored", code="file_missing")
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
