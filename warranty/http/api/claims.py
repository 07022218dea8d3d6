"""Claims API: for stores that build their own claim form, and for staff tools.

Customer endpoints take the store's public key (X-Warranty-Key) and a customer token
(X-Customer-Token), which a store backend that signed its customer in gets from
POST /api/v1/customer-tokens with an admin token: short-lived, stored as a hash, revocable,
and recorded with who asked for it. A staff bearer token works on them too, for any
customer. Decisions need the decide_claims permission, payouts refund (warranty.auth).
"""

from __future__ import annotations

import base64
import binascii
import logging
from datetime import date, datetime, timedelta
from typing import Literal

from flask import Blueprint, current_app, g
from pydantic import BaseModel, ConfigDict, Field

from warranty.auth import sessions as auth_sessions
from warranty.claims import attachments as uploads
from warranty.claims import filing, queries, rules, signals, transitions, workflow
from warranty.claims import payouts as claims_payouts
from warranty.claims.models import Claim
from warranty.contracts.models import Contract
from warranty.contracts.queries import get_contract
from warranty.core import redact, text
from warranty.core.dates import store_today
from warranty.core.errors import ValidationFailed
from warranty.customers import history as customers_history
from warranty.customers import lookup
from warranty.http.api.spec import endpoint
from warranty.http.session import get_session

bp = Blueprint("claims_api", __name__, url_prefix="/api/v1")
log = logging.getLogger(__name__)

FailureType = Literal["breakdown", "accident"]
ClaimStatus = Literal["submitted", "in_review", "info_requested", "approved", "denied", "paid",
                      "closed"]
MAX_AMOUNT = 10**12


class ClaimIn(BaseModel):
    """A new claim on one of the customer's plans."""

    contract_id: str = Field(min_length=1, max_length=40)
    incident_date: date
    failure_type: FailureType
    description: str = Field(min_length=1, max_length=rules.MAX_DESCRIPTION)
    estimated_amount: int | None = Field(default=None, ge=0, le=MAX_AMOUNT,
                                         description="minor units; needed for auto-approval")
    lang: Literal["ja", "en"] = Field(default="ja", description="language of the mails")


class ResubmitIn(BaseModel):
    """The customer's answer to a request for more information: it is added to the claim's
    messages; the description, incident date and failure type filed first stay as they are."""

    model_config = ConfigDict(extra="forbid")

    message: str = Field(min_length=1, max_length=rules.MAX_DESCRIPTION)


class FileIn(BaseModel):
    """One photo or PDF, base64-encoded (at most 10 MB decoded; the type is read from it)."""

    filename: str = Field(min_length=1, max_length=255)
    content_base64: str = Field(min_length=1, max_length=14_000_000)


class FileOut(BaseModel):
    """An attachment of a claim."""

    id: str
    filename: str
    content_type: str
    size: int
    created_at: datetime


class EventOut(BaseModel):
    """One step of a claim's timeline."""

    at: datetime
    action: str
    from_status: str | None
    to_status: str | None
    by: str = Field(description="customer | staff | rules | token | admin-token")
    actor: str | None = Field(description="who exactly (staff callers only)")
    reason: str


class MessageOut(BaseModel):
    """One message of a claim's conversation."""

    at: datetime
    author: str = Field(description="customer | staff")
    kind: str = Field(description="info_request | answer")
    body: str
    files: list[str] = Field(description="ids of the files sent with it")


class PayoutOut(BaseModel):
    """What was paid on a claim."""

    amount: int = Field(description="minor units")
    currency: str
    method: str
    reference: str
    created_at: datetime


class RiskSignalOut(BaseModel):
    """A fact worth a second look before deciding (never a decision by itself)."""

    code: Literal[signals.CODES]
    message: str
    details: dict = Field(description="the signal's figures (amounts in minor units)")


