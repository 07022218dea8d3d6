"""Claims: the automatic rules, one transition table with audit rows, decisions and payouts.

Functions take a ``session`` keyword and never commit; the views commit once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session, select

from warranty import contracts, i18n, magic_links, money, periods, uploads
from warranty.coverage import coverage_year
from warranty.dates import store_today, utcnow
from warranty.errors import Conflict, DomainError, NotFound, ValidationFailed
from warranty.mail import queue_mail
from warranty.models import (
    Claim,
    ClaimEvent,
    ClaimFile,
    Contract,
    MailMessage,
    NpsAnswer,
    Order,
    Payout,
)
from warranty.settings import Settings
from warranty.store_webhooks import queue_event
from warranty.text import halfwidth

FAILURE_TYPES = ("breakdown", "accident")
DECISIONS = ("repair", "replace", "reimburse")
PAYOUT_METHODS = ("bank_transfer", "store_credit", "repair_vendor", "replacement")
MAX_DESCRIPTION = 5000
NPS_LINK_MAX_AGE = 90 * 24 * 3600  # the NPS question stays answerable for 90 days

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

# The customer-facing reasons of the automatic rules (texts in warranty/i18n.py).
DENY_CODES = ("not_active", "plan_cancelled", "plan_fulfilled", "outside_term",
              "filed_too_late", "accident_not_covered", "waiting_period",
              "manufacturer_warranty", "cap_used_up", "product_returned")
# Claims not yet decided for good: a plan with one of these is not cancelled by staff.
OPEN = frozenset(status for status in TRANSITIONS if status not in FINAL)
# Contract statuses whose claims are judged, approved and paid: an expired plan still pays
# for incidents inside its term (claimed within the filing window after it).
CLAIMABLE = frozenset({"active", "expired"})


class ClaimTransitionRefused(Conflict):
    """A claim status change the transition table does not allow."""

    code = "claim_transition_refused"


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


# --- the automatic rules --------------------------------------------------------------


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


# --- status changes --------------------------------------------------------------------


def lock(session: Session, claim: Claim) -> Contract:
    """Lock the claim's contract, then the claim, and re-read both as last committed.

    Every change to a claim starts here, before it looks at the claim's status: of two
    concurrent decisions the second waits, then sees the first one's outcome and is refused
    (409) instead of overwriting it. The contract comes first because payouts and
    cancellations decide on it too, and one lock order everywhere (order, order line,
    contract, claim; docs/concurrency.md) leaves no room for deadlocks. Returns the contract.
    """
    contract = contracts.lock(session, claim.contract_id)
    session.exec(select(Claim).where(Claim.id == claim.id).with_for_update(key_share=True)
                 .execution_options(populate_existing=True)).one()
    return contract


def _unchanged(session: Session, claim: Claim) -> None:
    """Refuse a change decided on a status that is no longer the committed one (a caller
    that did not ``lock`` first would otherwise overwrite a concurrent decision)."""
    current = session.exec(select(Claim.status).where(Claim.id == claim.id)
                           .with_for_update(key_share=True)).one()
    if current != claim.status:
        raise ClaimTransitionRefused(f"claim {claim.public_id} became {current} meanwhile; "
                                     "reload it")


def transition(*, session: Session, settings: Settings, claim: Claim, to_status: str,
               actor: str, action: str, reason: str = "", data: dict | None = None
               ) -> ClaimEvent:
    """Move a claim to ``to_status``: audit row, customer mail, store webhook (no commit)."""
    allowed = TRANSITIONS.get(claim.status, set())
    if to_status not in allowed:
        raise ClaimTransitionRefused(f"claim {claim.public_id} is {claim.status}; "
                                     f"it cannot become {to_status}")
    _unchanged(session, claim)
    event = ClaimEvent(claim_id=claim.id, action=action, from_status=claim.status,
                       to_status=to_status, actor=actor, reason=reason[:2000], data=data or {})
    claim.status = to_status
    claim.updated_at = utcnow()
    if to_status in FINAL:
        claim.closed_at = claim.updated_at
    session.add(claim)
    session.add(event)
    contract = session.get(Contract, claim.contract_id)
    _mail_status(session, settings, claim, contract, reason)
    queue_event(session=session, type=f"claim.{to_status}",
                data=webhook_payload(session, claim, contract, reason))
    if to_status in FINAL:
        _mail_nps(session, settings, claim)
    return event


def webhook_payload(session: Session, claim: Claim, contract: Contract, reason: str = "") -> dict:
    """What the store's endpoint receives about a claim."""
    order = session.get(Order, contract.order_id)
    return {"claim": claim.public_id, "contract": contract.public_id,
            "order": order.store_order_ref if order else None, "status": claim.status,
            "failure_type": claim.failure_type, "incident_date": claim.incident_date.isoformat(),
            "decision": claim.decision, "approved_amount": claim.approved_amount,
            "currency": contract.currency, "reason": reason or None}


