"""Contracts: created once per paid plan unit, changed only through the transition table."""

from __future__ import annotations

from datetime import date

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, select

from warranty.contracts.models import Contract, ContractEvent
from warranty.core.dates import utcnow
from warranty.core.errors import Conflict, NotFound
from warranty.coverage.dates import coverage_dates
from warranty.db import touched_customers
from warranty.db.engine import write_transaction
from warranty.orders import tax as order_tax
from warranty.orders.models import Order, OrderLine
from warranty.periods import booking as periods
from warranty.pricing import rules as pricing_rules
from warranty.pricing import terms

# Allowed status changes; anything else raises. "active" → "active" is a transfer. An
# expired plan never becomes active again; it is fulfilled when a claim for an incident
# inside its term (filed within the window after it) replaces the product or uses up the cap,
# and cancelled by a cancellation dated inside its term (the refund rule refuses later
# dates), so that neither outcome depends on whether the expiry job ran first.
TRANSITIONS: dict[str, set[str]] = {
    "active": {"cancelled", "expired", "fulfilled", "active"},
    "cancelled": set(),
    "expired": {"fulfilled", "cancelled"},
    "fulfilled": set(),
}


class TransitionRefused(Conflict):
    """A status change the transition table does not allow."""

    code = "transition_refused"


def check_transition(contract: Contract, to_status: str) -> None:
    """Raise TransitionRefused unless the table allows ``contract`` to become ``to_status``."""
    if to_status not in TRANSITIONS.get(contract.status, set()):
        raise TransitionRefused(f"contract {contract.public_id} is {contract.status}; "
                                f"it cannot become {to_status}")


def lock(session: Session, contract_id: int) -> Contract:
    """The contract re-read under its row lock (``FOR UPDATE``): what the previous holder
    committed, and no one else's change until this transaction ends.

    Every read-decide-write on a contract takes this first (on SQLite, BEGIN IMMEDIATE
    already serialises writers). Locks are taken in one order everywhere: the order row,
    the order line, the contract, then its claims or refund (docs/concurrency.md).
    """
    write_transaction(session)
    contract = session.exec(select(Contract).where(Contract.id == contract_id)
                            .with_for_update(key_share=True).execution_options(populate_existing=True)).first()
    if contract is None:
        raise NotFound(f"no contract {contract_id}", code="unknown_contract")
    return contract


def _unchanged(session: Session, contract: Contract) -> None:
    """Refuse a change decided on a status that is no longer the committed one.

    The callers lock and re-read the contract before they decide; this re-checks under the
    lock, so a path that forgot to cannot overwrite a concurrent change (lost update).
    """
    if contract.id is None:
        return
    current = session.exec(select(Contract.status).where(Contract.id == contract.id)
                           .with_for_update(key_share=True)).one()
    if current != contract.status:
        raise Conflict(f"contract {contract.public_id} became {current} meanwhile; reload it",
                       code="concurrent_change")


def transition(*, session: Session, contract: Contract, to_status: str, actor: str,
               action: str, reason: str = "", data: dict | None = None) -> ContractEvent:
    """Move a contract to ``to_status`` and write the audit row (caller commits)."""
    check_transition(contract, to_status)
    _unchanged(session, contract)
    event = ContractEvent(contract_id=contract.id, action=action, from_status=contract.status,
                          to_status=to_status, actor=actor, reason=reason, data=data or {})
    contract.status = to_status
    contract.updated_at = utcnow()
    session.add(contract)
    session.add(event)
    return event


def create_contracts(*, session: Session, order: Order, purchase_date: date,
                     conditions: terms.Conditions | None = None,
                     plan_sold_on: date | None = None,
                     actor: str = "stripe", unit_limit: int | None = None) -> list[Contract]:
    """One contract per unit of each plan line of a paid order, exactly once.

    Safe under concurrent and repeated calls: the unique (plan_line_id, unit_index) key makes
    the insert a no-op for units that already have a contract (ON CONFLICT DO NOTHING), and
    only the rows this call inserted get a "created" audit row. ``unit_limit`` caps the
    units per plan line (a post-purchase plan whose product line had room for fewer).
    Each contract keeps the terms version of its rule set under the store's ``conditions``
    of the sale (recorded here the first time it is used; None: the service's defaults).
    """
    conditions = conditions or terms.Conditions(currency=order.currency)
    lines = session.exec(select(OrderLine).where(OrderLine.order_id == order.id)).all()
    by_id = {line.id: line for line in lines}
    # A sale dated in a month finance has closed is booked on the first open day.
    booked_on = periods.booking_date(session, plan_sold_on or purchase_date)
    created: list[Contract] = []
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    for plan_line in (line for line in lines if line.kind == "plan"):
        product_line = by_id.get(plan_line.covers_line_id) or session.get(
            OrderLine, plan_line.covers_line_id)
        rules = pricing_rules.get_version(session, plan_line.rule_set_version)
        terms_version = terms.record(session, plan_line.rule_set_version, conditions)
        category = rules.categories[plan_line.warranty_category]
        coverage, term = plan_line.plan_code.split("-")
        dates = coverage_dates(purchase_date=purchase_date, term_months=int(term),
                               manufacturer_months=product_line.manufacturer_warranty_months,
                               coverage=coverage, plan_sold_on=plan_sold_on)
        units = plan_line.quantity if unit_limit is None else min(plan_line.quantity,
                                                                  unit_limit)
        shares = order_tax.unit_shares(plan_line, order.currency)
        for unit in range(units):
            price, tax = shares[unit]
            values = Contract(
                order_id=order.id, plan_line_id=plan_line.id, product_line_id=product_line.id,
                unit_index=unit, customer_email=order.customer_email, sku=product_line.sku,
                product_title=product_line.title, product_price=product_line.unit_price,
                warranty_category=plan_line.warranty_category, plan_code=plan_line.plan_code,
                coverage=coverage, term_months=int(term), price=price, tax=tax,
                currency=order.currency, rule_set_version=plan_line.rule_set_version,
                terms_version=terms_version,
                deductible=category.deductible,
                liability_schedule=[str(p) for p in category.liability_schedule],
                purchase_date=purchase_date, plan_sold_on=plan_sold_on or purchase_date,
                booked_on=booked_on, term_end=dates.term_end, breakdown_start=dates.breakdown_start,
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
    if created:  # Core inserts: the customer's retention facts are recomputed at commit
        touched_customers.touch(session, emails=[order.customer_email])
    return created


def record(*, session: Session, contract: Contract, action: str, actor: str,
           reason: str = "", data: dict | None = None) -> ContractEvent:
    """An audit row for something that keeps the status (a refund paid out, ...)."""
    write_transaction(session)
    event = ContractEvent(contract_id=contract.id, action=action, from_status=contract.status,
                          to_status=contract.status, actor=actor, reason=reason,
                          data=data or {})
    session.add(event)
    return event


def expire_ended(*, session: Session, today: date, limit: int) -> list[Contract]:
    """Mark active contracts whose term ended before ``today`` as expired (caller commits)."""
    due = session.exec(select(Contract).where(Contract.status == "active",
                                              Contract.term_end < today)
                       .order_by(Contract.id).limit(limit)
                       .with_for_update(skip_locked=True, key_share=True)).all()
    for contract in due:
        transition(session=session, contract=contract, to_status="expired", actor="system",
                   action="expired", reason=f"term ended on {contract.term_end.isoformat()}")
    return list(due)