class ClaimOut(BaseModel):
    """A claim with its files, timeline and payout."""

    id: str
    contract_id: str
    customer_email: str = Field(description="the plan's current owner")
    filed_by: str | None = Field(default=None, description="who filed it (staff callers only)")
    status: ClaimStatus
    incident_date: date
    failure_type: str
    description: str
    estimated_amount: int | None
    coverage_year: int
    currency: str
    decision: str | None
    approved_amount: int | None
    deny_code: str | None
    deny_reason: str | None = Field(description="why it was denied, in the claim's language")
    info_request: str | None
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    files: list[FileOut]
    timeline: list[EventOut]
    messages: list[MessageOut] = Field(description="requests for more information and the "
                                                   "customer's answers, oldest first")
    payout: PayoutOut | None
    serial_number: str | None = Field(description="the product's serial number the claim was "
                                                  "filed with (else the plan's current one)")
    risk_signals: list[RiskSignalOut] | None = Field(
        default=None, description="staff callers only: risk signals judged at the claim's "
                                  "incident and filing dates (warranty.claims.signals); "
                                  "never an automatic denial")


class ClaimSummary(BaseModel):
    """A claim in a list."""

    id: str
    contract_id: str
    customer_email: str = Field(description="the plan's current owner")
    status: str
    warranty_category: str
    failure_type: str
    incident_date: date
    estimated_amount: int | None
    created_at: datetime


class PlanOut(BaseModel):
    """One of the customer's plans, with its claims."""

    id: str
    product_title: str
    sku: str
    coverage: str
    term_months: int
    purchase_date: date
    term_end: date
    status: str
    takes_claims: bool = Field(description="a claim filed today can be accepted: the plan is "
                                           "active or expired and the filing deadline has "
                                           "not passed")
    claims_until: date = Field(description="filing deadline: claims for incidents inside the "
                                           "term can be filed up to this day (term end + "
                                           "the store's filing window)")
    claims: list[ClaimSummary]
    serial_number: str | None = None


class PlansQuery(BaseModel):
    """Staff callers name the customer; customer callers see their own plans."""

    email: str | None = Field(default=None, max_length=320)


class PlansOut(BaseModel):
    """A customer's plans."""

    email: str
    plans: list[PlanOut]


class QueueQuery(BaseModel):
    """Filters of the claim queue."""

    status: ClaimStatus | None = None
    category: str | None = Field(default=None, max_length=50)
    date_from: date | None = Field(default=None, description="filed on or after (store date)")
    date_to: date | None = Field(default=None, description="filed on or before (store date)")
    page: int = Field(default=1, ge=1, le=10000)


class QueueOut(BaseModel):
    """A page of the queue (100 per page, oldest first) and counts per status."""

    counts: dict[str, int]
    claims: list[ClaimSummary]


class ApproveIn(BaseModel):
    """Approve as repair, replacement or reimbursement."""

    decision: Literal["repair", "replace", "reimburse"]
    amount: int = Field(gt=0, le=MAX_AMOUNT, description="approved cost before the deductible, "
                                                         "minor units")
    note: str = Field(default="", max_length=1000)


class ReasonIn(BaseModel):
    """A reason shown to the customer."""

    reason: str = Field(min_length=1, max_length=1000)


class InfoRequestIn(BaseModel):
    """What the customer should add."""

    message: str = Field(min_length=1, max_length=2000)


class PayoutIn(BaseModel):
    """How an approved claim was paid."""

    method: Literal["bank_transfer", "store_credit", "repair_vendor", "replacement"]
    reference: str = Field(default="", max_length=200)


class CustomerTokenIn(BaseModel):
    """The customer a store backend wants a token for."""

    email: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")


class CustomerTokenOut(BaseModel):
    """A token for X-Customer-Token: acts as the customer until it expires or is revoked."""

    token: str
    expires_in_seconds: int
    expires_at: datetime


class HistoryQuery(BaseModel):
    """The customer to look up."""

    email: str = Field(min_length=3, max_length=320)


class OrderOut(BaseModel):
    """An order in a customer's history."""

    id: str
    store_order_ref: str
    status: str
    total_amount: int
    currency: str
    purchase_date: date | None


class MailOut(BaseModel):
    """A mail sent (or queued) to the customer."""

    subject: str
    kind: str
    status: str
    created_at: datetime
    body: str = Field(description="the text, with every link to this service removed (they "
                                  "sign the customer in)")


class HistoryOut(BaseModel):
    """A customer's orders, plans, claims, payouts and mails."""

    email: str
    orders: list[OrderOut]
    plans: list[PlanOut]
    payouts: list[PayoutOut]
    mails: list[MailOut]


