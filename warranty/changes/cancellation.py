"""Cancelling a contract with its refund.

Each function takes the caller's session and never commits: the view commits once, so the
contract's new status, its audit row, the pending refund and the queued notices are one
transaction. The Stripe refund itself happens after that commit (warranty.payments.refunds).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date, timedelta

from sqlmodel import Session, select

from warranty.claims import workflow
from warranty.claims.payouts import claims_paid_total
from warranty.contracts import lifecycle as contracts
from warranty.contracts import notices as notifications
from warranty.contracts import queries
from warranty.contracts import refunds as contract_refunds
from warranty.contracts.models import Contract
from warranty.core import money, text
from warranty.core.dates import days_inclusive, utcnow
from warranty.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from warranty.core.settings import Settings
from warranty.coverage.span import plan_span, span_days_unused
from warranty.db.engine import write_transaction
from warranty.orders.models import Order, Refund
from warranty.periods import booking as periods


@dataclass(frozen=True)
class RefundQuote:
    """What cancelling a contract on ``cancel_date`` gives back, and why."""

    contract: str
    cancel_date: date
    currency: str
    price: int  # minor units paid for the plan
    rule: str  # free_look | pro_rata | product_returned
    term_days: int  # days of the term, product purchase date to term end
    span_days: int  # days the price is spread over: plan sale date to term end
    unused_days: int  # cancellation date (included) to term end
    pro_rata_amount: int  # price × unused days / span days, rounded down
    fee: int
    claims_paid: int
    amount: int  # the refund, never below 0; a multiple of Stripe's step for the currency

    def as_dict(self) -> dict:
        """JSON-ready form."""
        return {**asdict(self), "cancel_date": self.cancel_date.isoformat()}


def quote_refund(*, contract: Contract, cancel_date: date, fee: int = 0, claims_paid: int = 0,
                 free_look_days: int = 30, full: bool = False) -> RefundQuote:
    """The refund rule, as a pure function of the contract and the date.

    Free look: cancelled at most ``free_look_days`` after the plan was sold, with no claim
    paid → the whole price. Later: price × unused days / days of the plan's span, rounded
    down (the span runs from the plan's sale date to the end of the term, both counted; the
    unused days from the cancellation date, included, to the end of the term), less the fee
    and the claims paid, never below 0, rounded down to an amount Stripe can refund (a
    multiple of 10 minor units in three-decimal currencies). ``full`` (a returned product)
    refunds the whole price whatever the date.

    The span is the one earned revenue accrues over (warranty.reports.revenue), so the
    pro-rata amount on day d is the revenue still deferred at the end of d − 1, both rounded
    from the same exact fraction price × unused / span: the refund down, the deferred
    balance up (earned revenue rounds down). They are equal when the fraction is whole and
    the refund is 1 minor unit less otherwise.
    """
    if fee < 0 or claims_paid < 0:
        raise ValueError("fee and claims paid cannot be negative")
    if cancel_date < contract.plan_sold_on:
        raise ValidationFailed(f"cancel date {cancel_date} is before the plan was bought "
                               f"({contract.plan_sold_on})", code="invalid_cancel_date")
    if cancel_date > contract.term_end and not full:
        raise Conflict(f"the term of {contract.public_id} ended on {contract.term_end}",
                       code="term_ended")
    span = plan_span(contract.plan_sold_on, contract.term_end)
    unused = span_days_unused(contract.plan_sold_on, contract.term_end, cancel_date)
    pro_rata = money.pro_rata(contract.price, unused, span)
    common = {"contract": contract.public_id, "cancel_date": cancel_date,
              "currency": contract.currency, "price": contract.price,
              "term_days": days_inclusive(contract.purchase_date, contract.term_end),
              "span_days": span, "unused_days": unused, "pro_rata_amount": pro_rata}
    free_look = (cancel_date - contract.plan_sold_on).days <= free_look_days and not claims_paid
    if full or free_look:
        return RefundQuote(**common, rule="product_returned" if full else "free_look", fee=0,
                           claims_paid=claims_paid, amount=contract.price)
    amount = money.round_down_to_step(max(0, pro_rata - fee - claims_paid),
                                      money.stripe_step(contract.currency))
    return RefundQuote(**common, rule="pro_rata", fee=fee, claims_paid=claims_paid,
                       amount=amount)


def quote_cancellation(*, session: Session, settings: Settings, contract: Contract,
                       cancel_date: date, claims_paid: int | None = None) -> RefundQuote:
    """The refund staff would confirm now; refuses contracts that cannot be cancelled.

    ``claims_paid`` defaults to every payout recorded on the contract.
    """
    contracts.check_transition(contract, "cancelled")
    if claims_paid is None:
        claims_paid = claims_paid_total(session, contract)
    return quote_refund(contract=contract, cancel_date=cancel_date,
                        fee=settings.cancellation_fee, claims_paid=claims_paid,
                        free_look_days=settings.free_look_days)


@dataclass(frozen=True)
class CancelDating:
    """How a cancellation date was allowed, and the date its refund is booked on."""

    cancel_date: date
    days_back: int  # days from the cancellation date to today
    window_days: int  # the store's back-dating window (WARRANTY_CANCEL_BACKDATE_DAYS)
    backdate_reason: str  # why an admin went back further than the window ("" within it)
    booked_on: date  # the cancel date, or the first open day for an adjustment

    @property
    def adjustment(self) -> bool:
        """True when the date lies in a closed month: booked later, naming the date."""
        return self.booked_on != self.cancel_date

    def audit(self) -> dict:
        """What the cancellation's audit row keeps of it."""
        data: dict = {"days_back": self.days_back, "window_days": self.window_days,
                      "booked_on": self.booked_on.isoformat()}
        if self.backdate_reason:
            data["backdate_reason"] = self.backdate_reason
        if self.adjustment:
            data["adjustment"] = True
        return data


