"""Contract endpoints: staff search, history, cancellation, transfer, returns; customers'
plans link."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from flask import Blueprint, current_app, g
from pydantic import BaseModel, Field, model_validator
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from warranty.changes import cancellation, returns
from warranty.changes import transfer as contracts_transfer
from warranty.contracts import notices as notifications
from warranty.contracts import payloads, queries
from warranty.contracts.models import Contract
from warranty.core.dates import store_today
from warranty.core.errors import Conflict
from warranty.core.text import EmailAddress
from warranty.http.api.spec import endpoint
from warranty.http.clients import stripe_client
from warranty.http.session import get_session
from warranty.orders.models import Order, Refund
from warranty.payments import refund_events as refund_sync
from warranty.payments import refunds

bp = Blueprint("contracts", __name__, url_prefix="/api/v1")

Email = EmailAddress  # one address: it becomes the To of the owner's mails
Status = Literal["active", "cancelled", "expired", "fulfilled"]


class ContractOut(BaseModel):
    """A contract: the plan, its price, its coverage dates and its current owner."""

    id: str
    status: Status
    order: str
    store_order_ref: str
    customer_email: str
    sku: str
    product_title: str
    product_price: int = Field(description="minor units")
    plan_code: str
    coverage: Literal["standard", "accident"]
    term_months: int
    price: int = Field(description="minor units paid for the plan")
    currency: str
    deductible: int = Field(description="minor units per claim")
    liability_schedule: list[str] = Field(description="cap, % of the product price, per year")
    purchase_date: date
    plan_sold_on: date
    term_end: date
    breakdown_start: date
    accident_start: date | None
    waiting_until: date | None
    rule_set_version: int
    terms_version: str = Field(description="the terms it was sold under: /terms/{version}")


class ContractEventOut(BaseModel):
    """One audit row: who changed what, when and why."""

    action: str
    from_status: str | None
    to_status: str | None
    actor: str
    reason: str
    data: dict[str, Any]
    at: datetime


class RefundOut(BaseModel):
    """A contract's refund through Stripe: ``pending`` until Stripe reports it settled."""

    contract: str
    amount: int = Field(description="minor units")
    currency: str
    status: Literal["pending", "succeeded", "failed", "not_needed"]
    cancel_date: date
    booked_on: date = Field(description="the date the books take it on: the cancel date, or "
                                        "the first open day when that was in a closed month")
    fee: int
    claims_paid: int
    reason: str
    stripe_refund_id: str | None
    stripe_status: str | None = Field(description="what Stripe last said (pending, "
                                      "requires_action, succeeded, failed, canceled)")
    attempts: int
    last_error: str | None
    completed_at: datetime | None


class ContractDetail(BaseModel):
    """A contract with its history and refund."""

    contract: ContractOut
    history: list[ContractEventOut]
    refund: RefundOut | None


class ContractSearch(BaseModel):
    """Filters (all optional) and the page."""

    email: str | None = Field(default=None, min_length=1, max_length=320)
    order: str | None = Field(default=None, min_length=1, max_length=200,
                              description="the store's order reference or the ord_ id")
    status: Status | None = None
    purchased_from: date | None = None
    purchased_to: date | None = None
    term_ends_from: date | None = None
    term_ends_to: date | None = None
    page: int = Field(default=1, ge=1, le=100_000)
    per_page: int = Field(default=50, ge=1, le=200)

    @model_validator(mode="after")
    def _ranges(self) -> ContractSearch:
        """A date range must not end before it starts."""
        for low, high in (("purchased_from", "purchased_to"),
                          ("term_ends_from", "term_ends_to")):
            if getattr(self, low) and getattr(self, high) and getattr(self, low) > getattr(
                    self, high):
                raise ValueError(f"{low} is after {high}")
        return self


class ContractPage(BaseModel):
    """One page of contracts, newest first."""

    items: list[ContractOut]
    page: int
    per_page: int
    total: int


class QuoteQuery(BaseModel):
    """The cancellation date to quote for (today in the store's time zone by default)."""

    cancel_date: date | None = None
    book_as_adjustment: bool = Field(
        default=False, description="quote a date in a closed month, booked on the first open "
                                   "day as an adjustment (else 409 period_closed)")


class OpenClaimOut(BaseModel):
    """A claim on the plan that is not decided for good yet."""

    claim: str
    status: str
    incident_date: date


class ExternalRefundOut(BaseModel):
    """A dashboard refund on the order, and what of it nothing accounts for yet."""

    stripe_refund_id: str
    amount: int
    unallocated: int