def _is_staff() -> bool:
    """True when the caller used a staff bearer token."""
    return g.role != "customer"


def _claim(claim_id: str) -> Claim:
    """The claim, if the caller may see it (someone else's is a 404)."""
    if _is_staff():
        return queries.get_claim(get_session(), claim_id)
    return queries.get_claim_for(get_session(), claim_id, g.customer_email)


def _summary(claim: Claim, contract: Contract) -> ClaimSummary:
    """A claim in a list."""
    return ClaimSummary(id=claim.public_id, contract_id=contract.public_id,
                        customer_email=text.normalize_email(contract.customer_email),
                        status=claim.status,
                        warranty_category=contract.warranty_category,
                        failure_type=claim.failure_type, incident_date=claim.incident_date,
                        estimated_amount=claim.estimated_amount, created_at=claim.created_at)


def _payout_out(payout) -> PayoutOut:
    """A payout row for the API."""
    return PayoutOut(amount=payout.amount, currency=payout.currency, method=payout.method,
                     reference=payout.reference, created_at=payout.created_at)


def claim_out(claim: Claim) -> ClaimOut:
    """A claim as the API shows it to this caller."""
    db = get_session()
    contract = db.get(Contract, claim.contract_id)
    payout = queries.payout_of(db, claim)
    staff = _is_staff()
    return ClaimOut(
        id=claim.public_id, contract_id=contract.public_id,
        customer_email=text.normalize_email(contract.customer_email),
        filed_by=claim.customer_email if staff else None, status=claim.status,
        incident_date=claim.incident_date, failure_type=claim.failure_type,
        description=claim.description, estimated_amount=claim.estimated_amount,
        coverage_year=claim.coverage_year, currency=contract.currency, decision=claim.decision,
        approved_amount=claim.approved_amount, deny_code=claim.deny_code,
        deny_reason=transitions.deny_text(claim, claim.lang) if claim.status == "denied" else None,
        info_request=claim.info_request, created_at=claim.created_at,
        updated_at=claim.updated_at, closed_at=claim.closed_at,
        files=[FileOut(id=f.public_id, filename=f.original_name, content_type=f.content_type,
                       size=f.size, created_at=f.created_at) for f in queries.files_of(db, claim)],
        timeline=[EventOut(at=e.created_at, action=e.action, from_status=e.from_status,
                           to_status=e.to_status, by=e.actor.split(":")[0],
                           actor=e.actor if staff else None, reason=e.reason)
                  for e in queries.timeline(db, claim)],
        messages=[MessageOut(at=m.created_at, author=m.author, kind=m.kind, body=m.body,
                             files=list(m.files or [])) for m in queries.messages(db, claim)],
        payout=_payout_out(payout) if payout else None,
        serial_number=claim.serial_number or contract.serial_number,
        risk_signals=[RiskSignalOut(code=sig.code, message=sig.message, details=sig.details)
                      for sig in signals.signals_for(db, claim, settings=_settings(),
                                                     contract=contract)] if staff else None)


def _plans(email: str) -> list[PlanOut]:
    """A customer's plans with their claims (those on the plans they own now)."""
    db = get_session()
    contracts = lookup.plans_for(db, email)
    by_contract: dict[int, list[ClaimSummary]] = {}
    by_id = {c.id: c for c in contracts}
    for claim in lookup.claims_for(db, email):
        by_contract.setdefault(claim.contract_id, []).append(
            _summary(claim, by_id[claim.contract_id]))
    window, today = _settings().claim_filing_days_after_term, _today()
    return [PlanOut(id=c.public_id, product_title=c.product_title, sku=c.sku,
                    coverage=c.coverage, term_months=c.term_months,
                    purchase_date=c.purchase_date, term_end=c.term_end, status=c.status,
                    takes_claims=rules.takes_claims(c, today=today, days_after_term=window),
                    claims_until=rules.filing_deadline(c, window),
                    claims=by_contract.get(c.id, []), serial_number=c.serial_number)
            for c in contracts]


def _settings():
    """The app's settings."""
    return current_app.config["SETTINGS"]


