"""The brief's automatic claim rules, each on its own."""

from datetime import UTC, date, datetime

import pytest
from sqlmodel import select

from tests.claims.helpers import TODAY, file
from tests.factories import paid_order
from warranty.claims import filing, rules, transitions, workflow
from warranty.claims.models import Claim, ClaimEvent
from warranty.contracts import lifecycle as contracts


def test_breakdown_after_the_manufacturer_warranty_goes_to_review(db, settings):
    _, (contract,) = paid_order(db)
    claim = file(db, settings, contract, incident=date(2027, 1, 10))
    assert claim.status == "in_review" and claim.deny_code is None
    assert claim.coverage_year == 2


def test_breakdown_inside_the_manufacturer_warranty_is_covered_by_the_manufacturer(db, settings):
    _, (contract,) = paid_order(db)
    claim = file(db, settings, contract, incident=date(2027, 1, 9))
    assert claim.status == "denied" and claim.deny_code == "manufacturer_warranty"
    assert "manufacturer" in transitions.deny_text(claim, "en")
    assert (transitions.deny_text(claim, "ja")
            == "メーカー保証期間内のため、メーカー保証の対象です。")


def test_accidental_damage_on_a_standard_plan_is_denied(db, settings):
    _, (contract,) = paid_order(db, plan_code="standard-36")
    claim = file(db, settings, contract, incident=date(2027, 5, 1), failure="accident")
    assert (claim.status, claim.deny_code) == ("denied", "accident_not_covered")


def test_accidental_damage_on_an_accident_plan_is_covered_from_purchase(db, settings):
    _, (contract,) = paid_order(db, plan_code="accident-36")
    claim = file(db, settings, contract, incident=date(2026, 1, 10), failure="accident")
    assert claim.status == "in_review"


@pytest.mark.parametrize("incident", [date(2026, 1, 9), date(2029, 1, 10)])
def test_incident_outside_the_term_is_denied(db, settings, incident):
    _, (contract,) = paid_order(db, plan_code="accident-36")
    claim = file(db, settings, contract, incident=incident, failure="accident",
                 today=date(2029, 2, 1))
    assert (claim.status, claim.deny_code) == ("denied", "outside_term")


def test_last_day_of_the_term_is_covered(db, settings):
    _, (contract,) = paid_order(db)
    claim = file(db, settings, contract, incident=date(2029, 1, 9), today=date(2029, 1, 9))
    assert claim.status == "in_review" and claim.coverage_year == 3


@pytest.mark.parametrize(("status", "code"), [("cancelled", "not_active"),
                                              ("fulfilled", "plan_fulfilled")])
def test_a_cancelled_or_fulfilled_plan_is_denied(db, settings, status, code):
    _, (contract,) = paid_order(db)
    contracts.transition(session=db, contract=contract, to_status=status, actor="test",
                         action=status)
    db.commit()
    claim = file(db, settings, contract)
    assert (claim.status, claim.deny_code) == ("denied", code)


def test_an_expired_plan_is_judged_by_the_incident_date(db, settings):
    # Expiry is a fact about time, not about the plan: an incident inside the term is judged
    # as if the plan were active (the expiry job ran early here, on purpose).
    _, (contract,) = paid_order(db)
    contracts.transition(session=db, contract=contract, to_status="expired", actor="test",
                         action="expired")
    db.commit()
    claim = file(db, settings, contract)
    assert (claim.status, claim.deny_code) == ("in_review", None)


def test_incident_in_the_waiting_period_is_denied(db, settings):
    _, (contract,) = paid_order(db, plan_code="accident-36")
    # A plan bought after the product: no claims for incidents before waiting_until.
    contract.waiting_until = date(2026, 4, 1)
    contract.accident_start = date(2026, 4, 1)
    db.add(contract)
    db.commit()
    denied = file(db, settings, contract, incident=date(2026, 3, 31), failure="accident")
    assert (denied.status, denied.deny_code) == ("denied", "waiting_period")
    covered = file(db, settings, contract, incident=date(2026, 4, 1), failure="accident")
    assert covered.status == "in_review"


def test_an_incident_in_the_future_is_a_field_error_not_a_claim(db, settings):
    _, (contract,) = paid_order(db)
    with pytest.raises(rules.ClaimInputInvalid) as refused:
        file(db, settings, contract, incident=date(2028, 6, 2), today=TODAY)
    assert refused.value.problems == [("incident_date", "in_future")]
    db.rollback()
    assert db.exec(select(Claim)).all() == []


