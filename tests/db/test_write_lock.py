"""SQLite's write lock is asked for by the services that write, never by the HTTP method."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest
import sqlalchemy as sa

from devtools.settings import demo_settings
from tests.conftest import API_TOKEN, PUBLIC_KEY, SECRET
from tests.factories import add_product, load_rules
from warranty.db.engine import GUARDED, Session, get_engine, migrate, write_transaction
from warranty.http.app import create_app
from warranty.staff.models import StaffUser


@pytest.fixture
def sqlite_app(tmp_path):
    """An app on a SQLite database of its own, with rules and a product."""
    url = f"sqlite:///{tmp_path / 'lock.db'}"
    migrate(url)
    with Session(get_engine(url)) as session:
        load_rules(session)
        add_product(session)
    settings = demo_settings(env="test", database_url=url, secret_key=SECRET,
                             api_token=API_TOKEN, public_key=PUBLIC_KEY,
                             upload_dir=str(tmp_path / "uploads"), rate_limits_enabled=False)
    yield create_app(settings), url
    get_engine(url).dispose()


def test_read_only_posts_answer_while_another_connection_holds_the_write_lock(sqlite_app):
    app, url = sqlite_app
    client = app.test_client()
    lock = sqlite3.connect(sa.make_url(url).database, isolation_level=None, timeout=0,
                           check_same_thread=False)
    try:
        lock.execute("BEGIN IMMEDIATE")  # another writer, mid-transaction
        started = time.monotonic()
        batch = client.post("/api/v1/offers/batch", headers={"X-Warranty-Key": PUBLIC_KEY},
                            json={"items": [{"sku": "TV-1"}, {"sku": "TV-1"}]})
        assert batch.status_code == 200, batch.json
        assert all(item["offers"] for item in batch.json["results"])
        report = client.get("/api/v1/reports/finance?from=2025-01-01&to=2025-12-31",
                            headers={"Authorization": f"Bearer {API_TOKEN}"})
        assert report.status_code == 200, report.json
        assert time.monotonic() - started < 5  # never queued on the 30 s busy timeout
    finally:
        lock.execute("ROLLBACK")
        lock.close()


def test_a_writing_request_waits_for_the_write_lock(sqlite_app):
    app, url = sqlite_app
    lock = sqlite3.connect(sa.make_url(url).database, isolation_level=None, timeout=0,
                           check_same_thread=False)
    lock.execute("BEGIN IMMEDIATE")
    release_after = 1.0
    threading.Timer(release_after, lambda: (lock.execute("ROLLBACK"), lock.close())).start()
    started = time.monotonic()
    res = app.test_client().post("/api/v1/products", headers={
        "Authorization": f"Bearer {API_TOKEN}"}, json={"products": [
            {"sku": "TV-2", "title": "TV", "category": "tv", "price": 90000}]})
    assert res.status_code == 200, res.json
    assert time.monotonic() - started >= release_after * 0.9  # it queued for the lock


def test_a_request_session_refuses_to_write_without_asking(sqlite_app):
    _, url = sqlite_app
    with Session(get_engine(url), info={GUARDED: True}) as session:
        session.add(StaffUser(email="x@example.com", password_hash="x", role="support"))
        with pytest.raises(RuntimeError, match="write_transaction"):
            session.flush()
        session.rollback()
        session.execute(sa.select(1))  # a read first: ended, then begun again as a writer
        write_transaction(session)
        assert session.connection().get_execution_options()["sqlite_begin"] == "IMMEDIATE"
        session.add(StaffUser(email="x@example.com", password_hash="x", role="support"))
        session.flush()
        session.commit()
    with Session(get_engine(url), info={GUARDED: True}) as late:
        late.execute(sa.select(1))
        late.add(StaffUser(email="y@example.com", password_hash="y", role="support"))
        with pytest.raises(RuntimeError, match="after this transaction wrote"):
            write_transaction(late)  # asked too late: a service asks before it writes