def _today() -> date:
    """Today in the store's time zone."""
    return store_today(_settings().timezone)


# --- customer endpoints (public key + customer token, or staff) ---------------------------


@endpoint(bp, "/customer/plans", summary="A customer's plans and claims", auth="customer",
          query=PlansQuery, response=PlansOut)
def customer_plans(query: PlansQuery):
    """The caller's own plans (staff: the plans of ``email``)."""
    if _is_staff():
        if not query.email:
            raise ValidationFailed("staff callers name the customer with ?email=",
                                   code="email_required")
        email = text.normalize_email(query.email)
    else:
        email = g.customer_email
    return PlansOut(email=email, plans=_plans(email))


@endpoint(bp, "/claims", method="POST", summary="File a claim", auth="customer", body=ClaimIn,
          response=ClaimOut, status=201, errors=(404,))
def file_claim(body: ClaimIn):
    """File a claim; the automatic rules decide at once what they can."""
    db = get_session()
    if _is_staff():
        contract = get_contract(db, body.contract_id)
        email = contract.customer_email
    else:
        email = g.customer_email
        contract = lookup.get_contract_for(db, body.contract_id, email)
    claim = filing.file_claim(session=db, settings=_settings(), contract=contract,
                              customer_email=email, incident_date=body.incident_date,
                              failure_type=body.failure_type, description=body.description,
                              estimated_amount=body.estimated_amount, files=[], actor=g.actor,
                              today=_today(), lang=body.lang, source="api")
    db.commit()
    return claim_out(claim)


@endpoint(bp, "/claims/<claim_id>", summary="A claim with its timeline", auth="customer",
          response=ClaimOut, errors=(404,))
def get_claim(claim_id: str):
    """One claim the caller may see."""
    return claim_out(_claim(claim_id))


@endpoint(bp, "/claims/<claim_id>/files", method="POST", summary="Attach a photo or PDF",
          auth="customer", body=FileIn, response=FileOut, status=201, errors=(404, 409))
