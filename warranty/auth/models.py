"""API tokens, sign-in sessions and used or voided signed links."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from warranty.db.types import ts_field


class ApiToken(SQLModel, table=True):
    """A bearer token for staff or finance endpoints (only its hash is stored)."""

    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    role: str = Field(max_length=20)  # support | finance | admin (warranty.auth.ROLES)
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = ts_field()
    expires_at: datetime | None = ts_field(nullable=True)
    revoked_at: datetime | None = ts_field(nullable=True)


class AuthSession(SQLModel, table=True):
    """A signed-in browser or a customer API token: the cookie (or token) holds an opaque
    random id, this row only its hash. Logging out or revoking ends it here, so a copied
    cookie stops working (warranty.auth.sessions)."""

    __tablename__ = "auth_session"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)  # SHA-256 of the cookie's id
    kind: str = Field(max_length=20)  # customer | staff | customer_api
    subject: str = Field(max_length=320)  # the customer's or the staff member's email
    staff_user_id: int | None = Field(default=None, foreign_key="staff_user.id", index=True)
    # full: the mailbox was proved (a mailed link) or a store backend vouched (API token);
    # order: an email and order reference, which show that one order's plans only.
    scope: str = Field(max_length=20)
    order_ref: str | None = Field(default=None, max_length=200)  # for scope "order"
    created_by: str = Field(default="", max_length=200)  # how: link, order_ref, password, actor
    created_at: datetime = ts_field()
    last_seen_at: datetime = ts_field()
    expires_at: datetime = ts_field(index=True)
    revoked_at: datetime | None = ts_field(nullable=True)


class UsedLink(SQLModel, table=True):
    """A sign-in link that was spent: its ``jti`` may not sign anyone in again."""

    __tablename__ = "used_link"

    jti: str = Field(primary_key=True, max_length=64)
    email: str = Field(max_length=320)
    used_at: datetime = ts_field(index=True)


class VoidedLinks(SQLModel, table=True):
    """Sign-in links mailed to ``email`` before ``voided_at`` sign nobody in any more
    (``warranty revoke-customer-sessions``: someone else may have read those mails)."""

    __tablename__ = "voided_links"

    email: str = Field(primary_key=True, max_length=320)
    voided_at: datetime = ts_field()


sa.Index("ix_auth_session_kind_subject", AuthSession.__table__.c.kind,
         AuthSession.__table__.c.subject)
