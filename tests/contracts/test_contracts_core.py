"""Contract creation exactly once, and the transition table."""

from datetime import date

import pytest
from sqlmodel import select

from tests.factories import paid_order
from warranty.contracts import lifecycle as contracts
from warranty.contracts import queries
from warranty.contracts.models import Contract, ContractEvent


def test_one_contract_per_plan_unit_with_brief_dates(db):
    order, created = paid_order(db, quantity=2, plan_quantity=2, purchase_date=date(2026, 1, 10))
    assert len(created) == 2
    first = created[0]
    assert first.term_end == date(2029, 1, 9)
    assert first.breakdown_start == date(2027, 1, 10)
    assert first.price == 6000 and first.currency == "jpy" and first.status == "active"
    assert {c.unit_index for c in created} == {0, 1}
    again = contracts.create_contracts(session=db, order=order, purchase_date=date(2026, 1, 10))
    db.commit()
    assert again == []
    assert len(db.exec(select(Contract)).all()) == 2
    assert len(db.exec(select(ContractEvent)).all()) == 2


def test_transitions_are_enforced_and_audited(db):
    _, (contract,) = paid_order(db)
    contracts.transition(session=db, contract=contract, to_status="cancelled", actor="staff:a",
                         action="cancelled", reason="customer asked")
    db.commit()
    with pytest.raises(contracts.TransitionRefused):
        contracts.transition(session=db, contract=contract, to_status="active", actor="x",
                             action="reactivate")
    rows = queries.history(db, contract)
    assert [(r.action, r.from_status, r.to_status, r.actor) for r in rows] == [
        ("created", None, "active", "stripe"),
        ("cancelled", "active", "cancelled", "staff:a")]
