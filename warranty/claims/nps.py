"""The NPS question after a claim is final: its link, its mail, the answers."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session, select

from warranty.auth import links as magic_links
from warranty.claims.models import FINAL, Claim, NpsAnswer
from warranty.contracts.models import Contract
from warranty.core import i18n
from warranty.core.errors import Conflict, ValidationFailed
from warranty.core.settings import Settings
from warranty.core.text import normalize_email
from warranty.db.engine import write_transaction
from warranty.notify.mail import queue_mail

NPS_LINK_MAX_AGE = 90 * 24 * 3600  # the NPS question stays answerable for 90 days


def nps_link(settings: Settings, claim: Claim) -> str:
    """The signed link to the claim's 0-10 question, in the language the claim was filed in."""
    token = magic_links.make_token(settings, "nps", {"claim": claim.public_id})
    return f"{settings.base_url}/my/nps?token={token}&lang={claim.lang}"


def mail_nps(session: Session, settings: Settings, claim: Claim) -> None:
    """Ask the plan's current owner the "would you recommend us" question once the claim is
    closed."""
    contract = session.get(Contract, claim.contract_id)
    queue_mail(session=session, to=normalize_email(contract.customer_email),
               subject=i18n.t(claim.lang, "nps.subject"),
               body=i18n.t(claim.lang, "nps.mail", link=nps_link(settings, claim)) + "\n",
               kind="claim_nps")


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
    write_transaction(session)
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