def check_cancel_date(*, session: Session, settings: Settings, cancel_date: date, today: date,
                      role: str, backdate_reason: str = "", book_as_adjustment: bool = False,
                      quote_only: bool = False) -> CancelDating:
    """The bounds of a cancellation date, judged for the caller's role.

    Never in the future. At most ``settings.cancel_backdate_days`` back for anyone; further
    only for an admin who gives a reason (403 ``backdate_not_allowed`` for other roles, 422
    ``backdate_reason_required`` without one). Never in a closed month: 409
    ``period_closed`` naming it, unless the caller asks to ``book_as_adjustment``, when the
    refund is still worked out on that date but booked on the first open day (warranty.periods).
    The books' shared lock is held to the end of the transaction; ``quote_only`` takes no
    lock and lets an admin quote beyond the window before giving the reason.
    """
    if cancel_date > today:
        raise ValidationFailed(f"cancel date {cancel_date} is in the future (today is {today})",
                               code="invalid_cancel_date")
    days_back = (today - cancel_date).days
    window = settings.cancel_backdate_days
    reason = (backdate_reason or "").strip()
    if days_back > window:
        if role != "admin":
            raise Forbidden(f"a cancellation may be dated at most {window} days back (from "
                            f"{today - timedelta(days=window)}); {cancel_date} is {days_back} "
                            "days back, which only an admin can do, with a reason",
                            code="backdate_not_allowed",
                            details={"window_days": window, "days_back": days_back})
        if not reason and not quote_only:
            raise ValidationFailed(f"{cancel_date} is {days_back} days back, beyond the "
                                   f"{window}-day window: give a backdate_reason",
                                   code="backdate_reason_required")
    else:
        reason = ""
    open_from = periods.first_open_day(session) if quote_only else periods.hold(session)
    booked_on = cancel_date
    if open_from is not None and cancel_date < open_from:
        if not book_as_adjustment:
            raise periods.closed_error(cancel_date, open_from, what="cancel date")
        booked_on = open_from
    return CancelDating(cancel_date=cancel_date, days_back=days_back, window_days=window,
                        backdate_reason=reason, booked_on=booked_on)


# Which refund (if any) already gave a cancelled plan's money back: (contract, amount) → it.
Cover = Callable[[Contract, int], Refund | None]


def lock_order(session: Session, order_id: int) -> Order:
    """The order re-read under its row lock: cancellations and returns on one order take it
    first (before its lines and contracts), so what was already promised back on it
    (``promised_on_order``) cannot change between the check and the new refund."""
    write_transaction(session)
    return session.exec(select(Order).where(Order.id == order_id).with_for_update(key_share=True)
                        .execution_options(populate_existing=True)).one()


