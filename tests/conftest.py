"""Shared fixtures: a migrated database per backend, the app, credentials, factories.

Every test that takes ``database_url`` (directly or through ``app``/``client``) runs on
SQLite, and on PostgreSQL too when ``WARRANTY_TEST_POSTGRES_URL`` is set (as .ci/run does).
The real migrations run once per backend; each test starts from empty tables.
"""

from __future__ import annotations

import contextlib
import os
import threading
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from werkzeug.serving import make_server

from devtools.settings import demo_settings
from warranty.customers import facts
from warranty.db.engine import Session, dispose_engines, get_engine, migrate
from warranty.http.app import create_app
from warranty.pricing import rules
from warranty.schema import metadata

POSTGRES_URL = os.environ.get("WARRANTY_TEST_POSTGRES_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if POSTGRES_URL else [])
API_TOKEN = "test-admin-token"
PUBLIC_KEY = "pk_test_store"
SECRET = "test-secret-key"

facts.install()  # as every entry point does: sessions keep customer facts in step


def _create_postgres_database() -> tuple[str, str]:
    """A fresh, uniquely named PostgreSQL database; fails loudly if the server is down."""
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    name = f"warranty_test_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError as exc:
        pytest.fail(f"WARRANTY_TEST_POSTGRES_URL is set but PostgreSQL is unreachable: {exc}")
    finally:
        admin.dispose()
    return name, sa.make_url(POSTGRES_URL).set(database=name).render_as_string(
        hide_password=False)


def _drop_postgres_database(name: str) -> None:
    """Drop a test database, closing whatever still holds it."""
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request, tmp_path_factory):
    """A migrated database for one backend, shared by the session's tests."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
        migrate(url)
        yield url
        dispose_engines()
        return
    name, url = _create_postgres_database()
    try:
        migrate(url)
        yield url
    finally:
        dispose_engines()
        _drop_postgres_database(name)


@pytest.fixture(params=BACKENDS)
def empty_database_url(request, tmp_path):
    """A new, empty database (not the session's migrated one) on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    name, url = _create_postgres_database()
    try:
        yield url
    finally:
        dispose_engines()
        _drop_postgres_database(name)


@pytest.fixture(autouse=True)
def _empty_tables(request):
    """After each database test, delete every row so the next one starts clean."""
    yield
    if "database_url" not in request.fixturenames:
        return
    url = request.getfixturevalue("database_url")
    engine = get_engine(url)
    tables = list(reversed(metadata.sorted_tables))
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            names = ", ".join(f'"{t.name}"' for t in tables)
            conn.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
        else:
            for table in tables:
                conn.execute(table.delete())
    rules.clear_caches()


@pytest.fixture
def settings(database_url, tmp_path):
    """Test settings on the backend's database; uploads go to the test's own folder."""
    # Page and API tests run against the real today with plans bought years ago (see
    # tests/http/web/pages.py PURCHASE): a long filing window keeps their claims in time for good.
    # Tests of the window set it themselves (the default, 90 days, is tested on its own).
    return demo_settings(env="test", database_url=database_url, secret_key=SECRET,
                         api_token=API_TOKEN, public_key=PUBLIC_KEY,
                         upload_dir=str(tmp_path / "uploads"),
                         export_dir=str(tmp_path / "exports"),
                         claim_filing_days_after_term=3650,
                         # The stores the tests' checkouts return to (success and cancel URLs).
                         allowed_origins="https://shop.example,http://shop.test")


@pytest.fixture
def app(settings):
    """A fresh app for one test."""
    return create_app(settings)


@pytest.fixture
def client(app):
    """Flask's test client."""
    return app.test_client()


@pytest.fixture
def db(database_url):
    """A session on the test database for arranging and checking rows."""
    with Session(get_engine(database_url), expire_on_commit=False) as session:
        yield session


@pytest.fixture
def staff_headers():
    """Headers of a staff (admin) caller."""
    return {"Authorization": f"Bearer {API_TOKEN}"}


@pytest.fixture
def store_key():
    """Headers of the storefront."""
    return {"X-Warranty-Key": PUBLIC_KEY}


@pytest.fixture(scope="session")
def stripe_standin():
    """The local Stripe stand-in on a free port. The SDK's module globals point at it for the
    tests' own calls (playing the shopper and the dashboard); the service never reads them:
    each app, worker and command has its own client (warranty.payments.client)."""
    import stripe

    from devtools.stripe_standin import StripeStandin

    # The stand-in never writes localstripe's pickle; a stale one from elsewhere would make
    # the test that proves it ambiguous.
    Path("/tmp/localstripe.pickle").unlink(missing_ok=True)
    saved = (stripe.api_key, stripe.api_base)
    # Deliveries stay asynchronous (after the answer to the call that caused them), only
    # sooner than localstripe's second: the suite waits for webhooks hundreds of times.
    standin = StripeStandin(webhook_delay=WEBHOOK_DELAY_SECONDS)
    url = standin.start()
    stripe.api_key, stripe.api_base = "sk_test_standin", url
    yield standin
    standin.stop()
    stripe.api_key, stripe.api_base = saved


@pytest.fixture
def stripe_settings(settings, stripe_standin):
    """Test settings that talk to the stand-in."""
    return settings.model_copy(update={"stripe_api_base": stripe_standin.url,
                                       "stripe_api_key": "sk_test_standin",
                                       "stripe_webhook_secret": "whsec_test"})


# How often a test server's accept loop looks at its shutdown flag. socketserver's default,
# half a second, is what every server.shutdown() waited for: a quarter of the suite's time.
POLL_SECONDS = 0.01
# Seconds the Stripe stand-in waits before each webhook delivery (localstripe's is 1).
WEBHOOK_DELAY_SECONDS = 0.2


@contextlib.contextmanager
def serve(app):
    """Serve ``app`` over real HTTP on a free 127.0.0.1 port (threaded); yields its URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(POLL_SECONDS,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)


class SharedServer:
    """One real HTTP server whose app a test swaps in (``with server.mounted(app) as url``).

    Tests that each need their own app but not their own socket share it: the app is still
    built per test; what is saved is a server start and stop per test. Between mounts the
    server answers 503.
    """

    def __init__(self, url: str):
        self.url = url
        self._app = None

    def __call__(self, environ, start_response):
        app = self._app
        if app is None:
            start_response("503 Service Unavailable", [("Content-Length", "0")])
            return [b""]
        return app(environ, start_response)

    @contextlib.contextmanager
    def mounted(self, app):
        """Serve ``app`` until the block ends; yields the base URL."""
        self._app = app
        try:
            yield self.url
        finally:
            self._app = None


@pytest.fixture(scope="session")
def shared_server():
    """A session-wide :class:`SharedServer` on a free 127.0.0.1 port."""
    holder = SharedServer("")
    with serve(holder) as url:
        holder.url = url
        yield holder


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium driven by Playwright (skipped without it, unless required)."""
    if not os.path.exists(CHROMIUM):
        if os.environ.get("WARRANTY_REQUIRE_BROWSER") == "1":
            pytest.fail(f"WARRANTY_REQUIRE_BROWSER=1 but {CHROMIUM} is missing "
                        "(apt-get install chromium)")
        pytest.skip(f"browser tests need Debian's chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def live_server(app):
    """The app over real HTTP, for browsers; yields its base URL."""
    with serve(app) as url:
        yield url


@pytest.fixture
def stripe_app(stripe_settings):
    """An app that talks to the stand-in."""
    return create_app(stripe_settings)


@pytest.fixture
def stripe_server(stripe_app, stripe_standin):
    """The Stripe-connected app over HTTP; no webhooks registered (tests deliver them).

    The stand-in's data and webhooks are reset around each test.
    """
    stripe_standin.reset()
    with serve(stripe_app) as url:
        yield url
    stripe_standin.reset()


@pytest.fixture
def stripe_live(stripe_server, stripe_standin):
    """The Stripe-connected app over HTTP with the stand-in's webhooks pointed at it."""
    stripe_standin.register_webhook("warranty", f"{stripe_server}/stripe/webhook", "whsec_test")
    return stripe_server


@pytest.fixture(scope="session")
def smtp_sink():
    """The local SMTP sink on a free port; tests ``clear()`` it or filter by recipient."""
    from devtools.smtp_sink import SmtpSink

    sink = SmtpSink()
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture
def mail_settings(stripe_settings, smtp_sink):
    """Stand-in Stripe settings that also send mail to the SMTP sink."""
    smtp_sink.clear()
    return stripe_settings.model_copy(update={"smtp_port": smtp_sink.port})


@pytest.fixture
def paid_without_webhooks(stripe_server, stripe_app, db, store_key):
    """A cart of 3 TVs with 3 plans paid on the stand-in; nothing delivered to us yet."""
    from tests.factories import add_product, load_rules
    from tests.stripe_helpers import pay_hosted, stripe_events, wait_for

    client = stripe_app.test_client()
    load_rules(db)
    add_product(db)
    token = client.get("/api/v1/offers?sku=TV-1", headers=store_key).json["offers"][0][
        "offer_token"]
    res = client.post("/api/v1/checkout/sessions", headers=store_key, json={
        "order_ref": "A-7", "customer_email": "a@example.com",
        "success_url": "https://shop.example/ok", "cancel_url": "https://shop.example/no",
        "lines": [{"type": "product", "line_id": "p", "sku": "TV-1", "quantity": 3,
                   "unit_price": 120000},
                  {"type": "plan", "for_line": "p", "quantity": 3, "offer_token": token}]})
    assert pay_hosted(res.json["checkout_url"]).status_code == 303
    session_id = res.json["stripe_checkout_session_id"]
    completed = wait_for(lambda: stripe_events("checkout.session.completed", session_id))
    intent_id = completed[0]["data"]["object"]["payment_intent"]
    succeeded = wait_for(lambda: stripe_events("payment_intent.succeeded", intent_id))
    return stripe_server, res.json["order_id"], completed[0], succeeded[0]
