"""The outboxes of mail and store webhooks."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from warranty.core.ids import public_id
from warranty.db.types import json_field, ts_field


class OutboundWebhook(SQLModel, table=True):
    """An event for the store's webhook endpoint, stored before delivery."""

    __tablename__ = "outbound_webhook"

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(default_factory=lambda: public_id("evt"), max_length=40, unique=True)
    type: str = Field(max_length=60)
    payload: dict = json_field()
    status: str = Field(default="pending", max_length=20, index=True)  # pending|delivered|dead
    attempts: int = 0
    next_attempt_at: datetime = ts_field()
    last_error: str | None = Field(default=None, max_length=2000)
    created_at: datetime = ts_field()
    delivered_at: datetime | None = ts_field(nullable=True)


class MailMessage(SQLModel, table=True):
    """A mail to a customer, stored before it is sent over SMTP."""

    __tablename__ = "mail_message"

    id: int | None = Field(default=None, primary_key=True)
    to: str = Field(max_length=320, index=True)
    subject: str = Field(max_length=300)
    body: str = Field(sa_type=sa.Text())
    kind: str = Field(max_length=40)
    status: str = Field(default="pending", max_length=20, index=True)  # pending|sent|dead
    attempts: int = 0
    next_attempt_at: datetime = ts_field()
    last_error: str | None = Field(default=None, max_length=2000)
    created_at: datetime = ts_field()
    sent_at: datetime | None = ts_field(nullable=True)


class MailAttachment(SQLModel, table=True):
    """A file sent with a stored mail (a certificate PDF), kept with it until it is sent."""

    __tablename__ = "mail_attachment"

    id: int | None = Field(default=None, primary_key=True)
    mail_id: int = Field(foreign_key="mail_message.id", index=True)
    filename: str = Field(max_length=200)
    content_type: str = Field(max_length=100)  # e.g. application/pdf
    data: bytes = Field(sa_type=sa.LargeBinary())
