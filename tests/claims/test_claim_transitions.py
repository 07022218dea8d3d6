"""The claim transition table: every allowed change is audited, mailed and sent to the store;
every other change is refused and writes nothing."""

import itertools
import re
from datetime import date

import pytest
from sqlmodel import func, select

from tests.claims.helpers import file
from tests.factories import paid_order
from warranty.auth import links as magic_links
from warranty.claims import filing, queries, transitions, workflow
from warranty.claims import models as claims_models
from warranty.claims.models import ClaimEvent
from warranty.core.errors import ValidationFailed
from warranty.notify.models import MailMessage, OutboundWebhook

PAIRS = list(itertools.product(claims_models.STATUSES, claims_models.STATUSES))
ALLOWED = [(a, b) for a, b in PAIRS if b in claims_models.TRANSITIONS[a]]
REFUSED = [(a, b) for a, b in PAIRS if b not in claims_models.TRANSITIONS[a]]


def _count(db, model) -> int:
    """Rows in a table."""
    return db.exec(select(func.count()).select_from(model)).one()


def _claim_in(db, settings, status):
    """A claim arranged in ``status``."""
    _, (contract,) = paid_order(db)
    claim = file(db, settings, contract, incident=date(2027, 3, 1))
    claim.status = status
    claim.decision, claim.approved_amount = "repair", 30000
    db.add(claim)
    db.commit()
    return claim


def test_the_table_is_what_the_brief_needs():
    table, final = claims_models.TRANSITIONS, claims_models.FINAL
    assert table == {
        "submitted": {"in_review", "approved", "denied"},
        "in_review": {"approved", "denied", "info_requested"},
        "info_requested": {"in_review", "denied"},
        "approved": {"paid", "closed"},
        "denied": set(), "paid": set(), "closed": set()}
    assert final == {"denied", "paid", "closed"}


@pytest.mark.parametrize(("from_status", "to_status"), ALLOWED)
def test_allowed_transition_is_audited_mailed_and_sent(db, settings, from_status, to_status):
    claim = _claim_in(db, settings, from_status)
    mails, hooks = _count(db, MailMessage), _count(db, OutboundWebhook)
    transitions.transition(session=db, settings=settings, claim=claim, to_status=to_status,
                      actor="staff:bob@store.example", action="test", reason="because")
    db.commit()
    event = db.exec(select(ClaimEvent).where(ClaimEvent.claim_id == claim.id)
                    .order_by(ClaimEvent.id.desc())).first()
    assert (event.from_status, event.to_status, event.actor, event.reason) == (
        from_status, to_status, "staff:bob@store.example", "because")
    assert event.created_at is not None
    new_mails = db.exec(select(MailMessage).order_by(MailMessage.id).offset(mails)).all()
    expected_kinds = [f"claim_{to_status}"] + (["claim_nps"] if to_status in claims_models.FINAL
                                               else [])
    assert [m.kind for m in new_mails] == expected_kinds
    assert all(m.to == "buyer@example.com" for m in new_mails)
    hook = db.exec(select(OutboundWebhook).order_by(OutboundWebhook.id.desc())).first()
    assert _count(db, OutboundWebhook) == hooks + 1
    assert hook.type == f"claim.{to_status}"
    data = hook.payload["data"]  # the envelope every store event has: id, type, created, data
    assert data["claim"] == claim.public_id and data["status"] == to_status
    assert (claim.closed_at is not None) == (to_status in claims_models.FINAL)


@pytest.mark.parametrize(("from_status", "to_status"), REFUSED)
def test_refused_transition_writes_nothing(db, settings, from_status, to_status):
    claim = _claim_in(db, settings, from_status)
    before = (_count(db, ClaimEvent), _count(db, MailMessage), _count(db, OutboundWebhook))
    with pytest.raises(transitions.ClaimTransitionRefused):
        transitions.transition(session=db, settings=settings, claim=claim, to_status=to_status,
                          actor="staff:x", action="test")
    db.rollback()
    assert (_count(db, ClaimEvent), _count(db, MailMessage),
            _count(db, OutboundWebhook)) == before
    db.refresh(claim)
    assert claim.status == from_status


