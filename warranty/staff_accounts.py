"""Staff accounts for the staff pages: scrypt-hashed passwords, one role each."""

from __future__ import annotations

import time

from sqlmodel import Session, select
from werkzeug.security import check_password_hash, generate_password_hash

from warranty.auth import ROLE_ALLOWS
from warranty.dates import utcnow
from warranty.errors import Conflict, NotFound, Unauthorized, ValidationFailed
from warranty.models import StaffUser

MIN_PASSWORD = 12
# Checked when the email is unknown, so a wrong email takes as long as a wrong password.
_DUMMY_HASH = generate_password_hash("not-a-real-password", method="scrypt")


def create_staff(*, session: Session, email: str, role: str, password: str) -> StaffUser:
    """Add a staff account (caller commits)."""
    email = (email or "").strip().lower()
    if "@" not in email or len(email) > 320:
        raise ValidationFailed("give the staff member's email address", code="invalid_email")
    if role not in ROLE_ALLOWS:
        raise ValidationFailed(f"role must be one of {', '.join(sorted(ROLE_ALLOWS))}",
                               code="invalid_role")
    if len(password) < MIN_PASSWORD:
        raise ValidationFailed(f"the password needs at least {MIN_PASSWORD} characters",
                               code="weak_password")
    if session.exec(select(StaffUser).where(StaffUser.email == email)).first() is not None:
        raise Conflict(f"a staff account for {email} exists already", code="staff_exists")
    user = StaffUser(email=email, role=role,
                     password_hash=generate_password_hash(password, method="scrypt"))
    session.add(user)
    session.flush()
    return user


def authenticate(*, session: Session, email: str, password: str) -> StaffUser:
    """The active staff account with this email and password, or Unauthorized.

    The account is read under its row lock: a sign-in racing a change to it (disabled,
    sessions revoked) sees that change committed, not the account as it was before.
    """
    user = session.exec(select(StaffUser)
                        .where(StaffUser.email == (email or "").strip().lower())
                        .with_for_update().execution_options(populate_existing=True)).first()
    valid = check_password_hash(user.password_hash if user else _DUMMY_HASH, password or "")
    if user is None or not valid or user.disabled_at is not None:
        raise Unauthorized("wrong email or password", code="bad_login")
    user.last_login_at = utcnow()
    session.add(user)
    return user


def active_staff(session: Session, user_id: int | None, issued_at: float | None = None,
                 max_age_seconds: float | None = None) -> StaffUser | None:
    """The signed-in staff account, unless it was disabled, or the sign-in (at ``issued_at``,
    a Unix time) is older than ``max_age_seconds`` or than a revocation of its sessions."""
    if not isinstance(user_id, int) or isinstance(user_id, bool):
        return None
    if max_age_seconds is not None:
        if not isinstance(issued_at, int | float) or isinstance(issued_at, bool):
            return None
        if not 0 <= time.time() - issued_at <= max_age_seconds:
            return None
    user = session.get(StaffUser, user_id)
    if user is None or user.disabled_at is not None:
        return None
    revoked = user.sessions_revoked_at
    if revoked is not None and (issued_at is None or issued_at <= revoked.timestamp()):
        return None
    return user


def revoke_sessions(*, session: Session, email: str) -> StaffUser:
    """Sign a staff member out everywhere: sessions issued until now stop working."""
    user = session.exec(select(StaffUser)
                        .where(StaffUser.email == (email or "").strip().lower())).first()
    if user is None:
        raise NotFound(f"no staff account for {email}", code="staff_not_found")
    user.sessions_revoked_at = utcnow()
    session.add(user)
    return user
