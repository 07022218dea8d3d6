"""Credentials and roles: bearer tokens for staff, the store's public key for storefronts, and
the one table of what each staff role may do (API endpoints and staff pages alike)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

from sqlmodel import Session, select

from warranty.dates import utcnow
from warranty.errors import Forbidden, Unauthorized
from warranty.models import ApiToken

ROLES = ("support", "finance", "admin")
# Older names of roles, still accepted where a role is typed in (CLI, create_staff, tokens).
ROLE_ALIASES = {"staff": "support"}

# What each role may do: least privilege, each role doing what the one before it does and
# more. Every API endpoint (warranty.api.spec ``auth=``) and every staff page names one of
# these; the README's roles table is this table.
PERMISSIONS: dict[str, frozenset[str]] = {
    # contracts, claims, the queue, customer histories, the catalog, rule sets, metrics
    "read": frozenset({"support", "finance", "admin"}),
    # approve, deny, ask for information, close; file, attach, answer for a customer
    "decide_claims": frozenset({"support", "finance", "admin"}),
    # give a plan to a new owner
    "transfer": frozenset({"support", "finance", "admin"}),
    # money: cancellations with their refund, product returns, claim payouts
    "refund": frozenset({"finance", "admin"}),
    # finance reports, ledgers, exports and the dashboard
    "reports": frozenset({"finance", "admin"}),
    # close a month of the books (nothing is booked in it afterwards)
    "close_periods": frozenset({"finance", "admin"}),
    # rule sets, catalog, order import, customer tokens, staff accounts and bearer tokens
    "admin": frozenset({"admin"}),
}
# The audiences endpoints were declared with before the table: each is the permission with
# the same roles ("staff" = support level).
AUDIENCE_ALIASES = {"staff": "read", "support": "read", "finance": "refund"}


def normalize_role(role: str) -> str:
    """A stored role name for ``role`` (``staff`` is the old name of ``support``)."""
    role = (role or "").strip().lower()
    return ROLE_ALIASES.get(role, role)


def permission_of(audience: str) -> str:
    """The permission an endpoint's ``auth=`` stands for (KeyError for an unknown one)."""
    name = AUDIENCE_ALIASES.get(audience, audience)
    if name not in PERMISSIONS:
        raise KeyError(f"unknown permission {audience!r}; choose one of {sorted(PERMISSIONS)}")
    return name


def may(role: str | None, permission: str) -> bool:
    """Whether ``role`` holds ``permission``."""
    return normalize_role(role or "") in PERMISSIONS[permission_of(permission)]


def roles_with(permission: str) -> list[str]:
    """The roles holding ``permission``, in the order of ROLES."""
    allowed = PERMISSIONS[permission_of(permission)]
    return [role for role in ROLES if role in allowed]


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


def require_permission(role: str | None, permission: str) -> None:
    """Refuse a role that does not hold ``permission`` (403)."""
    if not may(role, permission):
        needed = " or ".join(roles_with(permission))
        raise Forbidden(f"a {role} account cannot do this; it needs the {needed} role",
                        details={"permission": permission_of(permission),
                                 "roles": roles_with(permission)})


def require_role(role: str, audience: str) -> None:
    """Refuse a role that may not call endpoints for ``audience`` (see PERMISSIONS)."""
    require_permission(role, audience)


def check_public_key(given: str | None, expected: str) -> None:
    """Storefront endpoints take the store's public key (header or ``key`` query)."""
    if not given:
        raise Unauthorized("storefront endpoints need the store's public key "
                           "(X-Warranty-Key header or key query parameter)",
                           code="missing_public_key")
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise Unauthorized("wrong public key", code="wrong_public_key")