def test_missing_fields_are_reported_per_field():
    problems = rules.input_problems(incident_date=None, failure_type="flood", description=" ",
                                     estimated_amount=-1, today=TODAY)
    assert problems == [("incident_date", "required"), ("failure_type", "invalid_choice"),
                        ("description", "required"), ("estimated_amount", "negative")]


def test_auto_approval_under_the_store_limit_needs_an_estimate(db, settings):
    settings = settings.model_copy(update={"auto_approve_under": 20000})
    _, (contract,) = paid_order(db)
    approved = file(db, settings, contract, estimate=19999)
    assert approved.status == "approved"
    assert (approved.decision, approved.approved_amount) == ("reimburse", 19999)
    at_limit = file(db, settings, contract, estimate=20000)
    no_estimate = file(db, settings, contract, estimate=None)
    assert at_limit.status == no_estimate.status == "in_review"
    audit = db.exec(select(ClaimEvent).where(ClaimEvent.claim_id == approved.id)
                    .order_by(ClaimEvent.id)).all()
    assert [(e.action, e.to_status, e.actor) for e in audit] == [
        ("submitted", "submitted", "customer:test"), ("auto_approved", "approved", "rules")]


def test_auto_approval_is_off_by_default(db, settings):
    assert settings.auto_approve_under == 0
    _, (contract,) = paid_order(db)
    assert file(db, settings, contract, estimate=1).status == "in_review"


def test_rules_never_auto_approve_a_denied_case(db, settings):
    settings = settings.model_copy(update={"auto_approve_under": 20000})
    _, (contract,) = paid_order(db)
    claim = file(db, settings, contract, incident=date(2026, 6, 1), estimate=100)
    assert (claim.status, claim.deny_code) == ("denied", "manufacturer_warranty")


# --- the filing window after the term (default 90 days), judged on fixed dates ---------------
# The factory plan: 2026-01-10..2029-01-09. 90 days after 2029-01-09 is 2029-04-09
# (22 days of January + 28 of February + 31 of March + 9 of April).


def _default_window(settings):
    """The settings with the service's default filing window (the test suite's is longer)."""
    from warranty.core.settings import Settings

    return settings.model_copy(update={
        "claim_filing_days_after_term": Settings.model_fields[
            "claim_filing_days_after_term"].default})


def _expired(db):
    _, (contract,) = paid_order(db)
    assert contracts.expire_ended(session=db, today=date(2029, 1, 10), limit=10) == [contract]
    db.commit()
    return contract


def test_the_default_window_is_ninety_days_after_the_term(db, settings):
    settings = _default_window(settings)
    assert settings.claim_filing_days_after_term == 90
    contract = _expired(db)
    assert rules.filing_deadline(contract, 90) == date(2029, 4, 9)
    last_day = file(db, settings, contract, incident=date(2029, 1, 9), today=date(2029, 4, 9))
    assert (last_day.status, last_day.deny_code) == ("in_review", None)
    late = file(db, settings, contract, incident=date(2029, 1, 9), today=date(2029, 4, 10))
    assert (late.status, late.deny_code) == ("denied", "filed_too_late")
    assert "filed until 2029-04-09" in late.deny_reason
    assert "filed on 2029-04-10" in late.deny_reason
    assert transitions.deny_text(late, "en").startswith("The claim was filed too late.")
    assert transitions.deny_text(late, "ja").startswith("申請期限を過ぎています。")
    assert rules.takes_claims(contract, today=date(2029, 4, 9), days_after_term=90)
    assert not rules.takes_claims(contract, today=date(2029, 4, 10), days_after_term=90)


def test_an_incident_after_the_term_stays_denied_within_the_window(db, settings):
    contract = _expired(db)
    after = file(db, _default_window(settings), contract, incident=date(2029, 1, 10),
                 today=date(2029, 1, 20))
    assert (after.status, after.deny_code) == ("denied", "outside_term")


def test_a_resubmission_is_judged_on_the_first_filing_date(db, settings):
    settings = _default_window(settings)
    contract = _expired(db)
    claim = file(db, settings, contract, incident=date(2029, 1, 9), today=date(2029, 4, 9))
    # Filed 2029-04-09 (store time): the window's last day. Staff ask for more; the customer
    # answers weeks later, and the claim is still in time.
    claim.created_at = datetime(2029, 4, 9, 3, tzinfo=UTC)  # 12:00 in Tokyo
    workflow.request_info(session=db, settings=settings, claim=claim, message="A photo?",
                        actor="staff:x")
    db.commit()
    filing.resubmit(session=db, settings=settings, claim=claim, message="Photo attached.",
                    files=[], actor="customer:x", today=date(2029, 5, 20))
    db.commit()
    assert (claim.status, claim.deny_code) == ("in_review", None)
