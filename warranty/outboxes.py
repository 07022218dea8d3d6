"""The outboxes as a person looks at them: one registry for ``warranty outbox`` (the worker's
view) and the metrics' backlog and dead-letter gauges, so both count the same rows.

Every outbox has rows that still want work (``pending``; ``retrying`` among them when the last
try failed) and rows given up on, which need a person: mail and store webhooks that used up
their attempts (``dead``), refunds Stripe refused (``failed``), Stripe events whose object
Stripe will never give (``outcome = 'failed'``, also on the attention queue).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session, SQLModel

from warranty.core.dates import utcnow
from warranty.notify.models import MailMessage, OutboundWebhook
from warranty.orders.models import Refund
from warranty.payments.models import StripeEvent


@dataclass(frozen=True)
class Outbox:
    """One outbox: its table and which of its rows wait, and which were given up on."""

    model: type[SQLModel]
    pending: sa.ColumnElement  # rows that still want work
    given_up: sa.ColumnElement  # rows given up on: they need a person
    shown: tuple[str, ...]  # the columns that tell a row apart, besides its error
    # ``warranty outbox retry`` may send a given-up row again (status back to pending)
    requeue: bool = False
    # the rows still failing are listed for a person too, not only the given-up ones
    list_failing: bool = False

    @property
    def table(self) -> sa.Table:
        return self.model.__table__

    @property
    def failing(self) -> sa.ColumnElement:
        """Pending rows whose last try failed."""
        return sa.and_(self.pending, self.table.c.last_error.is_not(None))


OUTBOXES = {
    "mail": Outbox(MailMessage, MailMessage.status == "pending", MailMessage.status == "dead",
                   ("id", "kind", "to", "subject", "attempts", "created_at"), requeue=True),
    "store_webhooks": Outbox(OutboundWebhook, OutboundWebhook.status == "pending",
                             OutboundWebhook.status == "dead",
                             ("id", "event_id", "type", "attempts", "created_at"),
                             requeue=True),
    "refunds": Outbox(Refund, Refund.status == "pending", Refund.status == "failed",
                      ("id", "contract_id", "amount", "currency", "attempts", "created_at")),
    "stripe_events": Outbox(StripeEvent, StripeEvent.processed_at.is_(None),
                            StripeEvent.outcome == "failed",
                            ("id", "type", "attempts", "received_at"), list_failing=True),
}


def counts(session: Session, name: str) -> dict[str, int]:
    """``{"waiting", "retrying", "given_up"}``: how many rows of outbox ``name`` are in each."""
    box = OUTBOXES[name]
    row = session.execute(sa.select(
        sa.func.count().filter(box.pending).label("waiting"),
        sa.func.count().filter(box.failing).label("retrying"),
        sa.func.count().filter(box.given_up).label("given_up")).select_from(box.table)).one()
    return row._asdict()


def report(session: Session, *, limit: int = 20, queues: Iterable[str] | None = None) -> dict:
    """Per outbox: its counts, and the latest ``limit`` rows that need a person (given up
    on; for Stripe events the ones still failing too), each with its last error."""
    found = {}
    for name in queues or OUTBOXES:
        box = OUTBOXES[name]
        table = box.table
        attention = sa.or_(box.given_up, box.failing) if box.list_failing else box.given_up
        columns = [table.c[c] for c in box.shown] + [table.c.last_error]
        order = table.c.get("created_at", table.c.get("received_at"))
        rows = session.execute(sa.select(*columns).where(attention)
                               .order_by(order.desc()).limit(limit)).mappings().all()
        found[name] = {**counts(session, name), "rows": [dict(r) for r in rows]}
    return found


def requeue(session: Session, *, queue: str, ids: Iterable[int]) -> int:
    """Send given-up rows of ``queue`` again from scratch (after a person fixed the cause);
    returns how many. Rows not given up are left alone (a conditional update)."""
    box = OUTBOXES[queue]
    if not box.requeue:
        raise ValueError(f"{queue} rows are not sent again by hand")
    table = box.table
    result = session.execute(sa.update(table).where(table.c.id.in_(list(ids)), box.given_up)
                             .values(status="pending", attempts=0, next_attempt_at=utcnow()))
    return result.rowcount
