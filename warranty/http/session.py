"""The per-request database session (kept on ``g``)."""

from __future__ import annotations

from contextlib import suppress

import sqlalchemy as sa
from flask import current_app, g

from warranty.db.engine import GUARDED, Session, get_engine, log


def get_session() -> Session:
    """The request's session; views commit once, services never commit.

    Its transactions read until a service that writes asks for a write transaction
    (``warranty.db.engine.write_transaction``), whatever the HTTP method: a POST that only
    reads (a batch of offers) never takes SQLite's write lock. Writing without asking is
    refused on SQLite (a programming error the tests find).
    """
    if "db" not in g:
        url = current_app.config["SETTINGS"].database_url
        g.db = Session(get_engine(url), expire_on_commit=False, info={GUARDED: True})
    return g.db


def close_session(_exc: BaseException | None = None) -> None:
    """Roll back anything uncommitted and return the connection to the pool.

    The response is already made when this runs. If the database dropped the connection
    since the view's last statement (a restart, a terminated backend), the rollback fails:
    what the view committed stands and what it did not is gone with the connection, so the
    response stays true. The connection is discarded, never pooled again, and the failure
    logged, instead of a raw 500 from the server after the view had answered.
    """
    session = g.pop("db", None)
    if session is None:
        return
    try:
        session.close()
    except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
        reason = str(exc.orig or exc).strip() or type(exc).__name__
        log.warning("database connection lost while ending a request; discarded: %s",
                    reason.splitlines()[0])
        with suppress(sa.exc.SQLAlchemyError):  # already gone: nothing left to discard
            session.invalidate()
