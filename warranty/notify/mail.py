"""Customer mail: stored first (``MailMessage``), sent over SMTP by the worker.

Queuing happens in the caller's transaction, so a mail exists exactly when the change it
tells about was committed; an SMTP server that is down only delays it. A mail that can never
go out (it cannot be built, the server refuses its recipient or its content for good: a 5xx
reply) is marked dead with the reason, for a person (``warranty outbox``, the
``warranty_dead_letters`` metric); one that fails for now (4xx, server unreachable) is
retried with backoff, dead after ``WARRANTY_MAIL_MAX_ATTEMPTS``. Either way the other mails
of the pass still go.
"""

from __future__ import annotations

import logging
import smtplib
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from functools import partial

import sqlalchemy as sa
from sqlmodel import Session

from warranty.core.dates import utcnow
from warranty.core.settings import Settings
from warranty.core.text import email_address, one_line
from warranty.db import outbox as jobs
from warranty.db.engine import read, write_transaction
from warranty.notify.models import MailAttachment, MailMessage

log = logging.getLogger(__name__)

LEASE_SECONDS = 120  # longer than one SMTP conversation with its timeout


class UnsendableMail(ValueError):
    """A stored mail that can never be sent as it is (its recipient is not one address)."""


@dataclass(frozen=True)
class Attachment:
    """A file to send with a mail."""

    filename: str
    content_type: str
    data: bytes


def queue_mail(*, session: Session, to: str, subject: str, body: str, kind: str,
               attachments: tuple[Attachment, ...] = ()) -> MailMessage:
    """Store a mail (and its attachments) for the worker to send (caller commits)."""
    write_transaction(session)
    message = MailMessage(to=to, subject=one_line(subject)[:300], body=body, kind=kind)
    session.add(message)
    if attachments:
        session.flush()
        for item in attachments:
            session.add(MailAttachment(mail_id=message.id, filename=one_line(item.filename),
                                       content_type=item.content_type, data=item.data))
    return message


def attachments_of(conn: sa.Connection | Session, mail_id: int) -> list[Attachment]:
    """The files stored with a mail, in the order they were added."""
    table = MailAttachment.__table__
    rows = conn.execute(sa.select(table.c.filename, table.c.content_type, table.c.data)
                        .where(table.c.mail_id == mail_id).order_by(table.c.id)).all()
    return [Attachment(filename=name, content_type=kind, data=bytes(data))
            for name, kind, data in rows]


def _recipient(to: str) -> Address:
    """The one address a mail goes to, as a structured header value (never a list)."""
    try:
        return Address(addr_spec=email_address(to))
    except ValueError:  # the header parser's errors are ValueErrors too
        raise UnsendableMail("the recipient is not one mail address") from None


def build_message(settings: Settings, row: MailMessage,
                  attachments: list[Attachment] | tuple = ()) -> EmailMessage:
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
    for item in attachments:
        maintype, _, subtype = item.content_type.partition("/")
        message.add_attachment(item.data, maintype=maintype, subtype=subtype,
                               filename=item.filename)
    return message


class _Connection:
    """One SMTP connection for a pass, opened when the first mail is ready to go."""

    def __init__(self, settings: Settings):
        """Nothing is connected yet."""
        self.settings = settings
        self.smtp: smtplib.SMTP | None = None

    def get(self) -> smtplib.SMTP:
        """The open connection (STARTTLS and login when set), connecting if needed."""
        if self.smtp is None:
            settings = self.settings
            smtp = smtplib.SMTP(settings.smtp_host, settings.smtp_port,
                                timeout=settings.smtp_timeout_seconds)
            try:
                if settings.smtp_starttls:
                    smtp.starttls()
                if settings.smtp_username:
                    smtp.login(settings.smtp_username, settings.smtp_password)
            except BaseException:
                smtp.close()
                raise
            self.smtp = smtp
        return self.smtp

    @property
    def lost(self) -> bool:
        """True when the server closed the connection (smtplib drops its socket then)."""
        return self.smtp is not None and self.smtp.sock is None

    def close(self) -> None:
        """Say goodbye if the server still listens; forget the connection either way."""
        smtp, self.smtp = self.smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()


@dataclass(frozen=True)
class _Outcome:
    """What one mail's attempt came to."""

    error: str | None = None  # None: sent
    permanent: bool = False  # no retry can help: the mail is dead for a person to see
    stop: bool = False  # the server is unreachable or went away: leave the rest for later


def _refused(exc: smtplib.SMTPRecipientsRefused) -> _Outcome:
    """A refused recipient: for good on a 5xx reply (no such mailbox), later on a 4xx."""
    replies = [(code, text.decode(errors="replace") if isinstance(text, bytes) else str(text))
               for code, text in exc.recipients.values()]
    permanent = bool(replies) and all(code >= 500 for code, _ in replies)
    return _Outcome(error="recipient refused: " + "; ".join(f"{code} {text}"
                                                            for code, text in replies),
                    permanent=permanent)


