"""Staff decisions on claims: approve, deny, request information, close; settling
claims on a return.

Functions take a ``session`` keyword and never commit; the views commit once.
"""

from __future__ import annotations

from sqlmodel import Session, select

from warranty.claims.models import (
    OPEN,
    TRANSITIONS,
    Claim,
    ClaimEvent,
)
from warranty.claims.payouts import payout_quote, year_cap_used_up
from warranty.claims.rules import CLAIMABLE
from warranty.claims.transitions import ClaimTransitionRefused, lock, transition
from warranty.contracts import lifecycle as contracts
from warranty.contracts import notices
from warranty.contracts.models import Contract
from warranty.core import i18n
from warranty.core.errors import Conflict, ValidationFailed
from warranty.core.settings import Settings

DECISIONS = ("repair", "replace", "reimburse")
# Repair-or-replace-only stores (WARRANTY_REPAIR_ONLY, the seller's own warranty): no cash.
REPAIR_ONLY_DECISIONS = ("repair", "replace")


class CashReimbursementRefused(ValidationFailed):
    """A reimbursement decision at a store that settles claims by repair or replacement
    only: the terms it sells under promise no cash."""

    code = "repair_or_replace_only"


def decisions(settings: Settings) -> tuple[str, ...]:
    """The decisions staff may take at this store."""
    return REPAIR_ONLY_DECISIONS if settings.repair_only else DECISIONS


def fulfil(session: Session, contract: Contract, *, claim: Claim, actor: str, why: str) -> None:
    """Mark the plan fulfilled (once), naming the claim that did it."""
    contract = session.exec(select(Contract).where(Contract.id == contract.id)
                            .with_for_update(key_share=True).execution_options(populate_existing=True)).one()
    if contract.status in CLAIMABLE:
        contracts.transition(session=session, contract=contract, to_status="fulfilled",
                             actor=actor, action="fulfilled", reason=why,
                             data={"claim": claim.public_id,
                                   "coverage_year": claim.coverage_year})
        notices.notify_fulfilled(session=session, contract=contract, reason=why,
                                 claim=claim.public_id, coverage_year=claim.coverage_year)


def approve(*, session: Session, settings: Settings, claim: Claim, decision: str, amount: int,
            actor: str, note: str = "") -> ClaimEvent:
    """Approve as repair, replacement or reimbursement of ``amount`` (before the deductible)."""
    if decision == "reimburse" and settings.repair_only:
        raise CashReimbursementRefused(
            "this store settles claims by repair or replacement only "
            "(WARRANTY_REPAIR_ONLY): approve a repair or a replacement instead",
            details=[{"at": "decision", "message": i18n.t("en", "repair_only.refused")}])
    if decision not in DECISIONS:
        raise ValidationFailed(f"decision must be one of {', '.join(DECISIONS)}",
                               code="invalid_decision")
    if amount <= 0:
        raise ValidationFailed("the approved amount must be more than 0", code="invalid_amount")
    contract = lock(session, claim)
    if contract.status not in CLAIMABLE:
        raise Conflict(f"the plan is {contract.status}; deny or close the claim instead",
                       code="contract_not_active")
    if claim.status not in TRANSITIONS or "approved" not in TRANSITIONS[claim.status]:
        raise ClaimTransitionRefused(f"claim {claim.public_id} is {claim.status}; "
                                     "it cannot become approved")
    claim.decision, claim.approved_amount = decision, amount
    quote = payout_quote(session, contract, claim)
    return transition(session=session, settings=settings, claim=claim, to_status="approved",
                      actor=actor, action="approved", reason=note,
                      data={"decision": decision, "amount": amount, "payout": quote.amount})


def deny(*, session: Session, settings: Settings, claim: Claim, reason: str,
         actor: str) -> ClaimEvent:
    """Deny with a reason the customer will read."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("give the customer a reason for the denial", code="reason_required")
    lock(session, claim)
    if "denied" not in TRANSITIONS.get(claim.status, set()):
        raise ClaimTransitionRefused(f"claim {claim.public_id} is {claim.status}; "
                                     "it cannot become denied")
    claim.deny_code, claim.deny_reason = "staff", reason[:1000]
    return transition(session=session, settings=settings, claim=claim, to_status="denied",
                      actor=actor, action="denied", reason=reason)


def request_info(*, session: Session, settings: Settings, claim: Claim, message: str,
                 actor: str) -> ClaimEvent:
    """Ask the customer for more information; their claim form opens again."""
    message = (message or "").strip()
    if not message:
        raise ValidationFailed("say what information is needed", code="message_required")
    lock(session, claim)
    if "info_requested" not in TRANSITIONS.get(claim.status, set()):
        raise ClaimTransitionRefused(f"claim {claim.public_id} is {claim.status}; "
                                     "it cannot become info_requested")
    claim.info_request = message[:2000]
    return transition(session=session, settings=settings, claim=claim,
                      to_status="info_requested", actor=actor, action="info_requested",
                      reason=message)


def close(*, session: Session, settings: Settings, claim: Claim, reason: str,
          actor: str) -> ClaimEvent:
    """Close an approved claim without a payout (nothing payable, or the customer withdrew).

    When nothing was payable because the cap of the claim's coverage year is used up, the
    plan is fulfilled as a payout using it up would have done.
    """
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("say why the claim closes without a payout",
                               code="reason_required")
    contract = lock(session, claim)
    event = transition(session=session, settings=settings, claim=claim, to_status="closed",
                       actor=actor, action="closed", reason=reason)
    if year_cap_used_up(session, contract, claim.coverage_year):
        fulfil(session, contract, claim=claim, actor=actor, why="liability cap used up")
    return event


def open_claims(session: Session, contract: Contract) -> list[Claim]:
    """The plan's claims still open (filed, in review, waiting for information, approved
    and not yet paid), oldest first; read under the contract's lock they cannot change, as
    every filing and decision locks the contract first."""
    return list(session.exec(select(Claim).where(Claim.contract_id == contract.id,
                                                 Claim.status.in_(sorted(OPEN)))
                             .order_by(Claim.id)).all())


def settle_on_return(*, session: Session, settings: Settings, contract: Contract,
                     actor: str) -> list[Claim]:
    """Settle the open claims of a plan cancelled because its product went back (a return,
    a refund of the payment): the customer has the product's and the whole plan's money
    back, so nothing more is paid on it. Undecided claims are denied, approved ones closed,
    each with ``product_returned`` (audit row, mail, store webhook). Call it with the
    contract locked, before the cancellation: the claims are locked after it."""
    settled = []
    for claim in open_claims(session, contract):
        lock(session, claim)
        why = i18n.t("en", "deny.product_returned")
        if claim.status == "approved":
            transition(session=session, settings=settings, claim=claim, to_status="closed",
                       actor=actor, action="product_returned", reason=why)
        else:
            claim.deny_code, claim.deny_reason = "product_returned", why
            transition(session=session, settings=settings, claim=claim, to_status="denied",
                       actor=actor, action="product_returned", reason=why)
        settled.append(claim)
    return settled
