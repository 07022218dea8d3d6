"""The one table of what each staff role may do (API endpoints and staff pages alike)."""

from __future__ import annotations

from warranty.core.errors import Forbidden

ROLES = ("support", "finance", "admin")
# Older names of roles, still accepted where a role is typed in (CLI, create_staff, tokens).
ROLE_ALIASES = {"staff": "support"}

# What each role may do: least privilege, each role doing what the one before it does and
# more. Every API endpoint (warranty.http.api.spec ``auth=``) and every staff page names one of
# these; the README's roles table is this table.
PERMISSIONS: dict[str, frozenset[str]] = {
    # contracts, claims, the queue, customer histories, the catalog, rule sets, metrics
    "read": frozenset({"support", "finance", "admin"}),
    # approve, deny, ask for information, close; file, attach, answer for a customer
    "decide_claims": frozenset({"support", "finance", "admin"}),
    # give a plan to a new owner; register its product's serial number
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
