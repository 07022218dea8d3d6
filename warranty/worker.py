"""The background worker: applies Stripe events left unprocessed, sends mail, delivers store
webhooks, retries refunds, expires plans, writes background exports.

Each job is ``run_<job>(*, settings, limit) -> int`` (rows it worked on; the two that call
Stripe also take the worker's ``stripe_client``) and claims its rows safely
(warranty.db.outbox), so any number of ``warranty worker`` processes can run side by side.
"""

from __future__ import annotations

import logging
import threading

from warranty.contracts import lifecycle as contracts
from warranty.core.dates import store_today
from warranty.core.settings import Settings
from warranty.customers import facts
from warranty.db import outbox as jobs
from warranty.db.engine import session_scope
from warranty.exports.services import run_exports
from warranty.notify.mail import run_mail
from warranty.notify.webhooks import run_webhooks
from warranty.payments import events as stripe_events
from warranty.payments.client import StripeClient
from warranty.payments.refunds import run_refunds
from warranty.rollups import upkeep as rollup_upkeep

log = logging.getLogger(__name__)


def run_expiry(*, settings: Settings, limit: int = 200) -> int:
    """Mark active contracts whose term has ended as expired; returns how many."""
    with session_scope(settings.database_url) as session:
        return len(contracts.expire_ended(session=session,
                                          today=store_today(settings.timezone), limit=limit))


JOBS = {"stripe_events": stripe_events.run_stripe_events, "refunds": run_refunds,
        "mail": run_mail, "webhooks": run_webhooks, "expiry": run_expiry,
        # Last, and one per pass: an export can take minutes (warranty.exports).
        "exports": run_exports}
STRIPE_JOBS = {"stripe_events", "refunds"}  # the jobs that take the worker's Stripe client


def run_once(*, settings: Settings, stripe_client: StripeClient,
             limit: int = 50) -> dict[str, int]:
    """One pass over every job; a failing job is logged and the others still run."""
    facts.install()
    done = {}
    for name, job in JOBS.items():
        extra = {"stripe_client": stripe_client} if name in STRIPE_JOBS else {}
        try:
            done[name] = job(settings=settings, limit=1 if name == "exports" else limit,
                             **extra)
        except jobs.DATABASE_UNAVAILABLE as exc:  # a restart: one line, not a traceback a pass
            log.warning("worker job %s: database unavailable: %s", name,
                        str(exc.orig or exc).splitlines()[0])
            done[name] = 0
        except Exception:  # a database blip must not stop the loop; the rows stay stored
            log.exception("worker job %s failed", name)
            done[name] = 0
    try:  # upkeep, not a job: folding rollup rows changes no figure, so it is not counted
        rollup_upkeep.compact_database(settings.database_url)
    except jobs.DATABASE_UNAVAILABLE as exc:
        log.warning("worker: rollup compaction: database unavailable: %s",
                    str(exc.orig or exc).splitlines()[0])
    except Exception:
        log.exception("worker: compacting the rollups failed")
    return done


def run_forever(*, settings: Settings, stripe_client: StripeClient, stop: threading.Event,
                limit: int = 50) -> None:
    """Pass after pass until ``stop`` is set, resting only when there was nothing to do."""
    while not stop.is_set():
        if not any(run_once(settings=settings, stripe_client=stripe_client,
                            limit=limit).values()):
            stop.wait(settings.worker_interval_seconds)
