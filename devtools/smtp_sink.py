"""A local SMTP sink for tests and the demo: accepts every mail, keeps it in memory.

    sink = SmtpSink(); port = sink.start(); ...; sink.messages(); sink.stop()   # tests
    python -m devtools.smtp_sink --port 8025                                     # prints mails

Built on aiosmtpd (a dev dependency); listens on 127.0.0.1 only. Nothing under ``warranty/``
imports this module.

Tests can make it behave like a real, imperfect server: ``delay_seconds`` makes it slow to
accept each mail (without holding up other connections), ``refuse`` answers RCPT TO for
some addresses with a reply of their choosing (``550 ...`` for good, ``450 ...`` for now),
``reject`` answers DATA for mails whose subject contains a key. ``clear()`` resets it all.
"""

from __future__ import annotations

import argparse
import asyncio
import email
import email.policy
import logging
import socket
import threading
import time
from dataclasses import dataclass
from email.message import EmailMessage

from aiosmtpd.controller import Controller


@dataclass(frozen=True)
class ReceivedMail:
    """One mail as the sink received it."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage

    @property
    def subject(self) -> str:
        """The decoded Subject header."""
        return str(self.message["Subject"] or "")

    @property
    def to(self) -> str:
        """The To header."""
        return str(self.message["To"] or "")

    @property
    def body(self) -> str:
        """The decoded plain-text body."""
        part = self.message.get_body(preferencelist=("plain",))
        return part.get_content() if part is not None else ""


class _Handler:
    """aiosmtpd handler that hands each mail to the sink."""

    def __init__(self, sink: SmtpSink):
        """Remember the sink."""
        self.sink = sink

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        """Accept the recipient, unless the sink was told to refuse it."""
        reply = self.sink.refuse.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        """Parse and keep the mail (after the delay); refuse it if told to."""
        if self.sink.delay_seconds:
            await asyncio.sleep(self.sink.delay_seconds)
        message = email.message_from_bytes(envelope.original_content or envelope.content,
                                           policy=email.policy.default)
        subject = str(message["Subject"] or "")
        for key, reply in list(self.sink.reject.items()):
            if key in subject:
                return reply
        self.sink._add(ReceivedMail(mail_from=envelope.mail_from,
                                    rcpt_tos=tuple(envelope.rcpt_tos), message=message))
        return "250 Message accepted for delivery"


def _free_port(host: str) -> int:
    """A port nobody listens on right now (aiosmtpd cannot bind port 0 and report it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


class SmtpSink:
    """An SMTP server on 127.0.0.1 that keeps what it receives; thread-safe accessors."""

    def __init__(self, port: int = 0, on_mail=None):
        """``port`` 0 picks a free one; ``on_mail`` is called with each ReceivedMail."""
        self.host, self.port = "127.0.0.1", port
        self._on_mail = on_mail
        self._lock = threading.Lock()
        self._messages: list[ReceivedMail] = []
        self._controller: Controller | None = None
        self.delay_seconds = 0.0  # before accepting each mail
        self.refuse: dict[str, str] = {}  # lower-case address -> RCPT reply ("550 ...")
        self.reject: dict[str, str] = {}  # subject substring -> DATA reply ("554 ...")

    def start(self) -> int:
        """Start listening in a background thread; returns the port."""
        self.port = self.port or _free_port(self.host)
        logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every command
        self._controller = Controller(_Handler(self), hostname=self.host, port=self.port)
        self._controller.start()
        return self.port

    def stop(self) -> None:
        """Stop listening."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def _add(self, mail: ReceivedMail) -> None:
        """Keep one mail (called on the server's thread)."""
        with self._lock:
            self._messages.append(mail)
        if self._on_mail is not None:
            self._on_mail(mail)

    def messages(self, to: str | None = None) -> list[ReceivedMail]:
        """A copy of every mail received so far, or only those to ``to``."""
        with self._lock:
            mails = list(self._messages)
        if to is None:
            return mails
        return [m for m in mails if to.lower() in (r.lower() for r in m.rcpt_tos)]

    def clear(self) -> None:
        """Forget every mail received so far, and accept everything at once again."""
        with self._lock:
            self._messages.clear()
        self.delay_seconds = 0.0
        self.refuse, self.reject = {}, {}

    def wait_for(self, count: int, to: str | None = None,
                 timeout: float = 5.0) -> list[ReceivedMail]:
        """Mails (to ``to``) once at least ``count`` arrived, or AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            mails = self.messages(to)
            if len(mails) >= count:
                return mails
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} mail(s), got {len(mails)}")
            time.sleep(0.02)


def print_mail(mail: ReceivedMail) -> None:
    """Show a received mail on stdout."""
    print(f"--- mail from {mail.mail_from} to {', '.join(mail.rcpt_tos)}\n"
          f"Subject: {mail.subject}\n\n{mail.body}", flush=True)


def main(argv: list[str] | None = None) -> None:
    """``python -m devtools.smtp_sink --port 8025``: print every mail until Ctrl-C."""
    parser = argparse.ArgumentParser(description="Local SMTP sink that prints mails")
    parser.add_argument("--port", type=int, default=8025)
    args = parser.parse_args(argv)
    sink = SmtpSink(port=args.port, on_mail=print_mail)
    print(f"SMTP sink on 127.0.0.1:{sink.start()}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        sink.stop()


if __name__ == "__main__":
    main()