class RefundQuoteOut(BaseModel):
    """What cancelling gives back, with every figure of the computation."""

    contract: str
    cancel_date: date
    currency: str
    price: int
    rule: Literal["free_look", "pro_rata", "product_returned"]
    term_days: int = Field(description="days of the term: product purchase date to term end")
    span_days: int = Field(description="days the price is spread over: the plan's sale date "
                                       "to the term end, both counted")
    unused_days: int = Field(description="cancellation date (included) to the term end")
    pro_rata_amount: int = Field(description="price × unused days / span days, rounded down")
    fee: int
    claims_paid: int
    amount: int = Field(description="the refund, minor units; send it back to confirm")
    booked_on: date = Field(description="the date the books take the refund on: the cancel "
                                        "date, or the first open day for an adjustment")
    adjustment: bool = Field(description="the cancel date is in a closed month")
    open_claims: list[OpenClaimOut] = Field(
        description="claims on the plan still open: the cancellation is refused (409 "
                    "claims_open) until each is paid, denied or closed")
    external_refunds: list[ExternalRefundOut] = Field(
        description="refunds made in Stripe's dashboard on the plan's order that no plan or "
                    "returned unit accounts for yet: if one was this plan's, confirm with "
                    "covered_by so it is not refunded twice")


class CancelBody(BaseModel):
    """Confirm a quote: the quoted amount guards against a quote that changed since."""

    amount: int = Field(ge=0, le=10**12, description="the quoted refund, minor units")
    cancel_date: date | None = None
    reason: str = Field(min_length=1, max_length=1000)
    backdate_reason: str | None = Field(
        default=None, max_length=1000,
        description="admins only: why the cancel date goes back further than the store's "
                    "window (WARRANTY_CANCEL_BACKDATE_DAYS); kept in the audit row")
    book_as_adjustment: bool = Field(
        default=False, description="a cancel date in a closed month: book the refund on the "
                                   "first open day as an adjustment naming the date (else 409 "
                                   "period_closed)")
    covered_by: str | None = Field(
        default=None, min_length=1, max_length=100,
        description="the Stripe id of a refund made in Stripe's dashboard that already gave "
                    "this plan's money back (see the quote's external_refunds): recorded as "
                    "made by it, nothing sent to Stripe again")


class CancelResult(BaseModel):
    """The cancelled contract and its refund (``pending`` until Stripe confirms)."""

    contract: ContractOut
    refund: RefundOut


class TransferBody(BaseModel):
    """The new owner."""

    email: Email
    reason: str = Field(default="", max_length=1000)


class ReturnBody(BaseModel):
    """Units of a product line that the store refunded or took back."""

    quantity: int = Field(ge=1, le=100_000)
    reason: str = Field(default="", max_length=1000)


class ReturnResult(BaseModel):
    """The line's returned units and the plans that were cancelled for them."""

    order: str
    line_no: int
    refunded_quantity: int
    cancelled: list[CancelResult]


class PlansLinkBody(BaseModel):
    """The customer's mail address."""

    email: Email


class Accepted(BaseModel):
    """The request was taken; the answer is the same whatever the address."""

    status: Literal["accepted"]
    message: str


def _detail(session: Session, contract: Contract) -> dict:
    """A contract with its history and refund."""
    order = session.get(Order, contract.order_id)
    refund = queries.refund_of(session, contract)
    return {
        "contract": payloads.public_dict(contract, order),
        "history": [{"action": e.action, "from_status": e.from_status,
                     "to_status": e.to_status, "actor": e.actor, "reason": e.reason,
                     "data": e.data, "at": e.created_at}
                    for e in queries.history(session, contract)],
        "refund": payloads.refund_dict(refund, contract) if refund else None,
    }


def _commit_once(session: Session) -> None:
    """Commit; a concurrent request that changed the same contract first makes this a 409."""
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise Conflict("another request changed this contract at the same time; reload it",
                       code="concurrent_change") from None


def _after_cancel(session: Session, cancelled: list[Refund]) -> list[dict]:
    """Try each committed refund through Stripe now, then report contract and refund."""
    settings = current_app.config["SETTINGS"]
    # The session's transaction is closed here: on SQLite an open one would hold the write
    # lock the refund attempt needs.
    for refund in cancelled:
        if refund.status == "pending":
            refunds.execute_refund(settings=settings, stripe_client=stripe_client(),
                                   refund_id=refund.id)
    results = []
    for refund in cancelled:
        session.refresh(refund)
        contract = session.get(Contract, refund.contract_id)
        order = session.get(Order, contract.order_id)
        results.append({"contract": payloads.public_dict(contract, order),
                        "refund": payloads.refund_dict(refund, contract)})
    return results


@endpoint(bp, "/contracts", summary="Search contracts", auth="read", query=ContractSearch,
          response=ContractPage)
