"""Outbound webhooks to the store: stored first, signed with HMAC-SHA256, retried.

Each event is an ``OutboundWebhook`` row written in the caller's transaction. The worker
POSTs its JSON body to ``WARRANTY_STORE_WEBHOOK_URL`` with

    Warranty-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">

keyed with ``WARRANTY_STORE_WEBHOOK_SECRET``. A 2xx answer delivers it; anything else is
retried with exponential backoff up to ``WARRANTY_WEBHOOK_MAX_ATTEMPTS``, then marked dead.
An event whose body cannot be serialised is dead at once, with the reason. Each event is
claimed right before its POST (its own lease) and failed on its own: one bad event or a
slow store never holds back the others.
The store deduplicates on the event ``id`` (also sent as ``Warranty-Event-Id``).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import time
import urllib.error
import urllib.request
from functools import partial

from sqlmodel import Session

from warranty import __version__
from warranty.core.dates import utcnow
from warranty.core.ids import public_id
from warranty.core.settings import Settings
from warranty.db import outbox as jobs
from warranty.db.engine import write_transaction
from warranty.notify.models import OutboundWebhook

log = logging.getLogger(__name__)

EVENT_TYPES = ("contract.created", "contract.cancelled", "contract.transferred",
               "contract.fulfilled", "refund.succeeded", "refund.failed",
               "claim.submitted", "claim.in_review", "claim.info_requested", "claim.approved",
               "claim.denied", "claim.paid", "claim.closed")
SIGNATURE_HEADER = "Warranty-Signature"
LEASE_SECONDS = 120  # longer than one delivery with its timeout


def queue_event(*, session: Session, type: str, data: dict) -> OutboundWebhook:
    """Store an event for delivery to the store (caller commits)."""
    write_transaction(session)
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event type {type!r}")
    event_id = public_id("evt")
    row = OutboundWebhook(event_id=event_id, type=type, payload={
        "id": event_id, "type": type, "created": int(time.time()), "data": data})
    session.add(row)
    return row


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The signature header value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is not a delivery: urllib would replay a POST as a body-less GET."""

    def redirect_request(self, *args, **kwargs):
        """Refuse to follow; the 3xx surfaces as an HTTPError."""
        return None


_opener = urllib.request.build_opener(_NoRedirects)


def body_of(payload: dict) -> bytes:
    """The exact bytes POSTed (and signed); ValueError/TypeError if they cannot be made."""
    # Strict JSON: NaN would reach the store as a literal its parser refuses.
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"),
                      allow_nan=False).encode()


def _deliver(settings: Settings, event_id: str, body: bytes) -> str | None:
    """POST one event's body; None when the store accepted it, else what went wrong."""
    request = urllib.request.Request(settings.store_webhook_url, data=body, method="POST",
                                     headers={
                                         "Content-Type": "application/json",
                                         "User-Agent": f"warranty/{__version__}",
                                         "Warranty-Event-Id": event_id,
                                         SIGNATURE_HEADER: sign(settings.store_webhook_secret,
                                                                body, int(time.time())),
                                     })
    try:
        with _opener.open(request, timeout=settings.store_webhook_timeout_seconds):
            return None  # the opener raises for every status outside 2xx
    except urllib.error.HTTPError as exc:
        return f"store answered HTTP {exc.code}"
    except (OSError, ValueError, http.client.HTTPException) as exc:
        return f"delivery failed: {exc}"


def _attempt(settings: Settings, row: OutboundWebhook) -> tuple[str | None, bool]:
    """Serialise and deliver one claimed event: (error or None, whether it is for good)."""
    try:
        body = body_of(row.payload)
    except (TypeError, ValueError) as exc:
        return f"payload cannot be serialised: {exc}", True
    try:
        return _deliver(settings, row.event_id, body), False
    except Exception as exc:  # whatever this one event raises is its own
        log.exception("webhook %s could not be delivered", row.event_id)
        return f"delivery failed: {type(exc).__name__}: {exc}", False


def _record(session: Session, *, settings: Settings, event_id: int, error: str | None,
            permanent: bool = False) -> None:
    """Record one delivery: delivered, retried later (dead after the last attempt), or dead."""
    row = session.get(OutboundWebhook, event_id)
    if error is None:
        row.status, row.delivered_at, row.last_error = "delivered", utcnow(), None
    elif permanent:
        log.warning("webhook %s (%s) dead: %s", row.event_id, row.type, error)
        jobs.give_up(row, error)
    else:
        log.warning("webhook %s (%s): %s", row.event_id, row.type, error)
        jobs.retry_later(row, error, settings, settings.webhook_max_attempts)
    session.add(row)


def run_webhooks(*, settings: Settings, limit: int = 50) -> int:
    """Deliver up to ``limit`` due events, each claimed right before its POST; returns how
    many were tried.

    With no store URL configured nothing is claimed: events wait, stored, until one is.
    """
    if not settings.store_webhook_url:
        return 0
    patience = LEASE_SECONDS / 2  # recording waits out a database restart, inside the lease
    tried = 0
    for row in jobs.each_due(settings=settings, model=OutboundWebhook,
                             lease_seconds=LEASE_SECONDS, limit=limit):
        tried += 1
        error, permanent = _attempt(settings, row)
        jobs.in_transaction(settings, partial(_record, settings=settings, event_id=row.id,
                                              error=error, permanent=permanent),
                            patience=patience)
    return tried