def _claim_link(settings: Settings, claim: Claim, email: str) -> str:
    """A mailed sign-in link for ``email`` that opens the claim's page once confirmed."""
    return magic_links.plans_link(settings, email, next=f"/my/claims/{claim.public_id}",
                                  lang=claim.lang)


def _mail_status(session: Session, settings: Settings, claim: Claim, contract: Contract,
                 reason: str) -> None:
    """Tell the plan's current owner (who may see the claim) about its new status, in the
    language the claim was filed in."""
    lang = claim.lang
    status = i18n.t(lang, f"status.{claim.status}")
    lines = [i18n.t(lang, "mail.status.body", product=contract.product_title,
                    claim=claim.public_id, status=status)]
    if claim.status == "denied":
        lines.append(i18n.t(lang, "mail.reason", reason=deny_text(claim, lang)))
    elif claim.status == "info_requested":
        lines.append(i18n.t(lang, "mail.info_requested", message=claim.info_request or ""))
    elif claim.status == "approved":
        lines.append(i18n.t(lang, f"decision.{claim.decision}"))
    owner = normalize_email(contract.customer_email)
    lines.append(i18n.t(lang, "mail.link", link=_claim_link(settings, claim, owner)))
    queue_mail(session=session, to=owner,
               subject=i18n.t(lang, "mail.status.subject", status=status),
               body="\n\n".join(lines) + "\n", kind=f"claim_{claim.status}")


def deny_text(claim: Claim, lang: str) -> str:
    """Why a claim was denied, for the customer: the rule's text or the staff's reason."""
    if claim.deny_code in DENY_CODES:
        return i18n.t(lang, f"deny.{claim.deny_code}")
    return claim.deny_reason or ""


def nps_link(settings: Settings, claim: Claim) -> str:
    """The signed link to the claim's 0-10 question, in the language the claim was filed in."""
    token = magic_links.make_token(settings, "nps", {"claim": claim.public_id})
    return f"{settings.base_url}/my/nps?token={token}&lang={claim.lang}"


def _mail_nps(session: Session, settings: Settings, claim: Claim) -> None:
    """Ask the plan's current owner the "would you recommend us" question once the claim is
    closed."""
    contract = session.get(Contract, claim.contract_id)
    queue_mail(session=session, to=normalize_email(contract.customer_email),
               subject=i18n.t(claim.lang, "nps.subject"),
               body=i18n.t(claim.lang, "nps.mail", link=nps_link(settings, claim)) + "\n",
               kind="claim_nps")


# --- filing and answering ----------------------------------------------------------------


def _raise_problems(problems: list[tuple[str, str]]) -> None:
    """Refuse invalid claim input."""
    if problems:
        raise ClaimInputInvalid(problems)


def _attach(session: Session, settings: Settings, claim: Claim, files: list[uploads.Upload],
            actor: str) -> list[ClaimFile]:
    """Check and store attachments for a claim (after every other check passed)."""
    already = session.exec(select(sa.func.count()).select_from(ClaimFile)
                           .where(ClaimFile.claim_id == claim.id)).one() if claim.id else 0
    types = uploads.check(files, already=already)
    rows = []
    for upload, kind in zip(files, types, strict=True):
        stored, digest = uploads.store(settings.upload_dir, upload.data, kind)
        row = ClaimFile(claim_id=claim.id, stored_name=stored,
                        original_name=uploads.named_for_type(
                            uploads.safe_name(upload.filename), kind), content_type=kind,
                        size=len(upload.data), sha256=digest, uploaded_by=actor)
        session.add(row)
        rows.append(row)
    return rows


