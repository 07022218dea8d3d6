"""Claim notifications: rows in the mail and webhook outboxes, delivered by the workers.

Kept as two small functions so they can be pointed at the shared outbox module
(warranty/mail.py, warranty/outbound.py) when the branches meet.
"""

from __future__ import annotations

from sqlmodel import Session

from warranty.models import MailMessage, OutboundWebhook


def queue_claim_mail(session: Session, *, to: str, subject: str, body: str,
                     kind: str) -> MailMessage:
    """Store a mail to a customer for the mail worker (caller commits)."""
    message = MailMessage(to=to, subject=subject[:300], body=body, kind=kind)
    session.add(message)
    return message


def queue_claim_webhook(session: Session, *, event_type: str, payload: dict) -> OutboundWebhook:
    """Store a claim event for the store's webhook endpoint (caller commits)."""
    hook = OutboundWebhook(type=event_type, payload=payload)
    session.add(hook)
    return hook
