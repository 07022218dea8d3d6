"""What a customer (an email) owns: plans, claims, an order's plans."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session, select

from warranty.claims.models import Claim
from warranty.contracts.models import Contract
from warranty.core.errors import NotFound
from warranty.core.text import normalize_email
from warranty.orders.models import Order


def get_contract_for(session: Session, public_id: str, email: str) -> Contract:
    """A customer's own plan; someone else's is reported exactly like a missing one."""
    contract = session.exec(select(Contract).where(Contract.public_id == public_id)).first()
    if contract is None or normalize_email(contract.customer_email) != normalize_email(email):
        raise NotFound(f"no plan {public_id}", code="unknown_contract")
    return contract


def plans_for(session: Session, email: str) -> list[Contract]:
    """The customer's plans, newest first."""
    return list(session.exec(
        select(Contract).where(sa.func.lower(Contract.customer_email) == normalize_email(email))
        .order_by(Contract.id.desc())).all())


def claims_for(session: Session, email: str) -> list[Claim]:
    """The claims on the plans a customer owns now, whoever filed them, newest first."""
    return list(session.exec(
        select(Claim).join(Contract, Contract.id == Claim.contract_id)
        .where(sa.func.lower(Contract.customer_email) == normalize_email(email))
        .order_by(Claim.id.desc())).all())


def order_plans(session: Session, email: str, order_ref: str) -> list[Contract]:
    """The plans of the orders with this reference that ``email`` owns now, newest first:
    what an email and order reference may see (nothing of other orders)."""
    return list(session.exec(
        select(Contract).join(Order, Order.id == Contract.order_id)
        .where(sa.func.lower(Contract.customer_email) == normalize_email(email),
               Order.store_order_ref == (order_ref or "").strip())
        .order_by(Contract.id.desc())).all())
