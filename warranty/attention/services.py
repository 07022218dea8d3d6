"""The staff attention queue: money that a person must look at, with its figures.

Raised in the transaction of whatever found the problem (a payment that doesn't match its
order, a Stripe object Stripe no longer knows, a refund Stripe refused or failed, a plan
refunded because every unit already had one, a refund made in Stripe's dashboard), so an
item exists exactly when the change it reports was committed. Each problem has a key: the
same problem reported again (Stripe delivers events more than once) stays one item.
Staff mark an item handled with a note; who and when are kept on the item.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, select

from warranty.attention.models import AttentionItem
from warranty.core.dates import utcnow
from warranty.core.errors import Conflict, NotFound, ValidationFailed
from warranty.db.engine import write_transaction
from warranty.orders.models import Order, Refund

log = logging.getLogger(__name__)

# What each kind means, for the page and the API.
KINDS = {
    "amount_mismatch": "Stripe charged an amount that is not the order's total: no contracts "
                       "were made",
    "stripe_object_missing": "a Stripe event names an object Stripe doesn't know: the event "
                             "was given up",
    "refund_refused": "Stripe refused a refund (or it would exceed the payment): it was not "
                      "made and will not be retried",
    "refund_failed": "Stripe reported a refund failed: the money did not go back",
    "excess_plan_refunded": "a post-purchase plan was paid when every unit already had a "
                            "plan: refunded in full, no contract made",
    "external_refund": "a refund was made in Stripe's dashboard, outside the service",
    "export_failed": "a background export failed every time it was tried: no file was made",
}
STATUSES = ("open", "handled")


def raise_item(*, session: Session, kind: str, key: str, summary: str,
               order: Order | None = None, refund: Refund | None = None,
               stripe_event_id: str | None = None, data: dict | None = None) -> bool:
    """Queue a problem for a person unless the same one (``key``) is queued already.

    True when this call queued it. Runs in the caller's transaction.
    """
    write_transaction(session)
    if kind not in KINDS:
        raise ValueError(f"unknown attention kind {kind!r}")
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    row = AttentionItem(kind=kind, key=f"{kind}:{key}"[:300], summary=summary[:1000],
                        order_id=order.id if order else None,
                        refund_id=refund.id if refund else None,
                        stripe_event_id=stripe_event_id, data=data or {})
    values = row.model_dump(exclude={"id"})
    new_id = session.exec(insert(AttentionItem.__table__).values(**values)
                          .on_conflict_do_nothing(index_elements=["key"])
                          .returning(AttentionItem.__table__.c.id)).scalar()
    if new_id is not None:
        log.error("attention (%s): %s", kind, summary)
    return new_id is not None


@dataclass(frozen=True)
class Page:
    """One page of items and the number of open items per kind."""

    items: list[tuple[AttentionItem, Order | None]]
    total: int
    open_by_kind: dict[str, int]


def search(session: Session, *, status: str | None, kind: str | None, page: int,
           per_page: int) -> Page:
    """Items by status and kind, oldest open first (handled ones newest first)."""
    conditions = []
    if status:
        conditions.append(AttentionItem.status == status)
    if kind:
        conditions.append(AttentionItem.kind == kind)
    total = session.exec(select(sa.func.count()).select_from(AttentionItem)
                         .where(*conditions)).one()
    order_by = (AttentionItem.id.desc(),) if status == "handled" else (
        AttentionItem.status.desc(), AttentionItem.id)  # "open" > "handled": open ones first
    rows = session.exec(select(AttentionItem, Order)
                        .outerjoin(Order, Order.id == AttentionItem.order_id)
                        .where(*conditions).order_by(*order_by)
                        .offset((page - 1) * per_page).limit(per_page)).all()
    return Page(items=[(item, order) for item, order in rows], total=total,
                open_by_kind=open_counts(session))


def get_item(session: Session, public_id: str) -> AttentionItem:
    """An item by its public id, or NotFound."""
    item = session.exec(select(AttentionItem).where(AttentionItem.public_id == public_id)
                        ).first()
    if item is None:
        raise NotFound(f"no attention item {public_id}", code="unknown_attention_item")
    return item


def handle(*, session: Session, public_id: str, actor: str, note: str) -> AttentionItem:
    """Mark an open item handled, with who and why (caller commits).

    A conditional update: of two people handling one item at the same moment, one wins and
    the other gets 409 ``already_handled``.
    """
    write_transaction(session)
    note = note.strip()
    if not note:
        raise ValidationFailed("say what was done (a note is required)", code="note_required")
    item = get_item(session, public_id)
    table = AttentionItem.__table__
    done = session.exec(sa.update(table).where(table.c.id == item.id,
                                               table.c.status == "open")
                        .values(status="handled", handled_at=utcnow(), handled_by=actor[:200],
                                handled_note=note[:2000]))
    if done.rowcount != 1:
        session.refresh(item)  # the other handler's committed row
        raise Conflict(f"{public_id} was already handled by {item.handled_by}",
                       code="already_handled")
    session.refresh(item)
    log.info("attention %s handled by %s", public_id, actor)
    return item


def item_dict(item: AttentionItem, order: Order | None) -> dict:
    """An item as the API shows it."""
    return {
        "id": item.public_id, "kind": item.kind, "status": item.status,
        "summary": item.summary, "meaning": KINDS.get(item.kind, ""),
        "order": order.public_id if order else None,
        "store_order_ref": order.store_order_ref if order else None,
        "customer_email": order.customer_email if order else None,
        "stripe_event_id": item.stripe_event_id, "data": item.data,
        "created_at": item.created_at, "handled_at": item.handled_at,
        "handled_by": item.handled_by, "handled_note": item.handled_note,
    }


def open_counts(session: Session) -> dict[str, int]:
    """Open items per kind (every kind, zeros included)."""
    counts = dict(session.exec(select(AttentionItem.kind, sa.func.count())
                               .where(AttentionItem.status == "open")
                               .group_by(AttentionItem.kind)).all())
    return {name: counts.get(name, 0) for name in KINDS}


def order_of(session: Session, item: AttentionItem) -> Order | None:
    """The order an item is about, if any."""
    return session.get(Order, item.order_id) if item.order_id else None
