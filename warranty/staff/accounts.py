"""Staff accounts for the staff pages: scrypt-hashed passwords, one role each."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session, select
from werkzeug.security import check_password_hash, generate_password_hash

from warranty.auth import sessions as auth_sessions
from warranty.auth.models import AuthSession
from warranty.auth.roles import ROLES, normalize_role
from warranty.core.dates import utcnow
from warranty.core.errors import Conflict, NotFound, Unauthorized, ValidationFailed
from warranty.db.engine import write_transaction
from warranty.staff.models import StaffUser

MIN_PASSWORD = 12
MAX_EMAIL = 320
# Checked when the email is unknown, so a wrong email takes as long as a wrong password.
_DUMMY_HASH = generate_password_hash("not-a-real-password", method="scrypt")


def create_staff(*, session: Session, email: str, role: str, password: str) -> StaffUser:
    """Add a staff account (caller commits)."""
    email = (email or "").strip().lower()
    if "@" not in email or len(email) > MAX_EMAIL:
        raise ValidationFailed("give the staff member's email address", code="invalid_email")
    role = normalize_role(role)
    if role not in ROLES:
        raise ValidationFailed(f"role must be one of {', '.join(ROLES)}", code="invalid_role")
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


def login_email(typed: str | None) -> str:
    """The account a sign-in attempt names: the typed address trimmed and in lower case, or
    "" (no account) when that is longer than an address can be. Sign-in and its throttle
    (warranty.http.ratelimit) both read the attempt through this, so every spelling that reaches
    an account's password counts against that account."""
    email = (typed or "").strip().lower()
    return email if len(email) <= MAX_EMAIL else ""


def authenticate(*, session: Session, email: str, password: str) -> StaffUser:
    """The active staff account with this email and password, or Unauthorized.

    ``email`` is what was typed (see ``login_email``). The account is read under its row
    lock: a sign-in racing a change to it (disabled, sessions revoked) sees that change
    committed, not the account as it was before.
    """
    write_transaction(session)
    user = session.exec(select(StaffUser)
                        .where(StaffUser.email == login_email(email))
                        .with_for_update().execution_options(populate_existing=True)).first()
    valid = check_password_hash(user.password_hash if user else _DUMMY_HASH, password or "")
    if user is None or not valid or user.disabled_at is not None:
        raise Unauthorized("wrong email or password", code="bad_login")
    user.last_login_at = utcnow()
    session.add(user)
    return user


def active_staff(session: Session, row: AuthSession | None,
                 max_age: timedelta | None = None) -> StaffUser | None:
    """The staff account a live staff session is for, unless the account was disabled, or
    the session is older than ``max_age`` or than a revocation of its sessions."""
    if row is None or row.kind != "staff" or row.staff_user_id is None:
        return None
    if max_age is not None and utcnow() - row.created_at > max_age:
        return None
    user = session.get(StaffUser, row.staff_user_id)
    if user is None or user.disabled_at is not None:
        return None
    revoked = user.sessions_revoked_at
    if revoked is not None and row.created_at <= revoked:
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
    auth_sessions.revoke_all(session=session, subject=user.email, kinds=("staff",))
    return user
