"""Payouts: approved cost less the deductible, capped by what is left of the year's cap."""

from datetime import date
from decimal import Decimal

import pytest
from sqlmodel import select

from tests.claims.helpers import file
from tests.factories import load_rules, paid_order, rules_doc
from warranty.claims import payouts, transitions, workflow
from warranty.claims.models import Payout
from warranty.contracts.models import Contract, ContractEvent
from warranty.core.errors import Conflict, ValidationFailed
from warranty.orders.models import Refund
from warranty.pricing import rules

STAFF, FINANCE = "staff:alice@store.example", "staff:fin@store.example"


def _contract(db, deductible=5000, schedule=(100, 100, 80)):
    """An accident plan on a ¥120,000 product bought 2026-01-10 (years start Jan 10)."""
    load_rules(db, rules_doc(deductible=deductible, liability_schedule=list(schedule)))
    _, (contract,) = paid_order(db, plan_code="accident-36", product_price=120000)
    return contract


def _approved_and_paid(db, settings, contract, incident, amount, decision="repair",
                       method="repair_vendor"):
    """File, approve and pay one claim; returns (claim, payout)."""
    claim = file(db, settings, contract, incident=incident, failure="accident",
                 today=date(2029, 1, 9))
    workflow.approve(session=db, settings=settings, claim=claim, decision=decision, amount=amount,
                   actor=STAFF)
    db.commit()
    payout = payouts.record_payout(session=db, settings=settings, claim=claim, method=method,
                                  reference="RV-1", actor=FINANCE)
    db.commit()
    return claim, payout


def test_the_brief_example_year_one_then_year_three(db, settings):
    contract = _contract(db)
    first, payout1 = _approved_and_paid(db, settings, contract, date(2026, 6, 1), 100000)
    assert first.coverage_year == 1
    assert payout1.amount == 100000 - 5000
    assert payouts.claims_paid_total(db, contract) == 95000
    third = file(db, settings, contract, incident=date(2028, 2, 1), failure="accident",
                 today=date(2029, 1, 9))
    assert third.coverage_year == 3
    workflow.approve(session=db, settings=settings, claim=third, decision="reimburse",
                   amount=50000, actor=STAFF)
    quote = payouts.payout_quote(db, contract, third)
    assert (quote.cap, quote.paid_before, quote.left, quote.amount) == (96000, 95000, 1000, 1000)
    payout3 = payouts.record_payout(session=db, settings=settings, claim=third,
                                   method="bank_transfer", reference="TR-9", actor=FINANCE)
    db.commit()
    assert payout3.amount == 96000 - 95000
    db.refresh(contract)
    assert contract.status == "fulfilled"  # the cap is used up
    assert payouts.claims_paid_total(db, contract) == 96000


def test_cap_is_cumulative_across_claims_and_years(db, settings):
    contract = _contract(db)
    _, p1 = _approved_and_paid(db, settings, contract, date(2026, 3, 1), 30000)
    _, p2 = _approved_and_paid(db, settings, contract, date(2027, 3, 1), 50000)
    assert (p1.amount, p2.amount) == (25000, 45000)
    db.refresh(contract)
    assert contract.status == "active"
    claim3, p3 = _approved_and_paid(db, settings, contract, date(2028, 3, 1), 40000)
    assert claim3.coverage_year == 3
    assert p3.amount == 96000 - 70000  # 35,000 after the deductible, capped at 26,000
    db.refresh(contract)
    assert contract.status == "fulfilled"
    event = db.exec(select(ContractEvent).where(ContractEvent.contract_id == contract.id)
                    .order_by(ContractEvent.id.desc())).first()
    assert (event.action, event.reason, event.actor) == ("fulfilled", "liability cap used up",
                                                         FINANCE)


def test_a_replacement_fulfils_the_contract_even_with_cap_left(db, settings):
    contract = _contract(db)
    claim, payout = _approved_and_paid(db, settings, contract, date(2026, 3, 1), 60000,
                                       decision="replace", method="replacement")
    assert payout.amount == 55000 and payout.method == "replacement"
    db.refresh(contract)
    assert contract.status == "fulfilled"
    assert claim.status == "paid"
    later = file(db, settings, contract, incident=date(2026, 4, 1), failure="accident",
                 today=date(2029, 1, 9))
    assert (later.status, later.deny_code) == ("denied", "plan_fulfilled")


