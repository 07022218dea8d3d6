"""No hidden global state: the Stripe client, session listeners, caches and logging belong to
the app (or the entry point) that made them, so two apps in one process never mix."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
import sqlmodel
import stripe

from tests.conftest import PUBLIC_KEY
from tests.factories import add_product, load_rules, rules_doc
from warranty.customers import facts
from warranty.customers.models import CustomerFacts
from warranty.db.engine import Session, get_engine, migrate
from warranty.http import clients
from warranty.http.app import create_app
from warranty.orders.models import Order
from warranty.payments.client import make_client

PACKAGE = Path(__file__).resolve().parents[1] / "warranty"


def test_nothing_in_the_service_sets_the_stripe_sdks_module_globals():
    assignment = re.compile(r"\bstripe\.[a-z_]+\s*=[^=]|setattr\(\s*stripe\b")
    offenders = [f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}"
                 for path in sorted(PACKAGE.rglob("*.py"))
                 for number, line in enumerate(path.read_text().splitlines(), 1)
                 if assignment.search(line)]
    assert offenders == []


@pytest.fixture
def second_standin(tmp_path):
    """A second Stripe stand-in, in a process of its own (localstripe keeps one store per
    process): another address with other data."""
    process = subprocess.Popen([sys.executable, "-m", "devtools.stripe_standin", "--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                               cwd=PACKAGE.parent)
    try:
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), url
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()


def _payment_intent(app, token: str, order_ref: str) -> str:
    res = app.test_client().post("/api/v1/checkout/payment-intents", headers={
        "X-Warranty-Key": PUBLIC_KEY}, json={
        "order_ref": order_ref, "customer_email": "a@example.com",
        "lines": [{"type": "product", "line_id": "p1", "sku": "TV-1", "quantity": 1,
                   "unit_price": 120000},
                  {"type": "plan", "for_line": "p1", "quantity": 1, "offer_token": token}]})
    assert res.status_code == 201, res.json
    return res.json["payment_intent_id"]


def test_two_apps_in_one_process_each_reach_their_own_stripe(stripe_settings, stripe_standin,
                                                             second_standin, db):
    load_rules(db)
    add_product(db)
    first = create_app(stripe_settings)
    other = stripe_settings.model_copy(update={"stripe_api_base": second_standin,
                                               "stripe_api_key": "sk_test_second"})
    second = create_app(other)  # made after the first: it must not re-point the first
    token = first.test_client().get("/api/v1/offers?sku=TV-1", headers={
        "X-Warranty-Key": PUBLIC_KEY}).json["offers"][0]["offer_token"]
    with first.app_context():
        assert clients.stripe_client()._requestor.api_key == "sk_test_standin"
    with second.app_context():
        assert clients.stripe_client()._requestor.api_key == "sk_test_second"
    on_first = _payment_intent(first, token, "A-1")
    on_second = _payment_intent(second, token, "A-2")
    here, there = make_client(stripe_settings), make_client(other)
    assert here.v1.payment_intents.retrieve(on_first).amount > 0
    assert there.v1.payment_intents.retrieve(on_second).amount > 0
    with pytest.raises(stripe.InvalidRequestError):
        here.v1.payment_intents.retrieve(on_second)
    with pytest.raises(stripe.InvalidRequestError):
        there.v1.payment_intents.retrieve(on_first)


def _paid(email: str) -> Order:
    return Order(store_order_ref=f"R-{email}", customer_email=email, currency="jpy",
                 total_amount=1000, channel="external", status="paid",
                 purchase_date=date(2025, 5, 1))


def test_session_listeners_only_on_the_apps_own_session_class(database_url):
    for session_class in (sqlmodel.Session, sa.orm.Session):
        for name, listener in facts._LISTENERS:
            assert not sa.event.contains(session_class, name, listener)
    engine = get_engine(database_url)
    with sqlmodel.Session(engine) as plain:  # a script's own session, outside the app
        plain.add(_paid("plain@example.com"))
        plain.commit()
    with Session(engine) as own:
        own.add(_paid("own@example.com"))
        own.commit()
        rows = dict(own.execute(sa.select(CustomerFacts.email, CustomerFacts.orders)).all())
    assert rows == {"own@example.com": 1}  # the plain session's order left the facts alone


@pytest.fixture
def two_databases(settings, tmp_path):
    """Settings on the test database and on a second database of its own."""
    url = f"sqlite:///{tmp_path / 'second.db'}"
    migrate(url)
    yield settings, settings.model_copy(update={"database_url": url})
    get_engine(url).dispose()


def _offer_price(app, sku: str) -> tuple[int, int]:
    res = app.test_client().get(f"/api/v1/offers?sku={sku}",
                                headers={"X-Warranty-Key": PUBLIC_KEY})
    assert res.status_code == 200, res.json
    return res.json["rule_set_version"], res.json["offers"][0]["price"]


def _priced(price: int) -> dict:
    document = rules_doc()
    for category in document["categories"].values():
        for band in category["bands"]:
            band["prices"] = {code: {"fixed": price} for code in band["prices"]}
    return document


def test_two_apps_on_two_databases_see_their_own_rules_and_products(two_databases,
                                                                     staff_headers):
    first_settings, second_settings = two_databases
    for settings, price, sku in ((first_settings, 1000, "TV-1"), (second_settings, 2000, "TV-2")):
        with Session(get_engine(settings.database_url)) as session:
            assert load_rules(session, _priced(price)) == 1  # version 1 in both databases
            add_product(session, sku=sku)
    first, second = create_app(first_settings), create_app(second_settings)
    assert _offer_price(first, "TV-1") == (1, 1000)
    assert _offer_price(second, "TV-2") == (1, 2000)
    assert first.test_client().get("/api/v1/offers?sku=TV-2", headers={
        "X-Warranty-Key": PUBLIC_KEY}).status_code == 404
    # An upload is what the very next request prices with (no cached 'latest' left).
    res = first.test_client().post("/api/v1/rule-sets", headers=staff_headers,
                                   json={"rules": _priced(1500), "note": "new prices"})
    assert res.status_code == 201, res.json
    assert _offer_price(first, "TV-1") == (2, 1500)
    assert _offer_price(second, "TV-2") == (1, 2000)


def test_create_app_leaves_logging_to_the_entry_point(settings):
    root, sdk = logging.getLogger(), logging.getLogger("stripe")
    before = (list(root.handlers), root.level, sdk.level)
    create_app(settings)
    assert (list(root.handlers), root.level, sdk.level) == before


def test_the_entry_points_configure_logging():
    for module in ("wsgi.py", "cli.py", "gunicorn_conf.py", "http/dev_server.py"):
        assert "configure_logging()" in (PACKAGE / module).read_text(), module
    assert "logging" not in (PACKAGE / "http" / "app.py").read_text()
