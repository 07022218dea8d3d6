"""Contracts: created once per paid plan unit, changed only through the transition table."""

from __future__ import annotations

from datetime import date

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, select

from warranty import pricing
from warranty.coverage import coverage_dates
from warranty.dates import utcnow
from warranty.errors import Conflict
from warranty.models import Contract, ContractEvent, Order, OrderLine

# Allowed status changes; anything else raises. "active" → "active" is a transfer.
TRANSITIONS: dict[str, set[str]] = {
    "active": {"cancelled", "expired", "fulfilled", "active"},
    "cancelled": set(),
    "expired": set(),
    "fulfilled": set(),
}


class TransitionRefused(Conflict):
    """A status change the transition table does not allow."""

    code = "transition_refused"


def transition(*, session: Session, contract: Contract, to_status: str, actor: str,
               action: str, reason: str = "", data: dict | None = None) -> ContractEvent:
    """Move a contract to ``to_status`` and write the audit row (caller commits)."""
    allowed = TRANSITIONS.get(contract.status, set())
    if to_status not in allowed:
        raise TransitionRefused(f"contract {contract.public_id} is {contract.status}; "
                                f"it cannot become {to_status}")
    event = ContractEvent(contract_id=contract.id, action=action, from_status=contract.status,
                          to_status=to_status, actor=actor, reason=reason, data=data or {})
    contract.status = to_status
    contract.updated_at = utcnow()
    session.add(contract)
    session.add(event)
    return event


def create_contracts(*, session: Session, order: Order, purchase_date: date,
                     plan_sold_on: date | None = None, actor: str = "stripe") -> list[Contract]:
    """One contract per unit of each plan line of a paid order, exactly once.

    Safe under concurrent and repeated calls: the unique (plan_line_id, unit_index) key makes
    the insert a no-op for units that already have a contract (ON CONFLICT DO NOTHING), and
    only the rows this call inserted get a "created" audit row.
    """
    lines = session.exec(select(OrderLine).where(OrderLine.order_id == order.id)).all()
    by_id = {line.id: line for line in lines}
    created: list[Contract] = []
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    for plan_line in (line for line in lines if line.kind == "plan"):
        product_line = by_id.get(plan_line.covers_line_id) or session.get(
            OrderLine, plan_line.covers_line_id)
        rules = pricing.get_version(session, plan_line.rule_set_version)
        category = rules.categories[plan_line.warranty_category]
        coverage, term = plan_line.plan_code.split("-")
        dates = coverage_dates(purchase_date=purchase_date, term_months=int(term),
                               manufacturer_months=product_line.manufacturer_warranty_months,
                               coverage=coverage, plan_sold_on=plan_sold_on)
        for unit in range(plan_line.quantity):
            values = Contract(
                order_id=order.id, plan_line_id=plan_line.id, product_line_id=product_line.id,
                unit_index=unit, customer_email=order.customer_email, sku=product_line.sku,
                product_title=product_line.title, product_price=product_line.unit_price,
                warranty_category=plan_line.warranty_category, plan_code=plan_line.plan_code,
                coverage=coverage, term_months=int(term), price=plan_line.unit_price,
                currency=order.currency, rule_set_version=plan_line.rule_set_version,
                deductible=category.deductible,
                liability_schedule=[str(p) for p in category.liability_schedule],
                purchase_date=purchase_date, plan_sold_on=plan_sold_on or purchase_date,
                term_end=dates.term_end, breakdown_start=dates.breakdown_start,
                accident_start=dates.accident_start, waiting_until=dates.waiting_until,
            ).model_dump(exclude={"id"})
            stmt = insert(Contract.__table__).values(**values).on_conflict_do_nothing(
                index_elements=["plan_line_id", "unit_index"]).returning(Contract.__table__.c.id)
            new_id = session.exec(stmt).scalar()
            if new_id is None:
                continue  # another delivery of the same event got here first
            contract = session.get(Contract, new_id)
            session.add(ContractEvent(contract_id=new_id, action="created", from_status=None,
                                      to_status="active", actor=actor,
                                      data={"order": order.public_id}))
            created.append(contract)
    return created


def get_contract(session: Session, public_id: str) -> Contract:
    """A contract by its public id, or NotFound."""
    from warranty.errors import NotFound

    contract = session.exec(select(Contract).where(Contract.public_id == public_id)).first()
    if contract is None:
        raise NotFound(f"no contract {public_id}", code="unknown_contract")
    return contract


def history(session: Session, contract: Contract) -> list[ContractEvent]:
    """A contract's audit rows, oldest first."""
    return list(session.exec(select(ContractEvent).where(ContractEvent.contract_id == contract.id)
                             .order_by(ContractEvent.id)).all())
