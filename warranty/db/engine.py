"""Database engines, transactions and the read retry."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import sqlalchemy as sa
import sqlmodel

T = TypeVar("T")
log = logging.getLogger(__name__)
_engines: dict[tuple[str, str], sa.Engine] = {}  # (url, app | reader | writer)


class Session(sqlmodel.Session):
    """The app's sessions. What keeps derived rows in step registers its listeners on this
    class (``warranty.customers.facts.install``, called by the entry points), never on
    SQLAlchemy's global Session: sessions made elsewhere are left alone."""


WRITER = "warranty.writer"  # session.info: this session's transactions write
GUARDED = "warranty.guarded"  # session.info: writing without write_transaction is an error
_WROTE = "warranty.wrote"  # session.info: the current transaction has written


def write_transaction(session: sqlmodel.Session) -> None:
    """Ask for a writing transaction: what a service that writes calls before it reads.

    On SQLite the session's transactions then start with ``BEGIN IMMEDIATE`` (the write
    lock, queued on busy_timeout), so a read-decide-write never meets another writer's
    commit half way (SQLITE_BUSY_SNAPSHOT); sessions that only read (offers, a batch of
    offers, a report) never take the lock and stay concurrent under WAL. A read-only
    transaction already open is ended first: what it read is read again under the lock. On
    PostgreSQL nothing changes (row locks and advisory locks do the serialising).

    Only a request's session (``warranty.http.session``) is changed: the CLI's and the
    worker's (``session_scope``) always write, and a script's or a test's own session stays
    as its owner made it.
    """
    if not isinstance(session, sqlmodel.Session) or not session.info.get(GUARDED) \
            or session.info.get(WRITER):
        return
    bind = session.bind
    if _is_writer(session):
        session.info[WRITER] = True
        return
    if session.in_transaction():
        if session.new or session.dirty or session.deleted or session.info.get(_WROTE):
            raise RuntimeError("write_transaction() after this transaction wrote: a service "
                               "asks for it before its first statement")
        session.rollback()
    session.info[WRITER] = True
    session.bind = get_write_engine(bind.url.render_as_string(hide_password=False))


def _is_writer(session: sqlmodel.Session) -> bool:
    bind = session.bind
    return (not isinstance(bind, sa.Engine) or bind.dialect.name != "sqlite"
            or bind.get_execution_options().get("sqlite_begin") == "IMMEDIATE")


def _note_write(session: sqlmodel.Session) -> None:
    """Remember the transaction wrote; a guarded session (a request's) refuses to write on
    SQLite outside a write transaction, where a concurrent writer would make it fail."""
    if session.info.get(GUARDED) and not _is_writer(session):
        raise RuntimeError("a write outside write_transaction(): the service that writes "
                           "asks for the write lock first (warranty.db.engine)")
    session.info[_WROTE] = True


def _before_flush(session, _context, _instances) -> None:
    if session.new or session.dirty or session.deleted:
        _note_write(session)


def _orm_execute(state) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        _note_write(state.session)


def _transaction_ended(session, *_args) -> None:
    session.info.pop(_WROTE, None)


