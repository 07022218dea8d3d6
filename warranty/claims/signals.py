"""Claim risk signals for staff: facts worth a second look, never a decision.

Nothing here denies, holds or approves a claim: the automatic rules (warranty.claims.rules)
decide what they can, and these signals are shown beside the claim on the staff review page
and in the staff API's ``risk_signals``. Each is judged as of the claim's own dates (its
incident date, its filing time), so a claim reviewed a year later shows what it showed on the
day it was filed; only ``same_serial`` names every other plan or claim with the serial,
whenever it appeared (a unit sold twice is worth knowing about at any time).

- ``same_serial``: the serial the claim was filed with (else the plan's) is on another
  contract, or on a claim filed on another contract (serials compared by
  warranty.core.text.serial_key).
- ``frequent_claims``: the customer who filed it filed at least
  ``WARRANTY_SIGNAL_CLAIMS_COUNT`` claims (this one included, on any of their plans) within
  ``WARRANTY_SIGNAL_CLAIMS_WINDOW_DAYS`` days ending on its filing date (store dates; claims
  filed after it do not count).
- ``soon_after_purchase``: the incident is fewer than ``WARRANTY_SIGNAL_SOON_DAYS`` days
  after the plan's sale date (a plan bought later counts from its own sale).
- ``near_cap``: what was paid on the plan before the claim was filed, plus this claim's
  amount after the deductible (the approved amount once decided, else the customer's
  estimate), reaches ``WARRANTY_SIGNAL_CAP_PERCENT`` % of the cap of the incident's coverage
  year, or leaves less than ``WARRANTY_SIGNAL_CAP_MARGIN`` of it. The margin is set in major
  units of the currency and converted by its exponent (warranty.core.money.from_major):
  ``"10000"`` is 10,000 minor units in JPY (¥10,000) and ``"100"`` is 10,000 minor units in
  USD ($100.00), so a store does not write ¥ figures that mean dollars.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import sqlalchemy as sa
from sqlmodel import Session, select

from warranty.claims.models import Claim, Payout
from warranty.claims.payouts import liability_cap
from warranty.contracts.models import Contract
from warranty.core import money
from warranty.core.dates import store_today
from warranty.core.settings import Settings

# How many other contracts and claims a same_serial signal names (the count is exact).
LISTED = 20
# Every signal's code, in the order signals_for gives them.
CODES = ("same_serial", "frequent_claims", "soon_after_purchase", "near_cap")


@dataclass(frozen=True)
class Signal:
    """One risk signal: a stable code, a sentence for staff, and its figures."""

    code: str
    message: str
    details: dict = field(default_factory=dict)


def _filed_on(claim: Claim, timezone: str) -> date:
    """The store-local date the claim was filed."""
    return store_today(timezone, claim.created_at)


def same_serial(session: Session, claim: Claim, contract: Contract) -> Signal | None:
    """Other contracts, and claims on other contracts, with this claim's serial."""
    key = claim.serial_key or contract.serial_key
    if not key:
        return None
    others = session.exec(select(Contract.public_id).where(
        Contract.serial_key == key, Contract.id != contract.id).order_by(Contract.id)).all()
    claims = session.exec(select(Claim.public_id).where(
        Claim.serial_key == key, Claim.contract_id != contract.id).order_by(Claim.id)).all()
    if not others and not claims:
        return None
    serial = claim.serial_number or contract.serial_number
    return Signal("same_serial",
                  f"Serial {serial} is also on {len(others)} other contract(s) and "
                  f"{len(claims)} claim(s) on other contracts.",
                  {"serial_number": serial, "contracts": list(others[:LISTED]),
                   "claims": list(claims[:LISTED]), "contract_count": len(others),
                   "claim_count": len(claims)})


