"""A customer's history, shown to staff deciding a claim."""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlmodel import Session, select

from warranty.claims.models import Claim, NpsAnswer, Payout
from warranty.contracts.models import Contract, ContractEvent
from warranty.core.text import normalize_email
from warranty.customers.lookup import plans_for
from warranty.notify.models import MailMessage
from warranty.orders.models import Order, Refund


@dataclass
class CustomerHistory:
    """Everything about one customer, for answering a support chat."""

    email: str
    orders: list[Order]
    contracts: list[Contract]
    claims: list[Claim]
    payouts: list[Payout]
    mails: list[MailMessage]
    nps: list[NpsAnswer]
    # Refunds on the customer's orders or plans (newest first), and the audit rows of their
    # plans' cancellations (by staff, by a return, by a refunded payment), newest first.
    refunds: list[Refund] = field(default_factory=list)
    cancellations: list[tuple[ContractEvent, Contract]] = field(default_factory=list)


def customer_history(session: Session, email: str) -> CustomerHistory:
    """Orders, plans, claims, payouts, mails and NPS answers of one email."""
    email = normalize_email(email)
    orders = list(session.exec(select(Order).where(sa.func.lower(Order.customer_email) == email)
                               .order_by(Order.id.desc())).all())
    plans = plans_for(session, email)
    plan_ids = [c.id for c in plans]
    claim_rows = list(session.exec(
        select(Claim).where(sa.or_(Claim.customer_email == email,
                                   Claim.contract_id.in_(plan_ids or [-1])))
        .order_by(Claim.id.desc())).all())
    claim_ids = [c.id for c in claim_rows] or [-1]
    payouts = list(session.exec(select(Payout).where(Payout.claim_id.in_(claim_ids))
                                .order_by(Payout.id)).all())
    mails = list(session.exec(select(MailMessage)
                              .where(sa.func.lower(MailMessage.to) == email)
                              .order_by(MailMessage.id.desc())).all())
    nps = list(session.exec(select(NpsAnswer).where(NpsAnswer.claim_id.in_(claim_ids))).all())
    order_ids = [o.id for o in orders] or [-1]
    refunds = list(session.exec(
        select(Refund).where(sa.or_(Refund.order_id.in_(order_ids),
                                    Refund.contract_id.in_(plan_ids or [-1])))
        .order_by(Refund.id.desc())).all())
    by_id = {c.id: c for c in plans}
    cancellations = [(event, by_id[event.contract_id]) for event in session.exec(
        select(ContractEvent).where(ContractEvent.contract_id.in_(plan_ids or [-1]),
                                    ContractEvent.to_status == "cancelled",
                                    # the change itself, not later rows about its refund
                                    sa.or_(ContractEvent.from_status.is_(None),
                                           ContractEvent.from_status != "cancelled"))
        .order_by(ContractEvent.id.desc())).all()]
    return CustomerHistory(email=email, orders=orders, contracts=plans, claims=claim_rows,
                           payouts=payouts, mails=mails, nps=nps, refunds=refunds,
                           cancellations=cancellations)