sa.event.listen(Session, "before_flush", _before_flush)
sa.event.listen(Session, "do_orm_execute", _orm_execute)
sa.event.listen(Session, "after_commit", _transaction_ended)
sa.event.listen(Session, "after_rollback", _transaction_ended)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """WAL and a busy timeout let the app, workers and tests share one SQLite file."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin(conn) -> None:
    """BEGIN, or BEGIN IMMEDIATE for writers.

    A deferred transaction that reads and then writes fails at once (SQLITE_BUSY_SNAPSHOT)
    when another writer committed in between; writers therefore take the write lock at
    BEGIN and queue on busy_timeout, while readers stay concurrent under WAL.
    """
    mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
    conn.exec_driver_sql("BEGIN IMMEDIATE" if mode == "IMMEDIATE" else "BEGIN")


def _create_engine(url: str, *, autocommit: bool) -> sa.Engine:
    """A pooled engine for ``url``; transactions are ours on SQLite (see _sqlite_begin)."""
    options = {"isolation_level": "AUTOCOMMIT"} if autocommit else {}
    if not url.startswith("sqlite"):
        # Transactions test a pooled connection before use (a round trip each); the
        # autocommit reader doesn't, and its callers retry once instead (``read``).
        return sa.create_engine(url, pool_pre_ping=not autocommit, pool_size=10,
                                max_overflow=10, **options)
    engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                              **options)
    sa.event.listen(engine, "connect", _sqlite_pragmas)
    if not autocommit:
        # pysqlite's own transaction handling is off so BEGIN (IMMEDIATE) is ours.
        sa.event.listen(engine, "connect",
                        lambda dbapi_conn, _r: setattr(dbapi_conn, "isolation_level", None))
        sa.event.listen(engine, "begin", _sqlite_begin)
    return engine


def _cached(url: str, kind: str) -> sa.Engine:
    """One engine of each kind per database URL for the life of the process."""
    engine = _engines.get((url, kind))
    if engine is None:
        if kind == "writer":
            engine = _cached(url, "app").execution_options(sqlite_begin="IMMEDIATE")
        else:
            engine = _create_engine(url, autocommit=kind == "reader")
        _engines[(url, kind)] = engine
    return engine


def get_engine(url: str) -> sa.Engine:
    """The app's engine for ``url``: transactions that read, then may write."""
    return _cached(url, "app")


def get_reader_engine(url: str) -> sa.Engine:
    """An autocommit engine for hot read-only paths (offers): a lone SELECT needs no
    BEGIN/ROLLBACK round trips, and on SQLite takes no lock beyond the statement."""
    return _cached(url, "reader")


def read(url: str, query: Callable[[sa.Connection], T]) -> T:
    """``query(conn)`` on an autocommit reader connection, without a transaction.

    Reader connections are not tested before use: when the server dropped one (restart,
    idle timeout), SQLAlchemy invalidates the pool and the read runs once more on a new
    connection, so only the rare dead connection costs a round trip, not every request.
    """
    engine = get_reader_engine(url)
    try:
        with engine.connect() as conn:
            return query(conn)
    except sa.exc.DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
    with engine.connect() as conn:
        return query(conn)


def advisory_lock(session: Session, namespace: int, key: str | int) -> None:
    """Serialise this transaction with every other that takes the same (namespace, key):
    a PostgreSQL transaction-scoped advisory lock, for a read-decide-write with no row to
    lock yet (the row it decides about may not exist). Released at commit or rollback.
    Nothing on SQLite, whose writers already run one at a time (BEGIN IMMEDIATE)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    value = sa.func.hashtext(key) if isinstance(key, str) else sa.literal(key)
    session.execute(sa.select(sa.func.pg_advisory_xact_lock(namespace, value)))


def get_write_engine(url: str) -> sa.Engine:
    """The app engine's pool, but every transaction starts as a writer (SQLite)."""
    return _cached(url, "writer")


def dispose_engines() -> None:
    """Close every pooled connection (tests, forks)."""
    for (_url, kind), engine in _engines.items():
        if kind != "writer":  # shares the app engine's pool
            engine.dispose()
    _engines.clear()


@contextmanager
def session_scope(url: str):
    """A session for CLI commands and workers: commit on success, roll back on error."""
    session = Session(get_write_engine(url), expire_on_commit=False)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def migrate(url: str, revision: str = "head") -> None:
    """Run Alembic migrations up to ``revision`` on the database at ``url``."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def alembic_config(url: str):
    """An Alembic Config for ``url`` (used by migrate and the drift test)."""
    from alembic.config import Config

    root = Path(__file__).resolve().parents[2]
    config = Config()
    config.set_main_option("script_location", str(root / "migrations"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config
