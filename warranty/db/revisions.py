"""Revision counters: what cached answers are keyed by, bumped in the writer's transaction.

One row per thing a cache depends on (``catalog``: every product write; ``rules``: the
newest rule version). A writer bumps its row in the same transaction as its change, so
the new value is visible exactly when the change is; a reader that sees another value
than it cached with knows its answers are stale. Reading both rows is one indexed select
of two rows, cheap enough for every process to do once a second.

On PostgreSQL the bump is an ``UPDATE`` of one row: concurrent writers of the same kind
wait for each other's commit there (catalog upserts already do on the products they share),
so bump at the end of a transaction, after its other writes (docs/concurrency.md).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Field, Session, SQLModel

CATALOG = "catalog"
RULES = "rules"


class Revision(SQLModel, table=True):
    """A named counter: the revision of one kind of data caches depend on."""

    __tablename__ = "revision"

    name: str = Field(primary_key=True, max_length=40)
    value: int = Field(default=0)


_table = Revision.__table__
_READ = sa.select(_table.c.name, _table.c.value).where(_table.c.name.in_((CATALOG, RULES)))


@dataclass(frozen=True)
class Revisions:
    """The catalog's revision and the newest rule version (0 while none was written)."""

    catalog: int
    rules: int


def _upsert(session: Session, name: str, value: sa.ColumnElement | int, start: int) -> None:
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(_table).values(name=name, value=start)
    stmt = stmt.on_conflict_do_update(index_elements=[_table.c.name], set_={"value": value})
    session.execute(stmt)


# Changes this process committed, per database URL: a cache in this process sees its own
# writes at once instead of at its next periodic read (other processes read the rows).
_committed_here: dict[str, int] = {}
_committed_lock = threading.Lock()


def committed_here(database_url: str) -> int:
    """How many revision changes this process has committed to ``database_url``."""
    return _committed_here.get(database_url, 0)


def _count_at_commit(session: Session) -> None:
    url = session.get_bind().engine.url.render_as_string(hide_password=False)

    def counted(_session) -> None:
        with _committed_lock:
            _committed_here[url] = _committed_here.get(url, 0) + 1

    sa.event.listen(session, "after_commit", counted, once=True)


def bump_catalog(session: Session) -> None:
    """The catalog changed in this transaction (the caller commits)."""
    _upsert(session, CATALOG, _table.c.value + 1, 1)
    _count_at_commit(session)


def set_rules(session: Session, version: int) -> None:
    """Rule ``version`` became the newest in this transaction (the caller commits)."""
    # Uploads are numbered in commit order (pricing.rules.save_rule_set): the newest wins.
    _upsert(session, RULES, version, version)
    _count_at_commit(session)


def read(conn: Session | sa.Connection) -> Revisions:
    """Both revisions as committed (0 for a row not written yet)."""
    values = dict(conn.execute(_READ).all())
    return Revisions(catalog=values.get(CATALOG, 0), rules=values.get(RULES, 0))
