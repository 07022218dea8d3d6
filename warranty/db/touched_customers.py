"""Customers written in a transaction, noted in the session for warranty.customers.facts to
recompute at commit (Core bulk writers call :func:`touch`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

_INFO_KEY = "customer_facts_pending"


@dataclass
class Pending:
    """Customers (and visitors, and orders whose customer is looked up) to recompute."""

    emails: set[str] = field(default_factory=set)
    visitors: set[str] = field(default_factory=set)
    order_ids: set[int] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.emails or self.visitors or self.order_ids)


def _pending(session) -> Pending:
    """The session's pending set, created on first use."""
    return session.info.setdefault(_INFO_KEY, Pending())


def touch(session, *, emails: Iterable[str] = (), visitors: Iterable[str | None] = (),
          order_ids: Iterable[int] = ()) -> None:
    """Note customers written outside the ORM: by email, by order, or by visitor id (its
    events changed, or orders carrying it were written); they are recomputed at commit."""
    pending = _pending(session)
    pending.emails.update(emails)
    pending.visitors.update(v for v in visitors if v)
    pending.order_ids.update(order_ids)


def take(session) -> Pending | None:
    """What the transaction noted, removed from the session (at commit)."""
    return session.info.pop(_INFO_KEY, None)


def forget(session) -> None:
    """Drop what a rolled-back transaction noted."""
    session.info.pop(_INFO_KEY, None)