def frequent_claims(session: Session, claim: Claim, *, settings: Settings) -> Signal | None:
    """Several claims by the same customer within the window ending on this one's filing."""
    window = settings.signal_claims_window_days
    filed_on = _filed_on(claim, settings.timezone)
    first_day = filed_on - timedelta(days=window - 1)
    # A day of slack either side of the UTC bounds; the store dates decide below.
    since = claim.created_at - timedelta(days=window + 1)
    # Claims filed after this one (higher ids) never count: it is judged as it was filed.
    rows = session.exec(select(Claim).where(
        Claim.customer_email == claim.customer_email, Claim.created_at >= since,
        Claim.id <= claim.id).order_by(Claim.id)).all()
    within = [row for row in rows if first_day <= _filed_on(row, settings.timezone) <= filed_on]
    if len(within) < settings.signal_claims_count:
        return None
    return Signal("frequent_claims",
                  f"{claim.customer_email} filed {len(within)} claims from "
                  f"{first_day.isoformat()} to {filed_on.isoformat()} ({window} days), this "
                  f"one included.",
                  {"count": len(within), "window_days": window, "from": first_day.isoformat(),
                   "to": filed_on.isoformat(), "claims": [row.public_id for row in within]})


def soon_after_purchase(claim: Claim, contract: Contract, *,
                        settings: Settings) -> Signal | None:
    """An incident within the first days after the plan was sold."""
    days = (claim.incident_date - contract.plan_sold_on).days
    if not 0 <= days < settings.signal_soon_days:
        return None
    return Signal("soon_after_purchase",
                  f"The incident ({claim.incident_date.isoformat()}) is {days} day(s) after "
                  f"the plan was sold ({contract.plan_sold_on.isoformat()}).",
                  {"days": days, "threshold_days": settings.signal_soon_days,
                   "plan_sold_on": contract.plan_sold_on.isoformat(),
                   "incident_date": claim.incident_date.isoformat()})


def near_cap(session: Session, claim: Claim, contract: Contract, *,
             settings: Settings) -> Signal | None:
    """Paid before the filing plus this claim (after the deductible), against the year's cap."""
    amount = claim.approved_amount if claim.approved_amount is not None \
        else claim.estimated_amount
    after_deductible = max((amount or 0) - contract.deductible, 0)
    paid_before = int(session.exec(
        select(sa.func.coalesce(sa.func.sum(Payout.amount), 0))
        .where(Payout.contract_id == contract.id, Payout.claim_id != claim.id,
               Payout.created_at < claim.created_at)).one())
    cap = liability_cap(contract, claim.coverage_year)
    total = paid_before + after_deductible
    share_line = money.percent_of(cap, settings.signal_cap_percent)
    margin = settings.cap_margin(contract.currency)
    left = cap - total
    by_share = cap > 0 and total >= share_line
    by_margin = margin > 0 and left < margin
    if not (by_share or by_margin) or total == 0:
        return None
    fmt = money.format_amount
    currency = contract.currency
    return Signal("near_cap",
                  f"Paid before ({fmt(paid_before, currency)}) plus this claim "
                  f"({fmt(after_deductible, currency)} after the deductible) is "
                  f"{fmt(total, currency)} of the year {claim.coverage_year} cap "
                  f"{fmt(cap, currency)}; {fmt(max(left, 0), currency)} would be left.",
                  {"paid_before": paid_before, "claim_amount": after_deductible,
                   "total": total, "cap": cap, "left": left, "currency": currency,
                   "coverage_year": claim.coverage_year,
                   "threshold_percent": settings.signal_cap_percent,
                   "threshold_amount": share_line, "margin": margin,
                   "by_share": by_share, "by_margin": by_margin})


def signals_for(session: Session, claim: Claim, *, settings: Settings,
                contract: Contract | None = None) -> list[Signal]:
    """Every risk signal of a claim, in a fixed order (reads only)."""
    contract = contract or session.get(Contract, claim.contract_id)
    found = [same_serial(session, claim, contract),
             frequent_claims(session, claim, settings=settings),
             soon_after_purchase(claim, contract, settings=settings),
             near_cap(session, claim, contract, settings=settings)]
    return [signal for signal in found if signal is not None]