def test_last_schedule_value_holds_for_later_years():
    contract = Contract(product_price=100000, liability_schedule=["100", "70"])
    assert [payouts.schedule_percent(contract, y) for y in (1, 2, 3, 5)] == [
        Decimal(100), Decimal(70), Decimal(70), Decimal(70)]
    assert payouts.liability_cap(contract, 4) == 70000
    odd = Contract(product_price=99999, liability_schedule=["33.5"])
    assert payouts.liability_cap(odd, 1) == 33499  # rounded down by money.percent_of


def test_nothing_payable_below_the_deductible_then_close(db, settings):
    contract = _contract(db)
    claim = file(db, settings, contract, incident=date(2026, 3, 1), failure="accident")
    workflow.approve(session=db, settings=settings, claim=claim, decision="repair", amount=4000,
                   actor=STAFF)
    db.commit()
    with pytest.raises(Conflict) as refused:
        payouts.record_payout(session=db, settings=settings, claim=claim, method="repair_vendor",
                             reference="", actor=FINANCE)
    assert refused.value.code == "nothing_payable"
    db.rollback()
    workflow.close(session=db, settings=settings, claim=claim, reason="below the deductible",
                 actor=STAFF)
    db.commit()
    assert claim.status == "closed" and payouts.claims_paid_total(db, contract) == 0


def test_a_claim_is_paid_once_and_only_when_approved(db, settings):
    contract = _contract(db)
    claim, _ = _approved_and_paid(db, settings, contract, date(2026, 3, 1), 20000)
    with pytest.raises(transitions.ClaimTransitionRefused):
        payouts.record_payout(session=db, settings=settings, claim=claim,
                             method="bank_transfer", reference="again", actor=FINANCE)
    db.rollback()
    review = file(db, settings, contract, incident=date(2026, 3, 2), failure="accident")
    with pytest.raises(transitions.ClaimTransitionRefused):
        payouts.record_payout(session=db, settings=settings, claim=review,
                             method="bank_transfer", reference="", actor=FINANCE)
    db.rollback()
    assert len(db.exec(select(Payout)).all()) == 1


def test_payouts_are_not_refunds_and_refuse_unknown_methods(db, settings):
    contract = _contract(db)
    claim = file(db, settings, contract, incident=date(2026, 3, 1), failure="accident")
    workflow.approve(session=db, settings=settings, claim=claim, decision="reimburse",
                   amount=10000, actor=STAFF)
    with pytest.raises(ValidationFailed):
        payouts.record_payout(session=db, settings=settings, claim=claim, method="cash",
                             reference="", actor=FINANCE)
    payouts.record_payout(session=db, settings=settings, claim=claim, method="store_credit",
                         reference="GC-1", actor=FINANCE)
    db.commit()
    assert db.exec(select(Refund)).all() == []
    assert payouts.claims_paid_total(db, contract) == 5000


def test_approval_is_refused_once_the_contract_is_fulfilled(db, settings):
    contract = _contract(db)
    pending = file(db, settings, contract, incident=date(2026, 3, 2), failure="accident")
    _approved_and_paid(db, settings, contract, date(2026, 3, 1), 60000, decision="replace",
                       method="replacement")
    with pytest.raises(Conflict) as refused:
        workflow.approve(session=db, settings=settings, claim=pending, decision="repair",
                       amount=1000, actor=STAFF)
    assert refused.value.code == "contract_not_active"


def test_paid_total_starts_at_zero(db):
    _, (contract,) = paid_order(db)
    assert payouts.claims_paid_total(db, contract) == 0


