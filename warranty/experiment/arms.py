"""The holdout experiment's arms: which arm a visitor is in, its signed visitor ids, and the
visitors refused (the offer events the embed sends are warranty.experiment.events).

A visitor's arm is a pure function of (experiment salt, visitor id, holdout share), so the
server decides it, every process agrees, and reports can recompute it from the stored ids:
``bucket`` maps the pair to a number in [0, 1) and visitors below the share are held out.
Raising the share only moves visitors from treatment into holdout, never the other way.

Visitor ids are issued by the server, signed: ``w1`` + 22 random characters + 22 characters
of HMAC-SHA256 over them (a key derived from ``WARRANTY_SECRET_KEY``). Nobody can pick an id,
so nobody can pick an arm or make up visitors offline; the event intake refuses ids that are
unsigned (the old embed's ``v...`` ids, anything typed) or foreign (signed with another key),
checkout records such an id's order without attribution, and both are counted per day
(``RefusedVisitorIds``) for the conversion report.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
import secrets
from datetime import date

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from warranty.db.engine import write_transaction
from warranty.experiment.models import RefusedVisitorIds

HOLDOUT, TREATMENT = "holdout", "treatment"
VISITOR_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


SIGNED_PREFIX = "w1"
NONCE_LENGTH = 22  # 16 random bytes in URL-safe base64
SIGNED_VISITOR_ID = re.compile(r"^w1[A-Za-z0-9_-]{44}$")
UNSIGNED, FOREIGN = "unsigned", "foreign"


@functools.lru_cache(maxsize=4)
def _visitor_key(secret: str) -> bytes:
    """The HMAC key of visitor ids, derived from the service's secret for this use only."""
    return hmac.new(secret.encode(), b"warranty.visitor-id", hashlib.sha256).digest()


def sign_visitor_id(secret: str, nonce: str) -> str:
    """The signed visitor id for a 22-character nonce (of A-Z a-z 0-9 _ -)."""
    if len(nonce) != NONCE_LENGTH or not VISITOR_ID.match(nonce):
        raise ValueError("a visitor id nonce is 22 characters of A-Z a-z 0-9 _ -")
    mac = hmac.new(_visitor_key(secret), f"{SIGNED_PREFIX}{nonce}".encode(),
                   hashlib.sha256).digest()[:16]
    return f"{SIGNED_PREFIX}{nonce}{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"


def issue_visitor_id(secret: str) -> str:
    """A new visitor id: a random nonce, signed."""
    return sign_visitor_id(secret, secrets.token_urlsafe(16))


def visitor_id_problem(visitor_id: str | None, secret: str) -> str | None:
    """None for an id this server signed; ``unsigned`` or ``foreign`` (another key's) else."""
    if not visitor_id or not SIGNED_VISITOR_ID.match(visitor_id):
        return UNSIGNED
    expected = sign_visitor_id(secret, visitor_id[2:2 + NONCE_LENGTH])
    return None if hmac.compare_digest(expected, visitor_id) else FOREIGN


def count_refused(*, session: Session, day: date, source: str, reason: str,
                  count: int = 1) -> None:
    """Add to the day's count of refused visitor ids (one atomic upsert; caller commits)."""
    write_transaction(session)
    table = RefusedVisitorIds.__table__
    dialect = session.get_bind().dialect.name
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    session.execute(insert.values(day=day, source=source, reason=reason, count=count)
                    .on_conflict_do_update(index_elements=[table.c.day, table.c.source,
                                                           table.c.reason],
                                           set_={"count": table.c.count + insert.excluded.count}))


def refused_counts(session: Session, start: date, end: date) -> list[dict]:
    """Refused visitor ids per day, source and reason between two dates (both included)."""
    table = RefusedVisitorIds.__table__
    rows = session.execute(sa.select(table.c.day, table.c.source, table.c.reason,
                                     table.c.count)
                           .where(table.c.day.between(start, end))
                           .order_by(table.c.day, table.c.source, table.c.reason))
    return [{"date": day.isoformat(), "source": source, "reason": reason, "count": int(count)}
            for day, source, reason, count in rows]


def bucket(visitor_id: str, salt: str) -> float:
    """The visitor's place in [0, 1): the first 64 bits of SHA-256(salt ":" visitor id)."""
    digest = hashlib.sha256(f"{salt}:{visitor_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_arm(visitor_id: str, *, salt: str, share: float) -> str:
    """``holdout`` (sees no offers) for the first ``share`` of buckets, else ``treatment``."""
    return HOLDOUT if bucket(visitor_id, salt) < share else TREATMENT
