"""Reading contracts: one by its public id (optionally locked), staff's search, a contract's
refund and its audit rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa
from sqlmodel import Session, select

from warranty.contracts.models import Contract, ContractEvent
from warranty.core.errors import NotFound
from warranty.db.engine import write_transaction
from warranty.orders.models import Order, Refund


def get_contract(session: Session, public_id: str, *, lock: bool = False) -> Contract:
    """A contract by its public id, or NotFound; ``lock`` re-reads it FOR UPDATE.

    Locking serialises concurrent changes to one contract on PostgreSQL (SQLite's
    BEGIN IMMEDIATE already does); the re-read sees what the previous holder committed.
    """
    query = select(Contract).where(Contract.public_id == public_id)
    if lock:
        write_transaction(session)
        query = query.with_for_update(key_share=True).execution_options(populate_existing=True)
    contract = session.exec(query).first()
    if contract is None:
        raise NotFound(f"no contract {public_id}", code="unknown_contract")
    return contract


@dataclass(frozen=True)
class ContractFilter:
    """What staff search contracts by; every field is optional."""

    email: str | None = None
    order: str | None = None  # the store's order reference or our ord_ id
    status: str | None = None
    purchased_from: date | None = None
    purchased_to: date | None = None
    term_ends_from: date | None = None
    term_ends_to: date | None = None
    # One term staff typed: a contract number, an email, an order reference (or ord_ id) or a
    # sku, matched exactly (an email without regard to case).
    text: str | None = None


def search(session: Session, where: ContractFilter, *, page: int,
           per_page: int) -> tuple[list[tuple[Contract, Order]], int]:
    """One page of matching contracts with their orders (newest first), and the total."""
    conditions = []
    if where.email:
        conditions.append(sa.func.lower(Contract.customer_email) == where.email.strip().lower())
    if where.order:
        conditions.append(sa.or_(Order.store_order_ref == where.order,
                                 Order.public_id == where.order))
    if where.text and where.text.strip():
        term = where.text.strip()
        conditions.append(sa.or_(Contract.public_id == term,
                                 sa.func.lower(Contract.customer_email) == term.lower(),
                                 Order.store_order_ref == term, Order.public_id == term,
                                 Contract.sku == term))
    if where.status:
        conditions.append(Contract.status == where.status)
    for column, low, high in ((Contract.purchase_date, where.purchased_from, where.purchased_to),
                              (Contract.term_end, where.term_ends_from, where.term_ends_to)):
        if low:
            conditions.append(column >= low)
        if high:
            conditions.append(column <= high)
    joined = select(Contract, Order).join(Order, Order.id == Contract.order_id)
    total = session.exec(select(sa.func.count()).select_from(
        joined.where(*conditions).subquery())).one()
    rows = session.exec(joined.where(*conditions).order_by(Contract.id.desc())
                        .offset((page - 1) * per_page).limit(per_page)).all()
    return [(contract, order) for contract, order in rows], total


def refund_of(session: Session, contract: Contract) -> Refund | None:
    """The contract's refund, if it was cancelled with one."""
    return session.exec(select(Refund).where(Refund.contract_id == contract.id)).first()


def history(session: Session, contract: Contract) -> list[ContractEvent]:
    """A contract's audit rows, oldest first."""
    return list(session.exec(select(ContractEvent).where(ContractEvent.contract_id == contract.id)
                             .order_by(ContractEvent.id)).all())