def test_cancellation_quote_deducts_what_claims_paid(db, settings, client, staff_headers):
    """Claims paid come off the pro-rata refund, and rule out the free look."""
    contract = _contract(db, deductible=0)  # ¥9,960 accident plan, 2026-01-10 .. 2029-01-09
    _approved_and_paid(db, settings, contract, date(2026, 2, 1), 3000)
    res = client.get(f"/api/v1/contracts/{contract.public_id}/cancellation-quote"
                     "?cancel_date=2026-07-01", headers=staff_headers)
    assert res.status_code == 200, res.json
    # 9960 × 924 unused days (2026-07-01..2029-01-09) = 9,203,040; // 1096 = 8396 (8396.9);
    # less ¥3,000 paid.
    assert res.json["claims_paid"] == 3000
    assert (res.json["rule"], res.json["amount"]) == ("pro_rata", 8396 - 3000)
    early = client.get(f"/api/v1/contracts/{contract.public_id}/cancellation-quote"
                       "?cancel_date=2026-02-05", headers=staff_headers)
    assert early.json["rule"] == "pro_rata"  # a claim was paid: no free look


# --- the cap of the claim's own coverage year ----------------------------------------------
# An accident plan on a ¥120,000 product bought 2026-01-10: coverage year 1 is 2026-01-10..
# 2027-01-09, year 2 from 2027-01-10, year 3 from 2028-01-10.


def test_a_claim_in_a_year_whose_lower_cap_is_used_up_is_denied_and_fulfils(db, settings):
    contract = _contract(db)  # schedule 100, 100, 80 → caps 120,000, 120,000, 96,000
    _, first = _approved_and_paid(db, settings, contract, date(2026, 6, 1), 105000)
    assert first.amount == 100000  # 105,000 − 5,000 deductible
    db.refresh(contract)
    assert contract.status == "active"  # year 1's cap has 20,000 left
    # Year 3's cap is 96,000 and 100,000 was paid on the plan before: nothing is left.
    third = file(db, settings, contract, incident=date(2028, 2, 1), failure="accident",
                 today=date(2029, 1, 9))
    assert third.coverage_year == 3
    assert (third.status, third.deny_code) == ("denied", "cap_used_up")
    assert transitions.deny_text(third, "en") == ("The cover of the incident's coverage year has "
                                             "been used up by what was paid on the plan before.")
    db.refresh(contract)
    assert contract.status == "fulfilled"
    event = db.exec(select(ContractEvent).where(ContractEvent.contract_id == contract.id)
                    .order_by(ContractEvent.id.desc())).first()
    assert (event.action, event.actor, event.reason) == ("fulfilled", "rules",
                                                         "liability cap used up")
    assert event.data == {"claim": third.public_id, "coverage_year": 3}


def test_a_year_with_cap_left_still_pays_after_an_earlier_bigger_payout(db, settings):
    contract = _contract(db, deductible=0, schedule=(100, 80))  # caps 120,000, 96,000
    _, first = _approved_and_paid(db, settings, contract, date(2026, 6, 1), 90000)
    claim, second = _approved_and_paid(db, settings, contract, date(2027, 3, 1), 10000)
    # Year 2: 96,000 − 90,000 paid = 6,000 left; the payout uses it up → fulfilled.
    assert (claim.coverage_year, second.amount) == (2, 6000)
    db.refresh(contract)
    assert contract.status == "fulfilled"


def test_closing_a_claim_whose_years_cap_was_used_up_meanwhile_fulfils(db, settings):
    contract = _contract(db, deductible=0, schedule=(100, 80))  # caps 120,000, 96,000
    year2 = file(db, settings, contract, incident=date(2027, 3, 1), failure="accident",
                 today=date(2029, 1, 9))
    workflow.approve(session=db, settings=settings, claim=year2, decision="repair", amount=50000,
                   actor=STAFF)
    db.commit()
    # Meanwhile a year-1 claim is paid 100,000: year 1 has 20,000 left, year 2 nothing.
    _approved_and_paid(db, settings, contract, date(2026, 6, 1), 100000)
    db.refresh(contract)
    assert contract.status == "active"
    assert payouts.payout_quote(db, contract, year2).left == 0
    with pytest.raises(Conflict) as refused:
        payouts.record_payout(session=db, settings=settings, claim=year2, method="repair_vendor",
                             reference="", actor=FINANCE)
    assert refused.value.code == "nothing_payable"
    db.rollback()
    workflow.close(session=db, settings=settings, claim=year2, reason="cap used up", actor=STAFF)
    db.commit()
    db.refresh(contract)
    assert contract.status == "fulfilled"


