"""Staff accounts."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from warranty.db.types import ts_field


class StaffUser(SQLModel, table=True):
    """A person who signs in to the staff pages (created with ``warranty create-staff``)."""

    __tablename__ = "staff_user"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320, unique=True)
    role: str = Field(max_length=20)  # support | finance | admin (warranty.auth.ROLES)
    password_hash: str = Field(max_length=300)  # werkzeug scrypt hash, never the password
    created_at: datetime = ts_field()
    last_login_at: datetime | None = ts_field(nullable=True)
    disabled_at: datetime | None = ts_field(nullable=True)
    # Staff-page sessions issued before this moment are void (warranty revoke-staff-sessions).
    sessions_revoked_at: datetime | None = ts_field(nullable=True)
