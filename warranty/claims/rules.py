"""The automatic claim rules: input problems, the filing deadline, the evaluation of a new claim."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from warranty.contracts.models import Contract
from warranty.core import money
from warranty.core.errors import ValidationFailed

FAILURE_TYPES = ("breakdown", "accident")
MAX_DESCRIPTION = 5000
# Contract statuses whose claims are judged, approved and paid: an expired plan still pays
# for incidents inside its term (claimed within the filing window after it).
CLAIMABLE = frozenset({"active", "expired"})


class ClaimInputInvalid(ValidationFailed):
    """Claim fields that cannot be accepted; ``problems`` lists (field, problem code)."""

    code = "invalid_claim"

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        details = [{"at": field, "code": code, "message": PROBLEM_TEXT[code]}
                   for field, code in problems]
        summary = "; ".join(f"{d['at']}: {d['message']}" for d in details)
        super().__init__(f"invalid claim: {summary}", details=details)


PROBLEM_TEXT = {
    "required": "this field is required",
    "in_future": "the incident date cannot be in the future",
    "invalid_choice": "choose one of the listed options",
    "too_long": f"at most {MAX_DESCRIPTION} characters",
    "negative": "the amount cannot be negative",
}


@dataclass(frozen=True)
class RuleOutcome:
    """What the automatic rules decided: denied, approved or in_review, and why."""

    status: str
    code: str | None  # a DENY_CODES entry, "auto_approved" or None (review)
    reason: str


def answer_problems(message: str | None) -> list[tuple[str, str]]:
    """Problems of a customer's answer to a request for more information, as (field, code)."""
    text = (message or "").strip()
    if not text:
        return [("message", "required")]
    if len(text) > MAX_DESCRIPTION:
        return [("message", "too_long")]
    return []


def input_problems(*, incident_date: date | None, failure_type: str | None,
                   description: str | None, estimated_amount: int | None,
                   today: date) -> list[tuple[str, str]]:
    """Field problems of a claim's input as (field, code); empty when it can be filed."""
    problems = []
    if incident_date is None:
        problems.append(("incident_date", "required"))
    elif incident_date > today:
        problems.append(("incident_date", "in_future"))
    if failure_type not in FAILURE_TYPES:
        problems.append(("failure_type", "invalid_choice"))
    text = (description or "").strip()
    if not text:
        problems.append(("description", "required"))
    elif len(text) > MAX_DESCRIPTION:
        problems.append(("description", "too_long"))
    if estimated_amount is not None and estimated_amount < 0:
        problems.append(("estimated_amount", "negative"))
    return problems


def filing_deadline(contract: Contract, days_after_term: int) -> date:
    """The last day a claim on the plan may be filed: the term end plus the filing window."""
    return contract.term_end + timedelta(days=days_after_term)


def takes_claims(contract: Contract, *, today: date, days_after_term: int) -> bool:
    """True when a claim filed today can be accepted (the rules judge the incident itself).

    Active and expired plans take claims until the filing deadline; cancelled and fulfilled
    plans take none.
    """
    return contract.status in CLAIMABLE and today <= filing_deadline(contract, days_after_term)


def evaluate(contract: Contract, *, incident_date: date, failure_type: str,
             estimated_amount: int | None, auto_approve_under: int, filed_on: date,
             days_after_term: int, cancelled_on: date | None = None,
             cap_left: int | None = None, allow_auto: bool = True) -> RuleOutcome:
    """The automatic rules, in order, judged as of the incident and filing dates.

    Anything they cannot decide goes to review. The plan's status matters only where it is
    a fact about the plan rather than about time: a cancelled or fulfilled plan takes no new
    claims, while an expired plan is judged like an active one, by its dates (the incident
    inside the term, the claim filed at most ``days_after_term`` days after the term's end).
    ``cancelled_on`` is the cancellation date of a cancelled plan; ``cap_left`` what is left
    of the liability cap of the incident's coverage year (None: not checked).
    """
    if contract.status == "cancelled":
        if cancelled_on is None or incident_date >= cancelled_on:
            return RuleOutcome("denied", "not_active",
                               "the plan was not active on the date of the incident (cancelled"
                               f"{f' on {cancelled_on}' if cancelled_on else ''})")
        return RuleOutcome("denied", "plan_cancelled",
                           f"the plan was cancelled on {cancelled_on} and its refund settled "
                           "it; a cancelled plan takes no new claims")
    if contract.status == "fulfilled":
        return RuleOutcome("denied", "plan_fulfilled",
                           "the plan has been fulfilled (the product was replaced or its cover "
                           "used up); it takes no new claims")
    if contract.status not in CLAIMABLE:
        return RuleOutcome("denied", "not_active", f"the plan is {contract.status}")
    if not contract.purchase_date <= incident_date <= contract.term_end:
        return RuleOutcome("denied", "outside_term",
                           f"the incident is outside the plan's term "
                           f"({contract.purchase_date} to {contract.term_end})")
    deadline = filing_deadline(contract, days_after_term)
    if filed_on > deadline:
        return RuleOutcome("denied", "filed_too_late",
                           f"claims on this plan could be filed until {deadline} "
                           f"({days_after_term} days after the term ended on "
                           f"{contract.term_end}); this one was filed on {filed_on}")
    if failure_type == "accident" and contract.coverage != "accident":
        return RuleOutcome("denied", "accident_not_covered",
                           "accidental damage is not covered by a standard plan")
    if contract.waiting_until is not None and incident_date < contract.waiting_until:
        return RuleOutcome("denied", "waiting_period",
                           f"the incident is in the waiting period (before "
                           f"{contract.waiting_until})")
    if failure_type == "breakdown" and incident_date < contract.breakdown_start:
        return RuleOutcome("denied", "manufacturer_warranty",
                           "covered by the manufacturer: the manufacturer's warranty runs until "
                           f"{contract.breakdown_start - timedelta(days=1)}")
    if cap_left is not None and cap_left <= 0:
        return RuleOutcome("denied", "cap_used_up",
                           "the liability cap of the incident's coverage year is used up by "
                           "what was paid on the plan before")
    if (allow_auto and auto_approve_under > 0 and estimated_amount is not None
            and 0 < estimated_amount < auto_approve_under):
        return RuleOutcome("approved", "auto_approved",
                           f"estimate below the automatic approval limit of "
                           f"{money.format_amount(auto_approve_under, contract.currency)}")
    return RuleOutcome("in_review", None, "needs review by staff")
