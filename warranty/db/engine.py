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