def file_claim(*, session: Session, settings: Settings, contract: Contract, customer_email: str,
               incident_date: date | None, failure_type: str | None, description: str | None,
               estimated_amount: int | None, files: list[uploads.Upload], actor: str,
               today: date, lang: str = "ja", source: str = "web") -> Claim:
    """File a claim, attach its files and apply the automatic rules (no commit)."""
    _raise_problems(input_problems(incident_date=incident_date, failure_type=failure_type,
                                   description=description, estimated_amount=estimated_amount,
                                   today=today))
    uploads.check(files)  # refuse bad files before anything is written
    # The rules read the contract's status: a cancellation or expiry committing meanwhile
    # must be seen, and none may commit between the rules and this claim.
    owner = contract.customer_email
    contract = contracts.lock(session, contract.id)
    if normalize_email(contract.customer_email) != normalize_email(owner):
        # Transferred while this request was on its way: the caller checked the old owner.
        raise NotFound(f"no plan {contract.public_id}", code="unknown_contract")
    claim = Claim(contract_id=contract.id, customer_email=normalize_email(customer_email),
                  incident_date=incident_date, failure_type=failure_type,
                  description=description.strip(), estimated_amount=estimated_amount,
                  coverage_year=coverage_year(contract.purchase_date,
                                              max(incident_date, contract.purchase_date)),
                  lang=lang if lang in i18n.LANGUAGES else "ja", source=source)
    session.add(claim)
    session.flush()
    session.add(ClaimEvent(claim_id=claim.id, action="submitted", from_status=None,
                           to_status="submitted", actor=actor,
                           data={"contract": contract.public_id, "source": source}))
    _attach(session, settings, claim, files, actor)
    queue_event(session=session, type="claim.submitted",
                data=webhook_payload(session, claim, contract))
    _apply_rules(session=session, settings=settings, claim=claim, contract=contract,
                 filed_on=today, allow_auto=True)
    return claim


def _apply_rules(*, session: Session, settings: Settings, claim: Claim, contract: Contract,
                 filed_on: date, allow_auto: bool) -> ClaimEvent:
    """Run the automatic rules on a claim and move it accordingly.

    A claim that finds the cap of its coverage year used up fulfils the plan: caps never
    rise from one year to the next, so nothing can be paid for this year or any later one.
    """
    refund = contracts.refund_of(session, contract) if contract.status == "cancelled" else None
    cap_left = max(liability_cap(contract, claim.coverage_year)
                   - claims_paid_total(session, contract), 0)
    outcome = evaluate(contract, incident_date=claim.incident_date,
                       failure_type=claim.failure_type, estimated_amount=claim.estimated_amount,
                       auto_approve_under=settings.auto_approve_under, filed_on=filed_on,
                       days_after_term=settings.claim_filing_days_after_term,
                       cancelled_on=refund.cancel_date if refund else None, cap_left=cap_left,
                       allow_auto=allow_auto)
    if outcome.status == "denied":
        claim.deny_code, claim.deny_reason = outcome.code, outcome.reason
    elif outcome.status == "approved":
        claim.decision, claim.approved_amount = "reimburse", claim.estimated_amount
    event = transition(session=session, settings=settings, claim=claim,
                       to_status=outcome.status, actor="rules",
                       action=outcome.code or "to_review", reason=outcome.reason)
    if outcome.code == "cap_used_up":
        _fulfil(session, contract, claim=claim, actor="rules", why="liability cap used up")
    return event


def _fulfil(session: Session, contract: Contract, *, claim: Claim, actor: str, why: str) -> None:
    """Mark the plan fulfilled (once), naming the claim that did it."""
    contract = session.exec(select(Contract).where(Contract.id == contract.id)
                            .with_for_update(key_share=True).execution_options(populate_existing=True)).one()
    if contract.status in CLAIMABLE:
        contracts.transition(session=session, contract=contract, to_status="fulfilled",
                             actor=actor, action="fulfilled", reason=why,
                             data={"claim": claim.public_id,
                                   "coverage_year": claim.coverage_year})