def test_closing_for_another_reason_with_cap_left_keeps_the_plan(db, settings):
    contract = _contract(db)
    claim = file(db, settings, contract, incident=date(2026, 3, 1), failure="accident")
    workflow.approve(session=db, settings=settings, claim=claim, decision="repair", amount=4000,
                   actor=STAFF)
    workflow.close(session=db, settings=settings, claim=claim, reason="below the deductible",
                 actor=STAFF)
    db.commit()
    db.refresh(contract)
    assert contract.status == "active"


def test_a_replacement_with_nothing_payable_is_recorded_and_fulfils(client, db, settings,
                                                                    staff_headers):
    """Through the API: a ¥4,000 replacement under the ¥5,000 deductible pays 0 and fulfils."""
    contract = _contract(db)
    claim = file(db, settings, contract, incident=date(2026, 3, 1), failure="accident")
    approved = client.post(f"/api/v1/claims/{claim.public_id}/approve", headers=staff_headers,
                           json={"decision": "replace", "amount": 4000})
    assert approved.status_code == 200, approved.json
    paid = client.post(f"/api/v1/claims/{claim.public_id}/payout", headers=staff_headers,
                       json={"method": "replacement", "reference": "SN-3"})
    assert paid.status_code == 200, paid.json
    assert paid.json["status"] == "paid"
    assert (paid.json["payout"]["amount"], paid.json["payout"]["method"]) == (0, "replacement")
    db.expire_all()
    assert db.get(Contract, contract.id).status == "fulfilled"
    assert payouts.claims_paid_total(db, db.get(Contract, contract.id)) == 0
    event = db.exec(select(ContractEvent).where(ContractEvent.action == "fulfilled")).one()
    assert event.reason == "product replaced"


def test_a_replacement_is_capped_by_what_is_left(client, db, settings, staff_headers):
    contract = _contract(db, deductible=0)
    _approved_and_paid(db, settings, contract, date(2026, 6, 1), 119000)
    claim = file(db, settings, contract, incident=date(2026, 7, 1), failure="accident")
    client.post(f"/api/v1/claims/{claim.public_id}/approve", headers=staff_headers,
                json={"decision": "replace", "amount": 80000})
    paid = client.post(f"/api/v1/claims/{claim.public_id}/payout", headers=staff_headers,
                       json={"method": "replacement"})
    assert paid.json["payout"]["amount"] == 1000  # 120,000 − 119,000 left of year 1's cap
    db.expire_all()
    assert db.get(Contract, contract.id).status == "fulfilled"


def test_rising_schedules_are_refused_on_upload_with_the_place(client, db, staff_headers):
    rising = client.post("/api/v1/rule-sets", headers=staff_headers,
                         json={"rules": rules_doc(liability_schedule=[100, 80, 90])})
    assert rising.status_code == 422 and rising.json["error"]["code"] == "invalid_rules"
    (problem,) = rising.json["error"]["details"]
    assert problem["at"] == "categories.electronics.liability_schedule"
    assert problem["message"].startswith("the cap rises in coverage year 3 (90% after 80%")
    for flat_or_falling in ([100, 100, 80], [80, 80], [100]):
        ok = client.post("/api/v1/rule-sets", headers=staff_headers,
                         json={"rules": rules_doc(liability_schedule=flat_or_falling)})
        assert ok.status_code == 201, ok.json


def test_a_rising_schedule_stored_before_the_rule_still_loads(client, db, store_key):
    """Versions stored earlier keep working (contracts keep the rules they were sold under)."""
    from warranty.pricing.models import RuleSet

    db.add(RuleSet(currency="jpy", document=rules_doc(liability_schedule=[80, 100]),
                   created_by="old"))
    db.commit()
    rules.clear_caches()
    offers = client.get("/api/v1/offers?category=tv&price=120000", headers=store_key)
    assert offers.status_code == 200, offers.json
    assert [o["liability_schedule"] for o in offers.json["offers"]] == [[80, 100]] * 2