def search_contracts(query: ContractSearch):
    """Contracts by email, order, status and dates, newest first, one page at a time."""
    session = get_session()
    where = queries.ContractFilter(**query.model_dump(exclude={"page", "per_page"}))
    rows, total = queries.search(session, where, page=query.page, per_page=query.per_page)
    return {"items": [payloads.public_dict(c, o) for c, o in rows], "page": query.page,
            "per_page": query.per_page, "total": total}


@endpoint(bp, "/contracts/<contract_id>", summary="A contract with its history and refund",
          auth="read", response=ContractDetail, errors=(404,))
def get_contract(contract_id: str):
    """One contract, every audit row, and its refund if any."""
    session = get_session()
    return _detail(session, queries.get_contract(session, contract_id))


@endpoint(bp, "/contracts/<contract_id>/cancellation-quote", summary="Quote a cancellation",
          auth="read", query=QuoteQuery, response=RefundQuoteOut, errors=(403, 404, 409))
def quote_cancellation(contract_id: str, query: QuoteQuery):
    """The refund cancelling now (or on ``cancel_date``) gives; changes nothing."""
    settings = current_app.config["SETTINGS"]
    session = get_session()
    contract = queries.get_contract(session, contract_id)
    today = store_today(settings.timezone)
    cancel_date = query.cancel_date or today
    dating = cancellation.check_cancel_date(
        session=session, settings=settings, cancel_date=cancel_date, today=today, role=g.role,
        book_as_adjustment=query.book_as_adjustment, quote_only=True)
    quote = cancellation.quote_cancellation(session=session, settings=settings,
                                                contract=contract, cancel_date=cancel_date)
    return {**quote.as_dict(), "booked_on": dating.booked_on.isoformat(),
            "adjustment": dating.adjustment,
            "open_claims": cancellation.open_claims_dict(session, contract),
            "external_refunds": [
                {"stripe_refund_id": row.stripe_refund_id, "amount": row.amount,
                 "unallocated": left}
                for row, left in refund_sync.external_refunds(
                    session, session.get(Order, contract.order_id)) if left > 0]}


@endpoint(bp, "/contracts/<contract_id>/cancel", method="POST", summary="Confirm a cancellation",
          auth="refund", body=CancelBody, response=CancelResult, errors=(403, 404, 409))
def cancel(contract_id: str, body: CancelBody):
    """Cancel with the quoted refund; the refund goes to Stripe right after the commit."""
    settings = current_app.config["SETTINGS"]
    session = get_session()
    today = store_today(settings.timezone)
    refund = cancellation.cancel_contract(
        session=session, settings=settings, contract_id=contract_id,
        cancel_date=body.cancel_date or today, today=today, actor=g.actor, reason=body.reason,
        role=g.role, backdate_reason=body.backdate_reason or "",
        book_as_adjustment=body.book_as_adjustment, expected_amount=body.amount,
        covered_by=body.covered_by)
    _commit_once(session)
    return _after_cancel(session, [refund])[0]


@endpoint(bp, "/contracts/<contract_id>/transfer", method="POST",
          summary="Transfer a plan to a new owner", auth="transfer", body=TransferBody,
          response=ContractDetail, errors=(404, 409))
def transfer(contract_id: str, body: TransferBody):
    """Give an active plan to a new owner; both owners and the store are told."""
    session = get_session()
    contract = contracts_transfer.transfer_contract(
        session=session, settings=current_app.config["SETTINGS"], contract_id=contract_id,
        new_email=body.email, actor=g.actor, reason=body.reason)
    _commit_once(session)
    return _detail(session, contract)


@endpoint(bp, "/orders/<order_id>/lines/<int:line_no>/returns", method="POST",
          summary="Record returned or refunded product units", auth="refund", body=ReturnBody,
          response=ReturnResult, errors=(404, 409))
def product_returned(order_id: str, line_no: int, body: ReturnBody):
    """Plans beyond the units kept are cancelled with a full refund each."""
    settings = current_app.config["SETTINGS"]
    session = get_session()
    returned, cancelled = returns.return_product_units(
        session=session, settings=settings, order_id=order_id, line_no=line_no,
        quantity=body.quantity, today=store_today(settings.timezone), actor=g.actor,
        reason=body.reason)
    _commit_once(session)
    return {"order": order_id, "line_no": line_no, "refunded_quantity": returned,
            "cancelled": _after_cancel(session, cancelled)}


@endpoint(bp, "/customers/plans-link", method="POST", summary="Mail a customer their plans link",
          auth="public", body=PlansLinkBody, response=Accepted, status=202)
def plans_link(body: PlansLinkBody):
    """Always 202: the answer never tells whether the address has plans."""
    session = get_session()
    notifications.send_plans_link(session=session, settings=current_app.config["SETTINGS"],
                                  email=body.email)
    session.commit()
    return {"status": "accepted",
            "message": "If this address has plans, a link to them is on its way."}
