"""Helpers for concurrency tests: PostgreSQL only, calls released together on their own
connections, an app served over real HTTP.

SQLite runs one writer at a time (BEGIN IMMEDIATE), so it cannot show a race; PostgreSQL,
the production backend, runs transactions side by side under READ COMMITTED, where a
read-decide-write without a row lock loses updates.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Callable

import pytest
import requests
import sqlalchemy as sa

from tests.conftest import serve
from tests.factories import STAFF_PASSWORD
from warranty.http.app import create_app

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def postgres_only(database_url: str) -> None:
    """Skip the SQLite pass of a concurrency test."""
    if not database_url.startswith("postgresql"):
        pytest.skip("a race needs concurrent writers: PostgreSQL only (SQLite serialises "
                    "every write); runs in the PostgreSQL pass")


def together(*calls: Callable[[], object], timeout: float = 60.0) -> list:
    """Run each call in its own thread, all released at once by a barrier; their results
    in order (an exception a call raised is re-raised here)."""
    start = threading.Barrier(len(calls))
    results: list = [None] * len(calls)
    errors: list = [None] * len(calls)

    def run(index: int, call: Callable[[], object]) -> None:
        start.wait()
        try:
            results[index] = call()
        except BaseException as exc:  # handed to the test below
            errors[index] = exc

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(thread.is_alive() for thread in threads), "a call never finished"
    for error in errors:
        if error is not None:
            raise error
    return results


@contextlib.contextmanager
def served(settings):
    """The app over real HTTP (threaded: one thread and one database connection per
    request), without rate limits that many quick requests from one address would hit."""
    app = create_app(settings.model_copy(update={"rate_limits_enabled": False}))
    with serve(app) as url:
        yield url


def post(url: str, **kwargs) -> requests.Response:
    """One POST on a connection of its own (a separate HTTP client per call)."""
    with requests.Session() as client:
        return client.post(url, timeout=60, **kwargs)


def staff_browser(base: str, email: str) -> requests.Session:
    """A browser session signed in to the staff pages."""
    browser = requests.Session()
    token = CSRF.search(browser.get(f"{base}/staff/login", timeout=30).text).group(1)
    res = browser.post(f"{base}/staff/login", timeout=30, allow_redirects=False, data={
        "email": email, "password": STAFF_PASSWORD, "csrf_token": token})
    assert res.status_code == 303, res.text
    return browser


def form_token(browser: requests.Session, url: str) -> str:
    """The CSRF token of a served form."""
    return CSRF.search(browser.get(url, timeout=30).text).group(1)


def wait_until_blocked(engine: sa.Engine, timeout: float = 20.0) -> None:
    """Wait until some connection to the test database waits for a row lock."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            waiting = conn.exec_driver_sql(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'").scalar()
        if waiting:
            return
        time.sleep(0.05)
    raise AssertionError("nothing waited for the lock")
