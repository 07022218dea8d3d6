"""Giving an active plan to a new owner."""

from __future__ import annotations

from sqlmodel import Session

from warranty.contracts import lifecycle as contracts
from warranty.contracts import notices as notifications
from warranty.contracts import queries
from warranty.contracts.models import Contract
from warranty.core.errors import Conflict
from warranty.core.settings import Settings
from warranty.orders.models import Order


def transfer_contract(*, session: Session, settings: Settings, contract_id: str, new_email: str,
                      actor: str, reason: str) -> Contract:
    """Give an active plan to a new owner, audited and announced (caller commits)."""
    contract = queries.get_contract(session, contract_id, lock=True)
    email = new_email.strip()
    previous = contract.customer_email
    if email.lower() == previous.lower():
        raise Conflict(f"{contract.public_id} already belongs to {email}", code="same_owner")
    contracts.transition(session=session, contract=contract, to_status="active", actor=actor,
                         action="transferred", reason=reason,
                         data={"from": previous, "to": email})
    contract.customer_email = email
    session.add(contract)
    order = session.get(Order, contract.order_id)
    notifications.notify_transferred(session=session, settings=settings, contract=contract,
                                     order=order, previous_email=previous)
    return contract
