"""The database drops a request's connection after the view answered, before the request's
session is closed: the answer still goes out (never a raw 500) and the dead connection is
discarded, not handed to the next request."""

from __future__ import annotations

import pytest
import requests
from flask import g

from tests.conftest import PUBLIC_KEY, serve
from tests.factories import add_product, load_rules
from warranty.http.app import create_app


def _kill_own_backend(engine):
    """An after-request hook that terminates the backend of the request's own session,
    as a database restart or an idle-connection killer would, mid-request."""

    def hook(response):
        session = g.get("db")
        if session is not None and session.in_transaction():
            pid = session.connection().connection.dbapi_connection.info.backend_pid
            with engine.connect() as conn:
                conn.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid)})")
                conn.commit()
            hook.killed += 1
        return response

    hook.killed = 0
    return hook


@pytest.mark.parametrize(("method", "path", "kwargs"), [
    ("get", "/healthz", {}),  # a reader's transaction
    # a POST that reads the database on every call (the offers cache is off below)
    ("post", "/api/v1/offers/batch", {"json": {"items": [{"sku": "TV-1"}]}}),
])
def test_a_connection_dropped_at_teardown_is_not_a_500(settings, db, postgres_only, method,
                                                       path, kwargs):
    load_rules(db)
    add_product(db)
    # Without the offers cache each request has a transaction open when the hook kills it.
    app = create_app(settings.model_copy(update={"offer_cache_mb": 0}))
    kill = _kill_own_backend(postgres_only)
    app.after_request(kill)
    with serve(app) as base:
        url = f"{base}{path}?key={PUBLIC_KEY}"
        for _ in range(3):
            res = getattr(requests, method)(url, timeout=10, **kwargs)
            assert res.status_code == 200, res.text
            assert res.headers["Content-Type"] == "application/json"
        assert kill.killed == 3
        app.after_request_funcs[None].remove(kill)
        # The dead connections were discarded: the next requests get live ones.
        for _ in range(3):
            assert requests.get(f"{base}/healthz", timeout=10).json()["database"] == "ok"
            res = requests.post(f"{base}/api/v1/offers/batch?key={PUBLIC_KEY}", timeout=10,
                                json={"items": [{"sku": "TV-1"}]})
            assert len(res.json()["results"][0]["offers"]) == 2