def test_filing_sends_submitted_then_the_rules_outcome(db, settings):
    _, (contract,) = paid_order(db)
    claim = file(db, settings, contract, incident=date(2027, 3, 1), lang="ja")
    hooks = db.exec(select(OutboundWebhook.type).order_by(OutboundWebhook.id)).all()
    assert hooks == ["claim.submitted", "claim.in_review"]
    (mail,) = db.exec(select(MailMessage)).all()
    assert mail.subject == "【延長保証】申請の状況: 審査中"
    assert claim.public_id in mail.body and "/my/sign-in?token=" in mail.body
    # The link leads to the claim: signed into its token, not an open query parameter.
    token = re.search(r"token=([^&\s]+)", mail.body).group(1)
    link = magic_links.read_plans_link(settings, token)
    assert (link.email, link.next) == ("buyer@example.com", f"/my/claims/{claim.public_id}")


def test_staff_decisions_use_the_table(db, settings):
    claim = _claim_in(db, settings, "denied")
    with pytest.raises(transitions.ClaimTransitionRefused):
        workflow.approve(session=db, settings=settings, claim=claim, decision="repair",
                       amount=1000, actor="staff:x")
    with pytest.raises(transitions.ClaimTransitionRefused):
        workflow.request_info(session=db, settings=settings, claim=claim, message="photo?",
                            actor="staff:x")
    with pytest.raises(transitions.ClaimTransitionRefused):
        workflow.deny(session=db, settings=settings, claim=claim, reason="again", actor="staff:x")


def test_denial_needs_a_reason_and_info_request_a_message(db, settings):
    claim = _claim_in(db, settings, "in_review")
    with pytest.raises(ValidationFailed):
        workflow.deny(session=db, settings=settings, claim=claim, reason="  ", actor="staff:x")
    with pytest.raises(ValidationFailed):
        workflow.request_info(session=db, settings=settings, claim=claim, message="",
                            actor="staff:x")
    with pytest.raises(ValidationFailed):
        workflow.approve(session=db, settings=settings, claim=claim, decision="refund",
                       amount=1000, actor="staff:x")


def test_info_request_reopens_the_claim_and_resubmission_returns_it_to_review(db, settings):
    claim = _claim_in(db, settings, "in_review")
    filed = (claim.description, claim.incident_date, claim.failure_type,
             claim.estimated_amount)
    workflow.request_info(session=db, settings=settings, claim=claim,
                        message="Please send a photo of the serial number.", actor="staff:x")
    db.commit()
    filing.resubmit(session=db, settings=settings, claim=claim, message="Serial: 123",
                    files=[], actor="customer:buyer@example.com", today=date(2028, 6, 1))
    db.commit()
    assert claim.status == "in_review"
    # The answer is added; what was filed stays as filed.
    assert (claim.description, claim.incident_date, claim.failure_type,
            claim.estimated_amount) == filed
    messages = queries.messages(db, claim)
    assert [(m.author, m.kind, m.body) for m in messages] == [
        ("staff", "info_request", "Please send a photo of the serial number."),
        ("customer", "answer", "Serial: 123")]
    actions = [e.action for e in queries.timeline(db, claim)]
    assert actions[-3:] == ["info_requested", "info_provided", "to_review"]


def test_resubmission_is_judged_by_the_rules_again_on_the_claim_as_filed(db, settings):
    claim = _claim_in(db, settings, "info_requested")
    incident = claim.incident_date
    filing.resubmit(session=db, settings=settings, claim=claim,
                    message="It happened earlier than I said: 2026-05-01.", files=[],
                    actor="customer:x", today=date(2028, 6, 1))
    db.commit()
    # A date typed in an answer is a message for staff, not a new incident date.
    assert (claim.status, claim.incident_date) == ("in_review", incident)


def test_an_empty_answer_is_refused_and_changes_nothing(db, settings):
    claim = _claim_in(db, settings, "info_requested")
    with pytest.raises(ValidationFailed):
        filing.resubmit(session=db, settings=settings, claim=claim, message="  ", files=[],
                        actor="customer:x", today=date(2028, 6, 1))
    db.rollback()
    assert queries.messages(db, claim) == [] and claim.status == "info_requested"


def test_resubmission_only_when_information_was_asked(db, settings):
    claim = _claim_in(db, settings, "in_review")
    with pytest.raises(transitions.ClaimTransitionRefused):
        filing.resubmit(session=db, settings=settings, claim=claim, message="x", files=[],
                        actor="customer:x", today=date(2028, 6, 1))
