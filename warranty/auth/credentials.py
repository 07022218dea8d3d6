"""Credentials: bearer tokens for staff and the store's public key for storefronts."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

from sqlmodel import Session, select

from warranty.auth.models import ApiToken
from warranty.auth.roles import ROLES, normalize_role
from warranty.core.dates import utcnow
from warranty.core.errors import Unauthorized


def hash_token(token: str) -> str:
    """SHA-256 of a token; only hashes are stored."""
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(*, session: Session, name: str, role: str,
                expires_at: datetime | None = None) -> str:
    """Create a bearer token and return its only plaintext copy."""
    role = normalize_role(role)
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    token = "wt_" + secrets.token_urlsafe(32)
    session.add(ApiToken(name=name, role=role, token_hash=hash_token(token),
                         expires_at=expires_at))
    session.flush()
    return token


def revoke(*, session: Session, name: str) -> int:
    """Revoke every live bearer token issued under ``name`` (they answer 401 from then on);
    returns how many."""
    rows = session.exec(select(ApiToken).where(ApiToken.name == name,
                                               ApiToken.revoked_at.is_(None))).all()
    for row in rows:
        row.revoked_at = utcnow()
        session.add(row)
    return len(rows)


def bearer_role(*, session: Session, header: str | None, master_token: str) -> tuple[str, str]:
    """The (actor, role) behind an ``Authorization: Bearer`` header, or Unauthorized."""
    if not header:
        raise Unauthorized("this endpoint needs an Authorization: Bearer token")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("Authorization header must be 'Bearer <token>'")
    if master_token and hmac.compare_digest(token.encode(), master_token.encode()):
        return "admin-token", "admin"
    row = session.exec(select(ApiToken).where(ApiToken.token_hash == hash_token(token))).first()
    if row is None:
        raise Unauthorized("unknown bearer token")
    if row.revoked_at is not None:
        raise Unauthorized("bearer token was revoked", code="token_revoked")
    if row.expires_at is not None and row.expires_at <= utcnow():
        raise Unauthorized("bearer token has expired", code="token_expired")
    return f"token:{row.name}", normalize_role(row.role)


def check_public_key(given: str | None, expected: str) -> None:
    """Storefront endpoints take the store's public key (header or ``key`` query)."""
    if not given:
        raise Unauthorized("storefront endpoints need the store's public key "
                           "(X-Warranty-Key header or key query parameter)",
                           code="missing_public_key")
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise Unauthorized("wrong public key", code="wrong_public_key")
