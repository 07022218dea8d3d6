"""A product's serial number registered with its contract: by the store, or by the customer.

The serial is normalised once (warranty.core.text.serial_number) and stored with the key
serials are compared by (``serial_key``: the same product on two plans is a claim risk
signal, warranty.claims.signals). Every change is an audit row on the contract
(``serial_number``, with the old and the new value and who made it).

Who may change it:

- the store (a staff token through the API), on any contract, at any time: the store knows
  the unit it shipped, and corrects a typo;
- the customer who owns the plan (signed in with the mailed link), while the plan is active
  and before any claim is filed on it: once a claim exists, the serial it was filed with is
  evidence, and only the store changes it.

Both take the contract's row lock first, as claim filing does, so "no claim yet" cannot
change between the check and the write.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session, select

from warranty.claims.models import Claim
from warranty.contracts import lifecycle as contracts
from warranty.contracts import queries
from warranty.contracts.models import Contract
from warranty.core.dates import utcnow
from warranty.core.errors import Conflict, NotFound, ValidationFailed
from warranty.core.text import normalize_email, serial_key, serial_number


class SerialRefused(ValidationFailed):
    """A serial number that cannot be stored (empty, too long, control characters)."""

    code = "invalid_serial_number"


def normalized(value: str) -> str:
    """The serial as it is stored, or SerialRefused saying why it cannot be one."""
    try:
        return serial_number(value)
    except ValueError as exc:
        raise SerialRefused(str(exc), code="invalid_serial_number",
                            details=[{"at": "serial_number", "message": str(exc)}]) from None


def customer_may_change(session: Session, contract: Contract) -> bool:
    """Whether the plan's owner may still register or correct its serial themselves."""
    if contract.status != "active":
        return False
    claims = session.exec(select(sa.func.count()).select_from(Claim)
                          .where(Claim.contract_id == contract.id)).one()
    return claims == 0


def _write(*, session: Session, contract: Contract, value: str | None, actor: str,
           reason: str) -> Contract:
    """Store the new serial (None clears it) and its audit row; nothing when unchanged."""
    if value == contract.serial_number:
        return contract
    contracts.record(session=session, contract=contract, action="serial_number", actor=actor,
                     reason=reason, data={"from": contract.serial_number, "to": value})
    contract.serial_number = value
    contract.serial_key = serial_key(value) if value is not None else None
    contract.updated_at = utcnow()
    session.add(contract)
    return contract


def set_by_store(*, session: Session, contract_id: str, value: str | None, actor: str,
                 reason: str = "") -> Contract:
    """The store registers, corrects or (``None``) removes a contract's serial (caller
    commits)."""
    serial = normalized(value) if value is not None else None
    contract = queries.get_contract(session, contract_id, lock=True)
    return _write(session=session, contract=contract, value=serial, actor=actor,
                  reason=reason)


def set_by_customer(*, session: Session, contract_id: str, email: str, value: str) -> Contract:
    """The plan's owner registers or corrects its serial (caller commits).

    Someone else's plan is a 404, like a missing one; a plan no longer active, or one a
    claim was filed on, is a 409 ``serial_locked`` (the store can still change it).
    """
    contract = queries.get_contract(session, contract_id, lock=True)
    if normalize_email(contract.customer_email) != normalize_email(email):
        # Before the value is looked at: someone else's plan answers nothing but this.
        raise NotFound(f"no plan {contract_id}", code="unknown_contract")
    serial = normalized(value)
    if not customer_may_change(session, contract):
        raise Conflict("the serial number of this plan can no longer be changed here (the "
                       "plan is not active, or a claim was filed on it); ask the store",
                       code="serial_locked")
    return _write(session=session, contract=contract, value=serial,
                  actor=f"customer:{normalize_email(email)}", reason="")