def cancel_with_refund(*, session: Session, settings: Settings, contract: Contract,
                       quote: RefundQuote, actor: str, reason: str, action: str,
                       cover: Cover | None = None,
                       dating: CancelDating | None = None) -> Refund:
    """Write the pending refund, the cancellation and its notices (caller commits).

    ``cover`` names a refund Stripe already made that holds this plan's money (a refund in
    Stripe's dashboard): the plan's refund is then recorded as made, with no Stripe call.
    The refund is booked on ``dating.booked_on`` (checked by the caller), or on the cancel
    date under the books' lock.
    """
    order = session.get(Order, contract.order_id)
    if quote.amount > contract.price:
        raise Conflict("a refund cannot exceed what the plan cost", code="over_refund")
    covering = cover(contract, quote.amount) if cover is not None and quote.amount else None
    if covering is None:
        already = contract_refunds.promised_on_order(session, order)
        if already + quote.amount > order.total_amount:
            raise Conflict(f"order {order.public_id} has "
                           f"{money.format_amount(already, order.currency)} refunded already; "
                           "this refund would exceed what was paid", code="over_refund")
        if quote.amount and not order.stripe_payment_intent_id:
            raise Conflict(f"order {order.public_id} has no Stripe payment to refund",
                           code="no_payment_to_refund")
    if action != "cancelled":
        # The product went back: its open claims are settled with the plan.
        workflow.settle_on_return(session=session, settings=settings, contract=contract,
                                actor=actor)
    booked_on = (dating.booked_on if dating is not None
                 else periods.booking_date(session, quote.cancel_date))
    # The tax it gives back: the plan's tax in proportion, by the store's rounding mode.
    tax = settings.tax.refund_tax(line_tax=contract.tax, line_gross=contract.price,
                                  refund=quote.amount, left=contract.tax)
    refund = Refund(contract_id=contract.id, order_id=order.id, amount=quote.amount, tax=tax,
                    currency=contract.currency, cancel_date=quote.cancel_date,
                    booked_on=booked_on, fee=quote.fee,
                    claims_paid=quote.claims_paid, reason=reason[:1000],
                    idempotency_key=contract_refunds.refund_key(contract))
    if not quote.amount:
        # Nothing to send back: no Stripe call, the refund is complete as recorded.
        refund.status, refund.completed_at = "not_needed", utcnow()
    session.add(refund)
    data: dict = {"refund": {**quote.as_dict(), "tax": tax}}
    if dating is not None:
        data["dating"] = dating.audit()
    contracts.transition(session=session, contract=contract, to_status="cancelled", actor=actor,
                         action=action, reason=reason, data=data)
    session.flush()
    if covering is not None:
        contract_refunds.record_covered(session=session, refund=refund, covering=covering)
    notifications.notify_cancelled(session=session, settings=settings, contract=contract,
                                   order=order, refund=refund)
    return refund


def open_claims_dict(session: Session, contract: Contract) -> list[dict]:
    """The plan's open claims as the quote and the refusal name them."""
    return [{"claim": claim.public_id, "status": claim.status,
             "incident_date": claim.incident_date.isoformat()}
            for claim in workflow.open_claims(session, contract)]


def check_no_open_claims(session: Session, contract: Contract) -> None:
    """Refuse to cancel a (locked) plan while a claim on it is open (409 ``claims_open``).

    The refund is worked out with the claims paid by the cancellation, and a cancelled plan
    pays nothing more: a claim in review or approved would either be paid on a plan already
    refunded, or silently lost. Staff decide it first (pay, deny or close it), then cancel
    with the refund that follows.
    """
    still_open = open_claims_dict(session, contract)
    if still_open:
        names = ", ".join(f"{c['claim']} ({c['status']})" for c in still_open)
        raise Conflict(f"{contract.public_id} has open claims: {names}; pay, deny or close "
                       "them first, then cancel", code="claims_open",
                       details={"claims": still_open})


def cancel_contract(*, session: Session, settings: Settings, contract_id: str,
                    cancel_date: date, today: date, actor: str, reason: str,
                    role: str = "support", backdate_reason: str = "",
                    book_as_adjustment: bool = False, expected_amount: int | None = None,
                    claims_paid: int | None = None, covered_by: str | None = None) -> Refund:
    """Confirm a quoted cancellation: contract cancelled, refund pending (caller commits).

    The date is bounded for the caller's ``role`` (``check_cancel_date``); the books' lock is
    taken first and held to the commit, so a month cannot close between the check and the
    refund's booking. ``expected_amount`` is the quoted refund staff saw; if the contract
    changed since (a claim was paid, ...) the amount differs and nothing happens
    (``quote_changed``). ``covered_by`` names a refund made in Stripe's dashboard that
    already gave this plan's money back: the refund is recorded as made by it, and nothing
    is sent to Stripe (``warranty.contracts.refunds.cover_by`` checks it holds the amount).
    """
    dating = check_cancel_date(session=session, settings=settings, cancel_date=cancel_date,
                               today=today, role=role, backdate_reason=backdate_reason,
                               book_as_adjustment=book_as_adjustment)
    order_id = queries.get_contract(session, contract_id).order_id
    order = lock_order(session, order_id)
    contract = queries.get_contract(session, contract_id, lock=True)
    quote = quote_cancellation(session=session, settings=settings, contract=contract,
                               cancel_date=cancel_date, claims_paid=claims_paid)
    check_no_open_claims(session, contract)
    if expected_amount is not None and expected_amount != quote.amount:
        raise Conflict(f"the refund is now {quote.amount}, not {expected_amount}; "
                       "ask for a new quote", code="quote_changed",
                       details={"quote": quote.as_dict()})
    cover = None
    if covered_by:
        cover = contract_refunds.cover_by(session, order, covered_by)
    return cancel_with_refund(session=session, settings=settings, contract=contract, quote=quote,
                              actor=actor, reason=reason, action="cancelled", dating=dating,
                              cover=cover)


