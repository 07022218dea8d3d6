"""Reading claims: by id, the staff queue, timelines, files, payouts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session, select

from warranty.claims.models import STATUSES, Claim, ClaimEvent, ClaimFile, ClaimMessage, Payout
from warranty.contracts.models import Contract
from warranty.core.errors import NotFound
from warranty.core.text import normalize_email


def get_claim(session: Session, public_id: str) -> Claim:
    """A claim by its public id, or NotFound."""
    claim = session.exec(select(Claim).where(Claim.public_id == public_id)).first()
    if claim is None:
        raise NotFound(f"no claim {public_id}", code="unknown_claim")
    return claim


def get_claim_for(session: Session, public_id: str, email: str) -> Claim:
    """A claim on a plan the customer owns now (a transfer moves its claims to the new
    owner); anyone else's is reported exactly like a missing one."""
    row = session.exec(select(Claim, Contract.customer_email)
                       .join(Contract, Contract.id == Claim.contract_id)
                       .where(Claim.public_id == public_id)).first()
    if row is None or normalize_email(row[1]) != normalize_email(email):
        raise NotFound(f"no claim {public_id}", code="unknown_claim")
    return row[0]


def get_file(session: Session, claim: Claim, file_id: str) -> ClaimFile:
    """One of the claim's files, or NotFound."""
    row = session.exec(select(ClaimFile).where(ClaimFile.public_id == file_id,
                                               ClaimFile.claim_id == claim.id)).first()
    if row is None:
        raise NotFound(f"no file {file_id}", code="unknown_file")
    return row


def timeline(session: Session, claim: Claim) -> list[ClaimEvent]:
    """The claim's audit rows, oldest first."""
    return list(session.exec(select(ClaimEvent).where(ClaimEvent.claim_id == claim.id)
                             .order_by(ClaimEvent.id)).all())


def messages(session: Session, claim: Claim) -> list[ClaimMessage]:
    """The claim's conversation (staff requests, customer answers), oldest first."""
    return list(session.exec(select(ClaimMessage).where(ClaimMessage.claim_id == claim.id)
                             .order_by(ClaimMessage.id)).all())


def files_of(session: Session, claim: Claim) -> list[ClaimFile]:
    """The claim's attachments, in upload order."""
    return list(session.exec(select(ClaimFile).where(ClaimFile.claim_id == claim.id)
                             .order_by(ClaimFile.id)).all())


def payout_of(session: Session, claim: Claim) -> Payout | None:
    """The claim's payout, if paid."""
    return session.exec(select(Payout).where(Payout.claim_id == claim.id)).first()


@dataclass(frozen=True)
class QueueFilter:
    """The staff queue's filters; None means any."""

    status: str | None = None
    category: str | None = None
    date_from: date | None = None  # filed on or after (store-local date)
    date_to: date | None = None  # filed on or before (store-local date)


# Filter dates are clamped to this range: no claim is filed outside it, and the extremes of
# ``date`` (year 1, year 9999) overflow once shifted by a day or a time zone.
_FILTER_DAYS = (date(1900, 1, 1), date(9000, 1, 1))


def _day_start(day: date, timezone: str) -> datetime:
    """The UTC instant a store-local calendar day begins."""
    day = min(max(day, _FILTER_DAYS[0]), _FILTER_DAYS[1])
    return datetime.combine(day, time.min, tzinfo=ZoneInfo(timezone))


def queue(session: Session, flt: QueueFilter, *, timezone: str, limit: int = 100,
          offset: int = 0) -> tuple[list[tuple[Claim, Contract]], dict[str, int]]:
    """Claims matching the filter (oldest open first) and counts per status."""
    conditions = []
    if flt.category:
        conditions.append(Contract.warranty_category == flt.category)
    if flt.date_from:
        conditions.append(Claim.created_at >= _day_start(flt.date_from, timezone))
    if flt.date_to:
        conditions.append(Claim.created_at < _day_start(
            min(flt.date_to, _FILTER_DAYS[1]) + timedelta(days=1), timezone))
    base = select(Claim.status, sa.func.count()).join(Contract, Contract.id == Claim.contract_id)
    counts = {status: 0 for status in STATUSES}
    for status, count in session.exec(base.where(*conditions).group_by(Claim.status)).all():
        counts[status] = count
    if flt.status:
        conditions.append(Claim.status == flt.status)
    rows = session.exec(select(Claim, Contract).join(Contract, Contract.id == Claim.contract_id)
                        .where(*conditions).order_by(Claim.created_at, Claim.id)
                        .limit(limit).offset(offset)).all()
    return [(claim, contract) for claim, contract in rows], counts
