"""Customer mail: stored first (``MailMessage``), sent over SMTP by the worker.

Queuing happens in the caller's transaction, so a mail exists exactly when the change it
tells about was committed; an SMTP server that is down only delays it.
"""

from __future__ import annotations

import logging
import smtplib
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from functools import partial

from sqlmodel import Session

from warranty import jobs
from warranty.dates import utcnow
from warranty.models import MailMessage
from warranty.settings import Settings
from warranty.text import email_address, one_line

log = logging.getLogger(__name__)

LEASE_SECONDS = 120  # longer than one SMTP conversation with its timeout


class UnsendableMail(ValueError):
    """A stored mail that can never be sent as it is (its recipient is not one address)."""


def queue_mail(*, session: Session, to: str, subject: str, body: str, kind: str) -> MailMessage:
    """Store a mail for the worker to send (caller commits)."""
    message = MailMessage(to=to, subject=one_line(subject)[:300], body=body, kind=kind)
    session.add(message)
    return message


def _recipient(to: str) -> Address:
    """The one address a mail goes to, as a structured header value (never a list)."""
    try:
        return Address(addr_spec=email_address(to))
    except ValueError:  # the header parser's errors are ValueErrors too
        raise UnsendableMail("the recipient is not one mail address") from None


def build_message(settings: Settings, row: MailMessage) -> EmailMessage:
    """The RFC 5322 message for a stored mail (plain text, UTF-8).

    Safe by construction, whatever the row holds: the recipient is one parsed address or the
    mail is refused (``UnsendableMail``), and every other header value is made one line, so
    stored text (the store's order reference in a subject) can never add a header.
    """
    message = EmailMessage()
    message["From"] = one_line(settings.mail_from)
    message["To"] = _recipient(row.to)
    message["Subject"] = one_line(row.subject)
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(idstring=f"mail{row.id}", domain="warranty.local")
    message["X-Warranty-Kind"] = one_line(row.kind)
    message.set_content(row.body)
    return message


def _smtp(settings: Settings) -> smtplib.SMTP:
    """An SMTP connection as configured (STARTTLS and login when set)."""
    smtp = smtplib.SMTP(settings.smtp_host, settings.smtp_port,
                        timeout=settings.smtp_timeout_seconds)
    if settings.smtp_starttls:
        smtp.starttls()
    if settings.smtp_username:
        smtp.login(settings.smtp_username, settings.smtp_password)
    return smtp


def _messages(session: Session, *, settings: Settings, ids: list[int]):
    """The claimed rows as mails to send: (id, message)."""
    return [(mail_id, build_message(settings, session.get(MailMessage, mail_id)))
            for mail_id in ids]


def _record(session: Session, *, settings: Settings, outcomes: dict[int, str | None]) -> None:
    """Record each mail: sent, or retried later (dead after the last attempt)."""
    for mail_id, error in outcomes.items():
        row = session.get(MailMessage, mail_id)
        if error is None:
            row.status, row.sent_at, row.last_error = "sent", utcnow(), None
        else:
            jobs.retry_later(row, error, settings, settings.mail_max_attempts)
        session.add(row)


def run_mail(*, settings: Settings, limit: int = 50) -> int:
    """Send up to ``limit`` due mails over one SMTP connection; returns how many were tried."""
    ids = jobs.claim(settings=settings, model=MailMessage, limit=limit,
                     lease_seconds=LEASE_SECONDS)
    if not ids:
        return 0
    patience = LEASE_SECONDS / 2  # reading and recording wait out a database restart
    messages = jobs.in_transaction(settings, partial(_messages, settings=settings, ids=ids),
                                   patience=patience)
    outcomes: dict[int, str | None] = {}
    try:
        with _smtp(settings) as smtp:
            for mail_id, message in messages:
                try:
                    smtp.send_message(message)
                    outcomes[mail_id] = None
                except smtplib.SMTPRecipientsRefused as exc:
                    outcomes[mail_id] = f"recipient refused: {exc.recipients}"
    except (OSError, smtplib.SMTPException) as exc:
        # The server is down or dropped us: every mail not yet sent waits for a retry.
        log.warning("SMTP %s:%s failed: %s", settings.smtp_host, settings.smtp_port, exc)
        for mail_id, _ in messages:
            outcomes.setdefault(mail_id, f"SMTP failed: {exc}")
    jobs.in_transaction(settings, partial(_record, settings=settings, outcomes=outcomes),
                        patience=patience)
    return len(ids)