def cancel_refunded_plan(*, session: Session, settings: Settings, contract: Contract,
                         today: date, actor: str, reason: str, cover: Cover) -> Refund:
    """Cancel an active plan whose payment Stripe refunded in full (caller commits).

    Like a returned product: the whole price, recorded as given back by the refund ``cover``
    names (no second Stripe refund).
    """
    quote = quote_refund(contract=contract, cancel_date=max(today, contract.plan_sold_on),
                         full=True)
    return cancel_with_refund(session=session, settings=settings, contract=contract, quote=quote,
                              actor=actor, reason=reason, action="payment_refunded", cover=cover)


# Why a customer cannot cancel a plan on its page (message keys ``selfcancel.<code>``).
SELF_CANCEL_REFUSALS = ("off", "not_active", "claims_open", "after_free_look",
                        "no_payment", "term_ended")


@dataclass(frozen=True)
class SelfCancel:
    """Whether the plan's owner may cancel it on its page today, and with what refund."""

    quote: RefundQuote | None  # the refund cancelling today gives (None: not cancellable)
    refused: str | None  # one of SELF_CANCEL_REFUSALS, or None when the customer may cancel


def self_cancel_quote(*, session: Session, settings: Settings, contract: Contract,
                      today: date) -> SelfCancel:
    """What the customer's own contract page offers (reads only).

    The store decides (``WARRANTY_CUSTOMER_CANCELLATION``): ``off``; ``free_look`` (only while
    cancelling today is a full refund); ``any`` (the pro-rata refund of the day). A plan
    with an open claim, or whose order was not paid through Stripe, goes through staff.
    """
    mode = settings.customer_cancellation
    if mode == "off":
        return SelfCancel(None, "off")
    if contract.status != "active":
        return SelfCancel(None, "not_active")
    try:
        quote = quote_cancellation(session=session, settings=settings, contract=contract,
                                   cancel_date=today)
    except Conflict:
        return SelfCancel(None, "term_ended")
    if mode == "free_look" and quote.rule != "free_look":
        return SelfCancel(quote, "after_free_look")
    if workflow.open_claims(session, contract):
        return SelfCancel(quote, "claims_open")
    order = session.get(Order, contract.order_id)
    if quote.amount and not order.stripe_payment_intent_id:
        return SelfCancel(quote, "no_payment")
    return SelfCancel(quote, None)


def cancel_by_customer(*, session: Session, settings: Settings, contract: Contract, email: str,
                       today: date, expected_amount: int) -> Refund:
    """The owner confirms the refund their page showed (caller commits; Stripe after it).

    Everything is decided again under the order's and the contract's locks
    (``cancel_contract``): a refund that moved since the page was shown is refused with
    ``quote_changed``; so is any refund other than the full price while the store allows
    only free-look cancellations (the pro-rata refund of a later day is always less).
    """
    offer = self_cancel_quote(session=session, settings=settings, contract=contract,
                              today=today)
    if offer.refused is not None:
        raise Conflict(f"{contract.public_id} cannot be cancelled here ({offer.refused})",
                       code=f"self_cancel_{offer.refused}")
    if settings.customer_cancellation == "free_look" and expected_amount != contract.price:
        raise Conflict("only a full refund can be confirmed here", code="quote_changed",
                       details={"quote": offer.quote.as_dict()})
    refund = cancel_contract(session=session, settings=settings, contract_id=contract.public_id,
                             cancel_date=today, today=today, actor=f"customer:{email}",
                             reason="cancelled by the customer on their contract page",
                             role="customer", expected_amount=expected_amount)
    locked = session.get(Contract, refund.contract_id)
    if text.normalize_email(locked.customer_email) != text.normalize_email(email):
        # Transferred while this request was on its way: not theirs to cancel any more.
        raise NotFound(f"no plan {contract.public_id}", code="unknown_contract")
    return refund
