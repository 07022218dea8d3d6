"""Claims, their events, files, payouts and NPS answers; the claim statuses and their allowed
transitions.
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from warranty.core.ids import public_id
from warranty.db.types import json_field, money_field, ts_field


class Claim(SQLModel, table=True):
    """A customer's claim on one contract."""

    id: int | None = Field(default=None, primary_key=True)
    public_id: str = Field(default_factory=lambda: public_id("cl"), max_length=40, unique=True)
    contract_id: int = Field(foreign_key="contract.id", index=True)
    customer_email: str = Field(max_length=320, index=True)  # who filed it: they may see it
    incident_date: date
    failure_type: str = Field(max_length=20)  # breakdown | accident
    description: str = Field(sa_type=sa.Text())
    estimated_amount: int | None = money_field(default=None)  # minor units, customer's estimate
    coverage_year: int = Field(ge=1)
    # submitted | in_review | info_requested | approved | denied | paid | closed
    status: str = Field(default="submitted", max_length=20, index=True)
    decision: str | None = Field(default=None, max_length=20)  # repair | replace | reimburse
    approved_amount: int | None = money_field(default=None)  # minor units, before deductible
    deny_code: str | None = Field(default=None, max_length=40)
    deny_reason: str | None = Field(default=None, max_length=1000)
    info_request: str | None = Field(default=None, max_length=2000)
    lang: str = Field(default="ja", max_length=5)  # language of the customer's mails
    source: str = Field(default="web", max_length=10)  # web | api
    # The contract's serial number when the claim was filed (kept if it changes later).
    serial_number: str | None = Field(default=None, max_length=64)
    serial_key: str | None = Field(default=None, max_length=255, index=True)
    created_at: datetime = ts_field()
    updated_at: datetime = ts_field()
    closed_at: datetime | None = ts_field(nullable=True)


class ClaimEvent(SQLModel, table=True):
    """Audit row for every change to a claim: who, when, why."""

    __tablename__ = "claim_event"

    id: int | None = Field(default=None, primary_key=True)
    claim_id: int = Field(foreign_key="claim.id", index=True)
    action: str = Field(max_length=30)
    from_status: str | None = Field(default=None, max_length=20)
    to_status: str | None = Field(default=None, max_length=20)
    actor: str = Field(max_length=200)
    reason: str = Field(default="", max_length=2000)
    data: dict = json_field()
    created_at: datetime = ts_field()


class ClaimMessage(SQLModel, table=True):
    """One message of a claim's conversation: staff asking for more, the customer answering.

    Messages only add to a claim: the description, incident date and failure type filed
    first are never rewritten by an answer.
    """

    __tablename__ = "claim_message"

    id: int | None = Field(default=None, primary_key=True)
    claim_id: int = Field(foreign_key="claim.id", index=True)
    author: str = Field(max_length=10)  # customer | staff
    kind: str = Field(max_length=20)  # info_request | answer
    actor: str = Field(max_length=200)
    body: str = Field(sa_type=sa.Text())
    files: list = json_field(list)  # public ids of the files sent with it
    created_at: datetime = ts_field()


class ClaimFile(SQLModel, table=True):
    """A photo or PDF attached to a claim, stored outside the web root under a random name."""

    __tablename__ = "claim_file"

    id: int | None = Field(default=None, primary_key=True)
    public_id: str = Field(default_factory=lambda: public_id("fl"), max_length=40, unique=True)
    claim_id: int = Field(foreign_key="claim.id", index=True)
    stored_name: str = Field(max_length=80, unique=True)
    original_name: str = Field(max_length=255)
    content_type: str = Field(max_length=50)  # detected from the bytes, not the name
    size: int = Field(ge=0)
    sha256: str = Field(max_length=64)
    uploaded_by: str = Field(max_length=200)
    created_at: datetime = ts_field()


class Payout(SQLModel, table=True):
    """Money (or a replacement) paid out on a claim; not a refund of the plan's price."""

    id: int | None = Field(default=None, primary_key=True)
    claim_id: int = Field(foreign_key="claim.id", unique=True)  # at most one payout per claim
    contract_id: int = Field(foreign_key="contract.id", index=True)
    amount: int = money_field()  # minor units counted against the liability cap
    currency: str = Field(max_length=3)
    # bank_transfer | store_credit | repair_vendor | replacement
    method: str = Field(max_length=20)
    reference: str = Field(default="", max_length=200)
    actor: str = Field(max_length=200)
    # The store-local date the payout is booked on (the day it was recorded; warranty.periods).
    booked_on: date
    created_at: datetime = ts_field()


class NpsAnswer(SQLModel, table=True):
    """The customer's 0-10 "would you recommend us" answer after a claim closed."""

    __tablename__ = "nps_answer"

    id: int | None = Field(default=None, primary_key=True)
    claim_id: int = Field(foreign_key="claim.id", unique=True)  # one answer per claim
    score: int = Field(ge=0, le=10)
    comment: str = Field(default="", max_length=2000)
    created_at: datetime = ts_field()


sa.Index("ix_payout_booked_on", Payout.__table__.c.booked_on)


# Allowed status changes; anything else raises. A claim is created "submitted" and the
# automatic rules move it on at once; "denied", "paid" and "closed" are final.
TRANSITIONS: dict[str, set[str]] = {
    "submitted": {"in_review", "approved", "denied"},
    "in_review": {"approved", "denied", "info_requested"},
    "info_requested": {"in_review", "denied"},
    "approved": {"paid", "closed"},
    "denied": set(),
    "paid": set(),
    "closed": set(),
}
STATUSES = tuple(TRANSITIONS)
FINAL = frozenset(status for status, targets in TRANSITIONS.items() if not targets)
# Statuses in which more files may still be attached.
ACCEPTS_FILES = frozenset({"submitted", "in_review", "info_requested", "approved"})
# Claims not yet decided for good: a plan with one of these is not cancelled by staff.
OPEN = frozenset(status for status in TRANSITIONS if status not in FINAL)
