"""Moving a claim between statuses: the contract lock, the audited transition, its mail and webhook.

Functions take a ``session`` keyword and never commit; the views commit once.
"""

from __future__ import annotations

from sqlmodel import Session, select

from warranty.auth import links as magic_links
from warranty.claims.models import (
    FINAL,
    TRANSITIONS,
    Claim,
    ClaimEvent,
)
from warranty.claims.nps import mail_nps
from warranty.contracts import lifecycle as contracts
from warranty.contracts.models import Contract
from warranty.core import i18n
from warranty.core.dates import utcnow
from warranty.core.errors import Conflict
from warranty.core.settings import Settings
from warranty.core.text import normalize_email
from warranty.db.engine import write_transaction
from warranty.notify.mail import queue_mail
from warranty.notify.webhooks import queue_event
from warranty.orders.models import Order

# The customer-facing reasons of the automatic rules (texts in warranty/i18n.py).
DENY_CODES = ("not_active", "plan_cancelled", "plan_fulfilled", "outside_term",
              "filed_too_late", "accident_not_covered", "waiting_period",
              "manufacturer_warranty", "cap_used_up", "product_returned")


class ClaimTransitionRefused(Conflict):
    """A claim status change the transition table does not allow."""

    code = "claim_transition_refused"


def lock(session: Session, claim: Claim) -> Contract:
    """Lock the claim's contract, then the claim, and re-read both as last committed.

    Every change to a claim starts here, before it looks at the claim's status: of two
    concurrent decisions the second waits, then sees the first one's outcome and is refused
    (409) instead of overwriting it. The contract comes first because payouts and
    cancellations decide on it too, and one lock order everywhere (order, order line,
    contract, claim; docs/concurrency.md) leaves no room for deadlocks. Returns the contract.
    """
    write_transaction(session)
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
    # A staff approval's reason is their note to the customer: it goes into the mail.
    _mail_status(session, settings, claim, contract, reason,
                 note=reason if action == "approved" else "")
    queue_event(session=session, type=f"claim.{to_status}",
                data=webhook_payload(session, claim, contract, reason))
    if to_status in FINAL:
        mail_nps(session, settings, claim)
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
                 reason: str, *, note: str = "") -> None:
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
        if note.strip():
            lines.append(i18n.t(lang, "mail.staff_note", note=note.strip()))
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