def _send(connection: _Connection, message: EmailMessage) -> _Outcome:
    """Send one built mail over the pass's connection; classify what went wrong.

    A server that closed the connection (a 421 reply, a drop) stops the pass: the mails not
    yet claimed wait for the next one, their attempts unspent.
    """
    try:
        smtp = connection.get()
    except (OSError, smtplib.SMTPException) as exc:
        return _Outcome(error=f"SMTP failed: {exc}", stop=True)
    try:
        smtp.send_message(message)
        return _Outcome()
    except smtplib.SMTPRecipientsRefused as exc:
        outcome = _refused(exc)
    except smtplib.SMTPNotSupportedError as exc:
        # e.g. a non-ASCII address and a server without SMTPUTF8: it never will take it.
        outcome = _Outcome(error=f"the SMTP server cannot take this mail: {exc}",
                           permanent=True)
    except smtplib.SMTPSenderRefused as exc:
        # Our own From address: a setting to fix, not this mail's fault; retried.
        outcome = _Outcome(error=f"sender refused: {exc.smtp_code} {_text(exc)}")
    except smtplib.SMTPResponseException as exc:
        # A reply to this mail (its data refused, ...): 5xx is for good, 4xx is for later.
        outcome = _Outcome(error=f"SMTP answered {exc.smtp_code} {_text(exc)}",
                           permanent=exc.smtp_code >= 500)
    except (OSError, smtplib.SMTPException) as exc:
        # Dropped or timed out mid-conversation: this mail and the rest go later.
        connection.close()
        return _Outcome(error=f"SMTP failed: {exc}", stop=True)
    except Exception as exc:  # anything else this one mail raises is its own
        log.exception("mail could not be sent")
        connection.close()
        return _Outcome(error=f"could not send: {type(exc).__name__}: {exc}")
    if connection.lost:  # the server hung up after its reply (421)
        connection.close()
        return _Outcome(error=outcome.error, stop=True)
    return outcome


def _text(exc: smtplib.SMTPResponseException) -> str:
    """The server's reply text."""
    error = exc.smtp_error
    return error.decode(errors="replace") if isinstance(error, bytes) else str(error)


def _attempt(settings: Settings, connection: _Connection, row: MailMessage) -> _Outcome:
    """Build and send one claimed mail."""
    try:
        files = read(settings.database_url, lambda conn: attachments_of(conn, row.id))
    except sa.exc.SQLAlchemyError as exc:  # the database, not the mail: try again later
        return _Outcome(error=f"could not read the mail's attachments: {exc}", stop=True)
    try:
        message = build_message(settings, row, files)
    except Exception as exc:  # a stored mail that cannot be built never will
        return _Outcome(error=f"cannot build the message: {type(exc).__name__}: {exc}",
                        permanent=True)
    return _send(connection, message)


def _record(session: Session, *, settings: Settings, mail_id: int, outcome: _Outcome) -> None:
    """Record one mail: sent, retried later (dead after the last attempt), or dead now."""
    row = session.get(MailMessage, mail_id)
    if outcome.error is None:
        row.status, row.sent_at, row.last_error = "sent", utcnow(), None
    elif outcome.permanent:
        log.warning("mail %s (%s) dead: %s", row.id, row.kind, outcome.error)
        jobs.give_up(row, outcome.error)
    else:
        jobs.retry_later(row, outcome.error, settings, settings.mail_max_attempts)
    session.add(row)


def run_mail(*, settings: Settings, limit: int = 50) -> int:
    """Send up to ``limit`` due mails over one SMTP connection; returns how many were tried.

    Each mail is claimed right before it is sent (its own lease) and recorded right after,
    so a slow server never lets a lease run out on a mail still waiting its turn. A mail
    that fails is failed on its own; the pass stops early only when the server is
    unreachable or drops the connection (the mails not yet claimed wait, their attempts
    unspent).
    """
    patience = LEASE_SECONDS / 2  # recording waits out a database restart, inside the lease
    tried = 0
    connection = _Connection(settings)
    try:
        for row in jobs.each_due(settings=settings, model=MailMessage,
                                 lease_seconds=LEASE_SECONDS, limit=limit):
            tried += 1
            outcome = _attempt(settings, connection, row)
            if outcome.stop:
                log.warning("SMTP %s:%s failed: %s", settings.smtp_host, settings.smtp_port,
                            outcome.error)
            jobs.in_transaction(settings, partial(_record, settings=settings, mail_id=row.id,
                                                  outcome=outcome), patience=patience)
            if outcome.stop:
                break
    finally:
        connection.close()
    return tried