def add_file(claim_id: str, body: FileIn):
    """Attach one file to an open claim (its type is read from its bytes)."""
    db = get_session()
    claim = _claim(claim_id)
    try:
        data = base64.b64decode(body.content_base64, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationFailed("content_base64 is not valid base64",
                               code="invalid_base64") from None
    (row,) = filing.add_files(session=db, settings=_settings(), claim=claim,
                              files=[uploads.Upload(filename=body.filename, data=data)],
                              actor=g.actor)
    db.commit()
    return FileOut(id=row.public_id, filename=row.original_name, content_type=row.content_type,
                   size=row.size, created_at=row.created_at)


@endpoint(bp, "/claims/<claim_id>/resubmit", method="POST",
          summary="Answer a request for more information", auth="customer", body=ResubmitIn,
          response=ClaimOut, errors=(404, 409))
def resubmit(claim_id: str, body: ResubmitIn):
    """Send the updated claim back to review."""
    db = get_session()
    claim = _claim(claim_id)
    filing.resubmit(session=db, settings=_settings(), claim=claim, message=body.message,
                    files=[], actor=g.actor, today=_today())
    db.commit()
    return claim_out(claim)


# --- staff endpoints --------------------------------------------------------------------


@endpoint(bp, "/claims", summary="The claim queue with counts per status", auth="read",
          query=QueueQuery, response=QueueOut)
def claim_queue(query: QueueQuery):
    """Claims matching the filters, oldest first, 100 per page."""
    flt = queries.QueueFilter(status=query.status, category=query.category,
                             date_from=query.date_from, date_to=query.date_to)
    rows, counts = queries.queue(get_session(), flt, timezone=_settings().timezone, limit=100,
                                offset=(query.page - 1) * 100)
    return QueueOut(counts=counts, claims=[_summary(claim, contract) for claim, contract in rows])


def _decide(claim_id: str, action) -> ClaimOut:
    """Run one staff decision and commit."""
    db = get_session()
    claim = queries.get_claim(db, claim_id)
    action(db, claim)
    db.commit()
    return claim_out(claim)


@endpoint(bp, "/claims/<claim_id>/approve", method="POST", summary="Approve a claim",
          auth="decide_claims", body=ApproveIn, response=ClaimOut, errors=(404, 409))
def approve(claim_id: str, body: ApproveIn):
    """Approve as repair, replacement or reimbursement of an amount."""
    return _decide(claim_id, lambda db, claim: workflow.approve(
        session=db, settings=_settings(), claim=claim, decision=body.decision,
        amount=body.amount, actor=g.actor, note=body.note))


@endpoint(bp, "/claims/<claim_id>/deny", method="POST", summary="Deny a claim",
          auth="decide_claims", body=ReasonIn, response=ClaimOut, errors=(404, 409))
def deny(claim_id: str, body: ReasonIn):
    """Deny with a reason for the customer."""
    return _decide(claim_id, lambda db, claim: workflow.deny(
        session=db, settings=_settings(), claim=claim, reason=body.reason, actor=g.actor))


@endpoint(bp, "/claims/<claim_id>/request-info", method="POST",
          summary="Ask the customer for more information", auth="decide_claims",
          body=InfoRequestIn,
          response=ClaimOut, errors=(404, 409))
def request_info(claim_id: str, body: InfoRequestIn):
    """Reopen the customer's form with a question."""
    return _decide(claim_id, lambda db, claim: workflow.request_info(
        session=db, settings=_settings(), claim=claim, message=body.message, actor=g.actor))


@endpoint(bp, "/claims/<claim_id>/close", method="POST",
          summary="Close an approved claim without a payout", auth="decide_claims",
          body=ReasonIn,
          response=ClaimOut, errors=(404, 409))
def close(claim_id: str, body: ReasonIn):
    """Close without paying."""
    return _decide(claim_id, lambda db, claim: workflow.close(
        session=db, settings=_settings(), claim=claim, reason=body.reason, actor=g.actor))


@endpoint(bp, "/claims/<claim_id>/payout", method="POST", summary="Record a claim's payout",
          auth="refund", body=PayoutIn, response=ClaimOut, errors=(404, 409))
def payout(claim_id: str, body: PayoutIn):
    """Pay an approved claim (capped by the liability cap); may fulfil the contract."""
    return _decide(claim_id, lambda db, claim: claims_payouts.record_payout(
        session=db, settings=_settings(), claim=claim, method=body.method,
        reference=body.reference, actor=g.actor))


@endpoint(bp, "/customer-tokens", method="POST", summary="A customer token for a store backend",
          auth="admin", body=CustomerTokenIn, response=CustomerTokenOut, status=201)
def customer_token(body: CustomerTokenIn):
    """A token that acts as the customer (for a store's own claim form, once the store has
    signed its customer in): short-lived, stored as a hash with who asked for it, revoked
    with ``warranty revoke-customer-sessions EMAIL``."""
    db = get_session()
    email = text.normalize_email(body.email)
    lifetime = timedelta(minutes=_settings().customer_token_minutes)
    token, row = auth_sessions.start(session=db, kind="customer_api", subject=email,
                                     scope=auth_sessions.FULL, lifetime=lifetime,
                                     created_by=g.actor, prefix="wct_")
    db.commit()
    log.info("customer token %s issued by %s (expires %s)", row.id, g.actor,
             row.expires_at.isoformat())
    return CustomerTokenOut(token=token, expires_in_seconds=int(lifetime.total_seconds()),
                            expires_at=row.expires_at)


@endpoint(bp, "/customers/history", summary="A customer's whole history", auth="read",
          query=HistoryQuery, response=HistoryOut)
def customer_history(query: HistoryQuery):
    """Orders, plans with claims, payouts and mails of one email."""
    history = customers_history.customer_history(get_session(), query.email)
    return HistoryOut(
        email=history.email,
        orders=[OrderOut(id=o.public_id, store_order_ref=o.store_order_ref, status=o.status,
                         total_amount=o.total_amount, currency=o.currency,
                         purchase_date=o.purchase_date) for o in history.orders],
        plans=_plans(history.email), payouts=[_payout_out(p) for p in history.payouts],
        mails=[MailOut(subject=m.subject, kind=m.kind, status=m.status, created_at=m.created_at,
                       body=redact.redact_links(m.body, _settings().base_url))
               for m in history.mails])
