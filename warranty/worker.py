"""The background worker: applies Stripe events left unprocessed, sends mail, delivers store
webhooks, retries refunds, expires plans.

Each job is ``run_<job>(*, settings, limit) -> int`` (rows it worked on; the two that call
Stripe also take the worker's ``stripe_client``) and claims its rows safely
(warranty.db.outbox), so any number of ``warranty worker`` processes can run side by side.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session, SQLModel

from warranty.contracts import lifecycle as contracts
from warranty.core.dates import store_today, utcnow
from warranty.core.settings import Settings
from warranty.customers import facts
from warranty.db import outbox as jobs
from warranty.db.engine import session_scope
from warranty.notify.mail import run_mail
from warranty.notify.models import MailMessage, OutboundWebhook
from warranty.notify.webhooks import run_webhooks
from warranty.orders.models import Refund
from warranty.payments import events as stripe_events
from warranty.payments.client import StripeClient
from warranty.payments.models import StripeEvent
from warranty.payments.refunds import run_refunds

log = logging.getLogger(__name__)


def run_expiry(*, settings: Settings, limit: int = 200) -> int:
    """Mark active contracts whose term has ended as expired; returns how many."""
    with session_scope(settings.database_url) as session:
        return len(contracts.expire_ended(session=session,
                                          today=store_today(settings.timezone), limit=limit))


JOBS = {"stripe_events": stripe_events.run_stripe_events, "refunds": run_refunds,
        "mail": run_mail, "webhooks": run_webhooks, "expiry": run_expiry}
STRIPE_JOBS = {"stripe_events", "refunds"}  # the jobs that take the worker's Stripe client


def run_once(*, settings: Settings, stripe_client: StripeClient,
             limit: int = 50) -> dict[str, int]:
    """One pass over every job; a failing job is logged and the others still run."""
    facts.install()
    done = {}
    for name, job in JOBS.items():
        extra = {"stripe_client": stripe_client} if name in STRIPE_JOBS else {}
        try:
            done[name] = job(settings=settings, limit=limit, **extra)
        except jobs.DATABASE_UNAVAILABLE as exc:  # a restart: one line, not a traceback a pass
            log.warning("worker job %s: database unavailable: %s", name,
                        str(exc.orig or exc).splitlines()[0])
            done[name] = 0
        except Exception:  # a database blip must not stop the loop; the rows stay stored
            log.exception("worker job %s failed", name)
            done[name] = 0
    return done


def run_forever(*, settings: Settings, stripe_client: StripeClient, stop: threading.Event,
                limit: int = 50) -> None:
    """Pass after pass until ``stop`` is set, resting only when there was nothing to do."""
    while not stop.is_set():
        if not any(run_once(settings=settings, stripe_client=stripe_client,
                            limit=limit).values()):
            stop.wait(settings.worker_interval_seconds)


# --- the outboxes as a person looks at them (``warranty outbox``) ---------------------------


@dataclass(frozen=True)
class Outbox:
    """One outbox as a person looks at it."""

    model: type[SQLModel]
    pending: sa.ColumnElement  # rows that still want work
    given_up: str | None  # the status of a row given up on (Stripe events have none)
    shown: tuple[str, ...]  # the columns that tell a row apart, besides its error
    requeue: bool  # whether a dead row may be sent again by hand (``warranty outbox retry``)


OUTBOXES = {
    "mail": Outbox(MailMessage, MailMessage.status == "pending", "dead",
                   ("id", "kind", "to", "subject", "attempts", "created_at"), True),
    "store_webhooks": Outbox(OutboundWebhook, OutboundWebhook.status == "pending", "dead",
                             ("id", "event_id", "type", "attempts", "created_at"), True),
    "refunds": Outbox(Refund, Refund.status == "pending", "failed",
                      ("id", "contract_id", "amount", "currency", "attempts", "created_at"),
                      False),
    "stripe_events": Outbox(StripeEvent, StripeEvent.processed_at.is_(None), None,
                            ("id", "type", "attempts", "received_at"), False),
}


def outbox_report(session: Session, *, limit: int = 20,
                  queues: Iterable[str] | None = None) -> dict:
    """Per outbox: rows waiting, waiting after a failed try, and given up on; and the latest
    ``limit`` rows that need a person (given up on, or for Stripe events still failing),
    each with its last error."""
    report = {}
    for name in queues or OUTBOXES:
        box = OUTBOXES[name]
        table = box.model.__table__
        failing = sa.and_(box.pending, table.c.last_error.is_not(None))
        counts = {"waiting": sa.func.count().filter(box.pending),
                  "retrying": sa.func.count().filter(failing)}
        attention = failing
        if box.given_up is not None:
            counts["given_up"] = sa.func.count().filter(table.c.status == box.given_up)
            attention = table.c.status == box.given_up
        row = session.execute(sa.select(*(c.label(k) for k, c in counts.items()))
                              .select_from(table)).one()
        columns = [table.c[c] for c in box.shown] + [table.c.last_error]
        order = table.c.get("created_at", table.c.get("received_at"))
        rows = session.execute(sa.select(*columns).where(attention)
                               .order_by(order.desc()).limit(limit)).mappings().all()
        report[name] = {**row._asdict(), "given_up_status": box.given_up,
                        "rows": [dict(r) for r in rows]}
    return report


def requeue(session: Session, *, queue: str, ids: Iterable[int]) -> int:
    """Send dead rows of ``queue`` again from scratch (after a person fixed the cause);
    returns how many. Rows that are not dead are left alone (a conditional update)."""
    box = OUTBOXES[queue]
    if not box.requeue:
        raise ValueError(f"{queue} rows are not sent again by hand")
    table = box.model.__table__
    result = session.execute(sa.update(table).where(
        table.c.id.in_(list(ids)), table.c.status == box.given_up).values(
        status="pending", attempts=0, next_attempt_at=utcnow()))
    return result.rowcount