def filing_date(settings: Settings, claim: Claim) -> date:
    """The store-local date a claim was filed (the filing window is judged on it)."""
    return store_today(settings.timezone, claim.created_at)


def resubmit(*, session: Session, settings: Settings, claim: Claim, incident_date: date | None,
             failure_type: str | None, description: str | None, estimated_amount: int | None,
             files: list[uploads.Upload], actor: str, today: date) -> ClaimEvent:
    """The customer's answer to "more information, please": updated fields, more files."""
    contract = lock(session, claim)
    if claim.status != "info_requested":
        raise ClaimTransitionRefused(f"claim {claim.public_id} is {claim.status}; "
                                     "it is not waiting for more information")
    _raise_problems(input_problems(incident_date=incident_date, failure_type=failure_type,
                                   description=description, estimated_amount=estimated_amount,
                                   today=today))
    before = {"incident_date": claim.incident_date.isoformat(),
              "failure_type": claim.failure_type, "estimated_amount": claim.estimated_amount}
    _attach(session, settings, claim, files, actor)
    claim.incident_date, claim.failure_type = incident_date, failure_type
    claim.description, claim.estimated_amount = description.strip(), estimated_amount
    claim.coverage_year = coverage_year(contract.purchase_date,
                                        max(incident_date, contract.purchase_date))
    session.add(ClaimEvent(claim_id=claim.id, action="info_provided", from_status=claim.status,
                           to_status=claim.status, actor=actor,
                           data={"before": before, "files_added": len(files)}))
    # Staff asked for this answer, so it goes back to them rather than to auto-approval.
    # The filing window is judged on the day the claim was first filed, not on the answer.
    return _apply_rules(session=session, settings=settings, claim=claim, contract=contract,
                        filed_on=filing_date(settings, claim), allow_auto=False)


def add_files(*, session: Session, settings: Settings, claim: Claim,
              files: list[uploads.Upload], actor: str) -> list[ClaimFile]:
    """Attach more files to an open claim (the API sends them one request each)."""
    lock(session, claim)  # its status and its file count, as committed
    if claim.status not in ACCEPTS_FILES:
        raise Conflict(f"claim {claim.public_id} is {claim.status}; it takes no more files",
                       code="claim_closed")
    rows = _attach(session, settings, claim, files, actor)
    session.add(ClaimEvent(claim_id=claim.id, action="files_added", from_status=claim.status,
                           to_status=claim.status, actor=actor,
                           data={"files": [r.public_id for r in rows]}))
    return rows


# --- staff decisions ---------------------------------------------------------------------


def approve(*, session: Session, settings: Settings, claim: Claim, decision: str, amount: int,
            actor: str, note: str = "") -> ClaimEvent:
    """Approve as repair, replacement or reimbursement of ``amount`` (before the deductible)."""
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
        _fulfil(session, contract, claim=claim, actor=actor, why="liability cap used up")
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


# --- payouts ---------------------------------------------------------------------------


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
    return payout


# --- reading ---------------------------------------------------------------------------


def normalize_email(email: str) -> str:
    """Emails compare case-insensitively, without surrounding spaces."""
    return (email or "").strip().lower()


def get_claim(session: Session, public_id: str) -> Claim:
    """A claim by its public id, or NotFound."""
    claim = session.exec(select(Claim).where(Claim.public_id == public_id)).first()
    if claim is None:
        raise NotFound(f"no claim {public_id}", code="unknown_claim")
    return claim


def get_claim_for(session: Session, public_id: str, email: str) -> Claim:
    """A claim on a plan the customer owns now (a transfer moves its claims to the new
    owner); anyone else's is reported exactly like a missing one."""
    row = session.exec(select(Claim, Contract.customer_email)
                       .join(Contract, Contract.id == Claim.contract_id)
                       .where(Claim.public_id == public_id)).first()
    if row is None or normalize_email(row[1]) != normalize_email(email):
        raise NotFound(f"no claim {public_id}", code="unknown_claim")
    return row[0]


