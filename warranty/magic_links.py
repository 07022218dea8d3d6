"""Signed, expiring links that let a customer in without a password."""

from __future__ import annotations

import hashlib
from urllib.parse import urlencode

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from warranty.errors import DomainError
from warranty.settings import Settings

MAX_AGE_SECONDS = 7 * 24 * 3600  # a mailed link works for a week


class InvalidLink(DomainError):
    """A customer link that is forged, altered or expired."""

    code = "invalid_link"
    status = 403


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
    if not token or len(token) > 4000:
        raise InvalidLink("this link is incomplete; ask for a new one")
    try:
        data = _serializer(settings, purpose).loads(token, max_age=max_age)
    except SignatureExpired:
        raise InvalidLink("this link has expired; ask for a new one",
                          code="link_expired") from None
    except BadSignature:
        raise InvalidLink("this link is not valid; ask for a new one") from None
    if not isinstance(data, dict):
        raise InvalidLink("this link is not valid; ask for a new one")
    return data


def plans_link(settings: Settings, email: str) -> str:
    """The mailed link to a customer's page of plans: ``{base}/my/plans?token=...``."""
    token = make_token(settings, "plans", {"email": email.strip().lower()})
    return f"{settings.base_url}/my/plans?{urlencode({'token': token})}"


def email_from_plans_token(settings: Settings, token: str) -> str:
    """The customer email a plans link was made for."""
    email = read_token(settings, "plans", token).get("email")
    if not isinstance(email, str) or "@" not in email:
        raise InvalidLink("this link is not valid; ask for a new one")
    return email
