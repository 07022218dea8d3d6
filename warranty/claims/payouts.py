"""Liability caps, payout quotes, recorded payouts and amounts typed by staff."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa
from sqlmodel import Session, select

from warranty.claims.models import Claim, Payout
from warranty.claims.rules import CLAIMABLE
from warranty.claims.transitions import ClaimTransitionRefused, lock, transition
from warranty.contracts import lifecycle as contracts
from warranty.contracts import notices
from warranty.contracts.models import Contract
from warranty.core import money
from warranty.core.dates import store_today
from warranty.core.errors import Conflict, ValidationFailed
from warranty.core.settings import Settings
from warranty.core.text import halfwidth
from warranty.periods import booking as periods

PAYOUT_METHODS = ("bank_transfer", "store_credit", "repair_vendor", "replacement")
# A repair-or-replace-only store (WARRANTY_REPAIR_ONLY) pays the repairer or the replacement,
# never the customer in money or its equivalent.
REPAIR_ONLY_METHODS = ("repair_vendor", "replacement")


class CashPayoutRefused(ValidationFailed):
    """A payout to the customer (bank transfer, store credit) at a repair-or-replace-only
    store."""

    code = "repair_or_replace_only"


def payout_methods(settings: Settings) -> tuple[str, ...]:
    """The payout methods this store may record."""
    return REPAIR_ONLY_METHODS if settings.repair_only else PAYOUT_METHODS


@dataclass(frozen=True)
class PayoutQuote:
    """How a claim's payout is worked out (minor units)."""

    approved: int
    deductible: int
    after_deductible: int
    coverage_year: int
    percent: Decimal
    cap: int
    paid_before: int
    left: int
    amount: int


def schedule_percent(contract: Contract, year: int) -> Decimal:
    """The liability cap percentage of a coverage year; the last value holds for later years."""
    schedule = contract.liability_schedule or ["100"]
    return Decimal(str(schedule[min(year, len(schedule)) - 1]))


def liability_cap(contract: Contract, year: int) -> int:
    """The cap of a coverage year: product price × that year's percentage."""
    return money.percent_of(contract.product_price, schedule_percent(contract, year))


def claims_paid_total(session: Session, contract: Contract) -> int:
    """Everything paid out on the contract so far, all years (minor units)."""
    total = session.exec(select(sa.func.coalesce(sa.func.sum(Payout.amount), 0))
                         .where(Payout.contract_id == contract.id)).one()
    return int(total)


def year_cap_used_up(session: Session, contract: Contract, year: int) -> bool:
    """True when everything paid on the plan reaches the cap of coverage year ``year``."""
    return claims_paid_total(session, contract) >= liability_cap(contract, year)


def payout_quote(session: Session, contract: Contract, claim: Claim) -> PayoutQuote:
    """Approved cost less the deductible, capped by what is left of the year's cap."""
    approved = claim.approved_amount or 0
    after = max(approved - contract.deductible, 0)
    percent = schedule_percent(contract, claim.coverage_year)
    cap = liability_cap(contract, claim.coverage_year)
    paid = claims_paid_total(session, contract)
    left = max(cap - paid, 0)
    return PayoutQuote(approved=approved, deductible=contract.deductible, after_deductible=after,
                       coverage_year=claim.coverage_year, percent=percent, cap=cap,
                       paid_before=paid, left=left, amount=min(after, left))


def record_payout(*, session: Session, settings: Settings, claim: Claim, method: str,
                  reference: str, actor: str) -> Payout:
    """Pay an approved claim once; a replacement or a used-up cap fulfils the contract.

    The cap that counts is the one of the claim's coverage year: the contract is fulfilled
    when everything paid, this payout included, reaches it. A replacement is recorded even
    when nothing is left to pay on it (the deductible or the cap take it all), with the
    amount it counts against the cap (0 then), and fulfils the contract.
    """
    if settings.repair_only and method in PAYOUT_METHODS and method not in REPAIR_ONLY_METHODS:
        raise CashPayoutRefused(f"this store settles claims by repair or replacement only "
                                f"(WARRANTY_REPAIR_ONLY): pay the repairer (repair_vendor) or "
                                f"the replacement, not {method}",
                                details=[{"at": "method", "message": "cash payouts are off"}])
    if method not in PAYOUT_METHODS:
        raise ValidationFailed(f"method must be one of {', '.join(PAYOUT_METHODS)}",
                               code="invalid_method")
    # Booked on the day it is paid; the books' lock keeps a month from closing meanwhile.
    booked_on = periods.booking_date(session, store_today(settings.timezone))
    # The contract's lock also keeps two payouts on it from spending the same part of the
    # cap, and a cancellation from quoting without this payout.
    contract = lock(session, claim)
    if claim.status != "approved":
        raise ClaimTransitionRefused(f"claim {claim.public_id} is {claim.status}; "
                                     "only an approved claim is paid")
    if contract.status not in CLAIMABLE:
        raise Conflict(f"the plan is {contract.status}; close the claim instead",
                       code="contract_not_active")
    quote = payout_quote(session, contract, claim)
    replaced = claim.decision == "replace"
    if quote.amount <= 0 and not replaced:
        raise Conflict("nothing is payable after the deductible and the liability cap; "
                       "close the claim instead", code="nothing_payable")
    payout = Payout(claim_id=claim.id, contract_id=contract.id, amount=quote.amount,
                    currency=contract.currency, method=method, reference=reference.strip()[:200],
                    actor=actor, booked_on=booked_on)
    session.add(payout)
    session.flush()
    transition(session=session, settings=settings, claim=claim, to_status="paid", actor=actor,
               action="paid", reason=f"{method} {reference}".strip(),
               data={"amount": quote.amount, "method": method, "reference": reference,
                     "cap": quote.cap, "left_before": quote.left})
    year_used_up = quote.paid_before + quote.amount >= quote.cap
    if replaced or year_used_up:
        why = "product replaced" if replaced else "liability cap used up"
        contracts.transition(session=session, contract=contract, to_status="fulfilled",
                             actor=actor, action="fulfilled", reason=why,
                             data={"claim": claim.public_id,
                                   "coverage_year": quote.coverage_year})
        notices.notify_fulfilled(session=session, contract=contract, reason=why,
                                 claim=claim.public_id, coverage_year=quote.coverage_year)
    return payout


def parse_amount(text: str, currency: str) -> int | None:
    """A customer- or staff-typed amount in major units ("12,000", "19.80", or full width as
    Japanese input methods type it: "１２，０００"); None if blank. Digits of other scripts
    are refused (422), never read by ``int()``."""
    cleaned = halfwidth(text or "").strip().replace(",", "").lstrip("¥$€£")
    if not cleaned:
        return None
    if not _AMOUNT.fullmatch(cleaned):
        raise ValidationFailed("write the amount as a number, such as 12000",
                               code="invalid_amount")
    try:
        return money.from_major(cleaned, currency)
    except money.MoneyError as exc:
        raise ValidationFailed(str(exc), code="invalid_amount") from None


_AMOUNT = re.compile(r"[0-9]{1,12}(\.[0-9]{1,3})?")