def get_contract_for(session: Session, public_id: str, email: str) -> Contract:
    """A customer's own plan; someone else's is reported exactly like a missing one."""
    contract = session.exec(select(Contract).where(Contract.public_id == public_id)).first()
    if contract is None or normalize_email(contract.customer_email) != normalize_email(email):
        raise NotFound(f"no plan {public_id}", code="unknown_contract")
    return contract


def get_file(session: Session, claim: Claim, file_id: str) -> ClaimFile:
    """One of the claim's files, or NotFound."""
    row = session.exec(select(ClaimFile).where(ClaimFile.public_id == file_id,
                                               ClaimFile.claim_id == claim.id)).first()
    if row is None:
        raise NotFound(f"no file {file_id}", code="unknown_file")
    return row


def plans_for(session: Session, email: str) -> list[Contract]:
    """The customer's plans, newest first."""
    return list(session.exec(
        select(Contract).where(sa.func.lower(Contract.customer_email) == normalize_email(email))
        .order_by(Contract.id.desc())).all())


def claims_for(session: Session, email: str) -> list[Claim]:
    """The claims on the plans a customer owns now, whoever filed them, newest first."""
    return list(session.exec(
        select(Claim).join(Contract, Contract.id == Claim.contract_id)
        .where(sa.func.lower(Contract.customer_email) == normalize_email(email))
        .order_by(Claim.id.desc())).all())


def order_plans(session: Session, email: str, order_ref: str) -> list[Contract]:
    """The plans of the orders with this reference that ``email`` owns now, newest first:
    what an email and order reference may see (nothing of other orders)."""
    return list(session.exec(
        select(Contract).join(Order, Order.id == Contract.order_id)
        .where(sa.func.lower(Contract.customer_email) == normalize_email(email),
               Order.store_order_ref == (order_ref or "").strip())
        .order_by(Contract.id.desc())).all())


def timeline(session: Session, claim: Claim) -> list[ClaimEvent]:
    """The claim's audit rows, oldest first."""
    return list(session.exec(select(ClaimEvent).where(ClaimEvent.claim_id == claim.id)
                             .order_by(ClaimEvent.id)).all())


def files_of(session: Session, claim: Claim) -> list[ClaimFile]:
    """The claim's attachments, in upload order."""
    return list(session.exec(select(ClaimFile).where(ClaimFile.claim_id == claim.id)
                             .order_by(ClaimFile.id)).all())


def payout_of(session: Session, claim: Claim) -> Payout | None:
    """The claim's payout, if paid."""
    return session.exec(select(Payout).where(Payout.claim_id == claim.id)).first()


@dataclass(frozen=True)
class QueueFilter:
    """The staff queue's filters; None means any."""

    status: str | None = None
    category: str | None = None
    date_from: date | None = None  # filed on or after (store-local date)
    date_to: date | None = None  # filed on or before (store-local date)


# Filter dates are clamped to this range: no claim is filed outside it, and the extremes of
# ``date`` (year 1, year 9999) overflow once shifted by a day or a time zone.
_FILTER_DAYS = (date(1900, 1, 1), date(9000, 1, 1))


def _day_start(day: date, timezone: str) -> datetime:
    """The UTC instant a store-local calendar day begins."""
    day = min(max(day, _FILTER_DAYS[0]), _FILTER_DAYS[1])
    return datetime.combine(day, time.min, tzinfo=ZoneInfo(timezone))


def queue(session: Session, flt: QueueFilter, *, timezone: str, limit: int = 100,
          offset: int = 0) -> tuple[list[tuple[Claim, Contract]], dict[str, int]]:
    """Claims matching the filter (oldest open first) and counts per status."""
    conditions = []
    if flt.category:
        conditions.append(Contract.warranty_category == flt.category)
    if flt.date_from:
        conditions.append(Claim.created_at >= _day_start(flt.date_from, timezone))
    if flt.date_to:
        conditions.append(Claim.created_at < _day_start(
            min(flt.date_to, _FILTER_DAYS[1]) + timedelta(days=1), timezone))
    base = select(Claim.status, sa.func.count()).join(Contract, Contract.id == Claim.contract_id)
    counts = {status: 0 for status in STATUSES}
    for status, count in session.exec(base.where(*conditions).group_by(Claim.status)).all():
        counts[status] = count
    if flt.status:
        conditions.append(Claim.status == flt.status)
    rows = session.exec(select(Claim, Contract).join(Contract, Contract.id == Claim.contract_id)
                        .where(*conditions).order_by(Claim.created_at, Claim.id)
                        .limit(limit).offset(offset)).all()
    return [(claim, contract) for claim, contract in rows], counts


