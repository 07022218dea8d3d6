"""Server-side sign-in sessions and spent sign-in links.

A browser's cookie (one for customer pages, another for staff pages) or a customer API token
holds an opaque random id; the ``auth_session`` row holds its SHA-256 with whose session it
is (kind, subject), what it may see (scope) and when it ends. Signing out or revoking marks
the row, so a copied cookie stops working at once. Every sign-in makes a new id (no
fixation). Functions take the caller's session and never commit.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, select

from warranty.auth.credentials import hash_token
from warranty.auth.links import MAX_AGE_SECONDS, PlansLink
from warranty.auth.models import AuthSession, UsedLink, VoidedLinks
from warranty.core.dates import utcnow
from warranty.db.engine import write_transaction

KINDS = ("customer", "staff", "customer_api")
FULL, ORDER = "full", "order"  # customer scopes: the mailbox proved | one order's plans
KEEP_ENDED = timedelta(days=30)  # ended sessions stay this long, as a record of sign-ins
TOUCH_EVERY = timedelta(minutes=5)  # last_seen_at is written at most this often


def start(*, session: Session, kind: str, subject: str, scope: str, lifetime: timedelta,
          created_by: str, staff_user_id: int | None = None, order_ref: str | None = None,
          prefix: str = "") -> tuple[str, AuthSession]:
    """A new session and its id (the only plaintext copy, for the cookie or the caller)."""
    write_transaction(session)
    if kind not in KINDS:
        raise ValueError(f"unknown session kind {kind!r}")
    raw = prefix + secrets.token_urlsafe(32)
    now = utcnow()
    row = AuthSession(token_hash=hash_token(raw), kind=kind, subject=subject.strip().lower(),
                      staff_user_id=staff_user_id, scope=scope, order_ref=order_ref,
                      created_by=created_by[:200], created_at=now, last_seen_at=now,
                      expires_at=now + lifetime)
    session.add(row)
    session.flush()
    return raw, row


def find(session: Session, raw: str | None, kind: str,
         now: datetime | None = None) -> AuthSession | None:
    """The live session of ``kind`` behind an id: not revoked, not expired."""
    if not isinstance(raw, str) or not 20 <= len(raw) <= 200:
        return None
    row = session.exec(select(AuthSession).where(AuthSession.token_hash == hash_token(raw),
                                                 AuthSession.kind == kind)).first()
    now = now or utcnow()
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        return None
    return row


def needs_touch(row: AuthSession, now: datetime | None = None) -> bool:
    """Whether ``last_seen_at`` is old enough to be written again."""
    return (now or utcnow()) - row.last_seen_at >= TOUCH_EVERY


def touch(conn: sa.Connection, session_id: int, now: datetime | None = None) -> None:
    """Record that the session was used (its own short transaction, see the web layer)."""
    table = AuthSession.__table__
    conn.execute(table.update().where(table.c.id == session_id)
                 .values(last_seen_at=now or utcnow()))


def end(*, session: Session, row: AuthSession) -> None:
    """Sign out: the session stops working everywhere its id was copied."""
    write_transaction(session)
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.add(row)


def revoke_all(*, session: Session, subject: str, kinds: tuple[str, ...]) -> int:
    """End every live session of ``subject`` of these kinds; how many were live."""
    table = AuthSession.__table__
    now = utcnow()
    result = session.execute(table.update().where(
        table.c.subject == subject.strip().lower(), table.c.kind.in_(kinds),
        table.c.revoked_at.is_(None), table.c.expires_at > now).values(revoked_at=now))
    return result.rowcount or 0


def void_links(*, session: Session, email: str) -> None:
    """Sign-in links mailed to ``email`` until now stop working (unused ones too)."""
    email = email.strip().lower()
    row = session.get(VoidedLinks, email)
    if row is None:
        session.add(VoidedLinks(email=email, voided_at=utcnow()))
    else:
        row.voided_at = utcnow()
        session.add(row)
    session.flush()


def link_voided(session: Session, link: PlansLink) -> bool:
    """Whether the link was mailed before its address's links were voided. Links carry
    their time in whole seconds: one made in the second of the voiding counts as before."""
    row = session.get(VoidedLinks, link.email)
    return row is not None and link.issued_at <= int(row.voided_at.timestamp())


def link_spent(session: Session, jti: str) -> bool:
    """Whether the sign-in link with this one-time id was used already."""
    return session.get(UsedLink, jti) is not None


def spend_link(*, session: Session, link: PlansLink) -> bool:
    """Mark a sign-in link used; False when it was used before (by anyone, even at the same
    moment: the jti is the primary key, so of two concurrent uses exactly one wins)."""
    write_transaction(session)
    try:
        with session.begin_nested():
            session.add(UsedLink(jti=link.jti, email=link.email))
    except sa.exc.IntegrityError:
        return False
    return True


def prune(*, session: Session) -> None:
    """Forget sessions ended long ago and spent links too old to sign in anyway."""
    write_transaction(session)
    now = utcnow()
    sessions, links, voided = AuthSession.__table__, UsedLink.__table__, VoidedLinks.__table__
    too_old = now - timedelta(seconds=MAX_AGE_SECONDS) - timedelta(days=1)
    session.execute(sessions.delete().where(sessions.c.expires_at < now - KEEP_ENDED))
    session.execute(links.delete().where(links.c.used_at < too_old))
    session.execute(voided.delete().where(voided.c.voided_at < too_old))
