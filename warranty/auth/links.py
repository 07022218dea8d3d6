"""Signed, expiring links mailed to customers.

A plans link proves the mailbox: opening it (a GET, which mail scanners and link previews
also make) only shows a confirmation page; the customer's POST from that page signs in
and spends the link's ``jti`` (warranty.auth.sessions.spend_link), so each link signs in
once. Other links (the NPS question, a post-purchase offer) are capabilities for one action
and sign nobody in.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from urllib.parse import urlencode

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from warranty.core.errors import Forbidden
from warranty.core.settings import Settings

MAX_AGE_SECONDS = 7 * 24 * 3600  # a mailed link works for a week
SIGN_IN_PATH = "/my/sign-in"


class InvalidLink(Forbidden):
    """A customer link that is forged, altered or expired."""

    code = "invalid_link"


def _serializer(settings: Settings, purpose: str) -> URLSafeTimedSerializer:
    """HMAC-SHA256 signer with one salt per kind of link."""
    return URLSafeTimedSerializer(settings.secret_key, salt=f"warranty.link.{purpose}",
                                  signer_kwargs={"digest_method": hashlib.sha256})


def make_token(settings: Settings, purpose: str, data: dict) -> str:
    """A signed token carrying ``data`` for one purpose (``plans``, ``post_purchase``, ...)."""
    return _serializer(settings, purpose).dumps(data)


def read_token(settings: Settings, purpose: str, token: str,
               max_age: int = MAX_AGE_SECONDS) -> dict:
    """The data of a valid token, or InvalidLink."""
    return _read(settings, purpose, token, max_age)[0]


def _read(settings: Settings, purpose: str, token: str, max_age: int) -> tuple[dict, int]:
    """The data of a valid token and when it was signed (Unix time, whole seconds)."""
    if not token or len(token) > 4000:
        raise InvalidLink("this link is incomplete; ask for a new one")
    try:
        data, signed_at = _serializer(settings, purpose).loads(token, max_age=max_age,
                                                               return_timestamp=True)
    except SignatureExpired:
        raise InvalidLink("this link has expired; ask for a new one",
                          code="link_expired") from None
    except BadSignature:
        raise InvalidLink("this link is not valid; ask for a new one") from None
    if not isinstance(data, dict):
        raise InvalidLink("this link is not valid; ask for a new one")
    return data, int(signed_at.timestamp())


@dataclass(frozen=True)
class PlansLink:
    """What a plans link carries: whose plans, its one-time id, where it leads, and when it
    was made (Unix time, whole seconds)."""

    email: str
    jti: str
    next: str | None
    issued_at: int = 0


def safe_next(target: object) -> str | None:
    """Only our own claim pages are followed after a link sign-in (no open redirect)."""
    if (isinstance(target, str) and target.startswith("/my/claims/") and "//" not in target
            and "\\" not in target and len(target) < 200):
        return target
    return None


def plans_link(settings: Settings, email: str, *, next: str | None = None,
               lang: str | None = None) -> str:
    """A mailed sign-in link: ``{base}/my/sign-in?token=...`` (one use, a week).

    ``next`` (a claim page) is signed into the token, so nobody can point it elsewhere.
    """
    data = {"email": email.strip().lower(), "jti": secrets.token_urlsafe(16)}
    if safe_next(next):
        data["next"] = next
    query = {"token": make_token(settings, "plans", data)}
    if lang:
        query["lang"] = lang
    return f"{settings.base_url}{SIGN_IN_PATH}?{urlencode(query)}"


def read_plans_link(settings: Settings, token: str) -> PlansLink:
    """The valid plans link behind ``token``, or InvalidLink (forged, altered, expired, or an
    old link without a one-time id: those may not sign in any more)."""
    data, issued_at = _read(settings, "plans", token, MAX_AGE_SECONDS)
    email, jti = data.get("email"), data.get("jti")
    if not isinstance(email, str) or "@" not in email:
        raise InvalidLink("this link is not valid; ask for a new one")
    if not isinstance(jti, str) or not 8 <= len(jti) <= 64:
        raise InvalidLink("this link no longer signs in; ask for a new one",
                          code="link_outdated")
    return PlansLink(email=email, jti=jti, next=safe_next(data.get("next")),
                     issued_at=issued_at)


def email_of_link(settings: Settings, token: str) -> str | None:
    """The address a link was made for when its signature is ours, even if it expired or is
    spent (to send a new link there), else None."""
    if not token or len(token) > 4000:
        return None
    try:
        data = _serializer(settings, "plans").loads(token)  # the signature only, any age
    except BadSignature:
        return None
    email = data.get("email") if isinstance(data, dict) else None
    return email if isinstance(email, str) and "@" in email else None


def email_from_plans_token(settings: Settings, token: str) -> str:
    """The customer email a plans link was made for (its signature and age only)."""
    return read_plans_link(settings, token).email