@dataclass
class CustomerHistory:
    """Everything about one customer, for answering a support chat."""

    email: str
    orders: list[Order]
    contracts: list[Contract]
    claims: list[Claim]
    payouts: list[Payout]
    mails: list[MailMessage]
    nps: list[NpsAnswer]


def customer_history(session: Session, email: str) -> CustomerHistory:
    """Orders, plans, claims, payouts, mails and NPS answers of one email."""
    email = normalize_email(email)
    orders = list(session.exec(select(Order).where(sa.func.lower(Order.customer_email) == email)
                               .order_by(Order.id.desc())).all())
    plans = plans_for(session, email)
    plan_ids = [c.id for c in plans]
    claim_rows = list(session.exec(
        select(Claim).where(sa.or_(Claim.customer_email == email,
                                   Claim.contract_id.in_(plan_ids or [-1])))
        .order_by(Claim.id.desc())).all())
    claim_ids = [c.id for c in claim_rows] or [-1]
    payouts = list(session.exec(select(Payout).where(Payout.claim_id.in_(claim_ids))
                                .order_by(Payout.id)).all())
    mails = list(session.exec(select(MailMessage)
                              .where(sa.func.lower(MailMessage.to) == email)
                              .order_by(MailMessage.id.desc())).all())
    nps = list(session.exec(select(NpsAnswer).where(NpsAnswer.claim_id.in_(claim_ids))).all())
    return CustomerHistory(email=email, orders=orders, contracts=plans, claims=claim_rows,
                           payouts=payouts, mails=mails, nps=nps)


# --- NPS -------------------------------------------------------------------------------


def claim_from_nps_token(session: Session, settings: Settings, token: str) -> Claim:
    """The closed claim an NPS link was made for."""
    data = magic_links.read_token(settings, "nps", token, max_age=NPS_LINK_MAX_AGE)
    claim = session.exec(select(Claim).where(Claim.public_id == str(data.get("claim")))).first()
    if claim is None or claim.status not in FINAL:
        raise magic_links.InvalidLink("this link is not valid; ask for a new one")
    return claim


def nps_answer(session: Session, claim: Claim) -> NpsAnswer | None:
    """The claim's NPS answer, if given."""
    return session.exec(select(NpsAnswer).where(NpsAnswer.claim_id == claim.id)).first()


def record_nps(*, session: Session, claim: Claim, score: int, comment: str) -> NpsAnswer:
    """Keep the customer's 0-10 answer; one per claim."""
    if not 0 <= score <= 10:
        raise ValidationFailed("the score is a whole number from 0 to 10", code="invalid_score")
    if nps_answer(session, claim) is not None:
        raise Conflict("this question was already answered", code="nps_already_answered")
    answer = NpsAnswer(claim_id=claim.id, score=score, comment=(comment or "").strip()[:2000])
    try:
        with session.begin_nested():
            session.add(answer)
    except sa.exc.IntegrityError:
        raise Conflict("this question was already answered",
                       code="nps_already_answered") from None
    return answer


def parse_amount(text: str, currency: str) -> int | None:
    """A customer- or staff-typed amount in major units ("12,000", "19.80", or full width as
    Japanese input methods type it: "１２，０００"); None if blank. Digits of other scripts
    are refused (422), never read by ``int()``."""
    cleaned = halfwidth(text or "").strip().replace(",", "").lstrip("¥$€£")
    if not cleaned:
        return None
    if not _AMOUNT.fullmatch(cleaned):
        raise DomainError("write the amount as a number, such as 12000", code="invalid_amount",
                          status=422)
    try:
        return money.from_major(cleaned, currency)
    except money.MoneyError as exc:
        raise DomainError(str(exc), code="invalid_amount", status=422) from None


_AMOUNT = re.compile(r"[0-9]{1,12}(\.[0-9]{1,3})?")
