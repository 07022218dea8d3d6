"""Filing a claim, resubmitting it and adding files; the automatic rules applied."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from sqlmodel import Session, select

from warranty.claims import attachments as uploads
from warranty.claims.models import ACCEPTS_FILES, Claim, ClaimEvent, ClaimFile
from warranty.claims.payouts import claims_paid_total, liability_cap
from warranty.claims.rules import ClaimInputInvalid, evaluate, input_problems
from warranty.claims.transitions import ClaimTransitionRefused, lock, transition, webhook_payload
from warranty.claims.workflow import fulfil
from warranty.contracts import lifecycle as contracts
from warranty.contracts import queries
from warranty.contracts.models import Contract
from warranty.core import i18n
from warranty.core.dates import store_today
from warranty.core.errors import Conflict, NotFound
from warranty.core.settings import Settings
from warranty.core.text import normalize_email
from warranty.coverage.dates import coverage_year
from warranty.db.engine import write_transaction
from warranty.notify.webhooks import queue_event


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
    write_transaction(session)
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
    refund = queries.refund_of(session, contract) if contract.status == "cancelled" else None
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
        # Approved under the store's limit: its cost is paid, as a repair at a store that
        # settles by repair or replacement only (WARRANTY_REPAIR_ONLY), else reimbursed.
        decision = "repair" if settings.repair_only else "reimburse"
        claim.decision, claim.approved_amount = decision, claim.estimated_amount
    event = transition(session=session, settings=settings, claim=claim,
                       to_status=outcome.status, actor="rules",
                       action=outcome.code or "to_review", reason=outcome.reason)
    if outcome.code == "cap_used_up":
        fulfil(session, contract, claim=claim, actor="rules", why="liability cap used up")
    return event


def filing_date(settings: Settings, claim: Claim) -> date:
    """The store-local date a claim was filed (the filing window is judged on it)."""
    return store_today(settings.timezone, claim.created_at)


def resubmit(*, session: Session, settings: Settings, claim: Claim, incident_date: date | None,
             failure_type: str | None, description: str | None, estimated_amount: int | None,
             files: list[uploads.Upload], actor: str, today: date) -> ClaimEvent:
    """The customer's answer to "more information, please": updated fields, more files."""
    write_transaction(session)
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
    write_transaction(session)
    lock(session, claim)  # its status and its file count, as committed
    if claim.status not in ACCEPTS_FILES:
        raise Conflict(f"claim {claim.public_id} is {claim.status}; it takes no more files",
                       code="claim_closed")
    rows = _attach(session, settings, claim, files, actor)
    session.add(ClaimEvent(claim_id=claim.id, action="files_added", from_status=claim.status,
                           to_status=claim.status, actor=actor,
                           data={"files": [r.public_id for r in rows]}))
    return rows
