"""customer_facts: the retention report's per-customer rows stay equal to a recomputation from
the orders, contracts and visitor events, whatever writes them and however concurrently; and
migration 0009 backfills the same rows."""

from __future__ import annotations

import threading
from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from devtools.cli import main as cli
from tests.factories import add_product, load_rules, signed_visitor
from tests.stripe_helpers import pay_hosted, wait_paid
from warranty.contracts.models import Contract
from warranty.core.dates import store_today, utcnow
from warranty.customers import facts as customers_facts
from warranty.customers.models import CustomerFacts
from warranty.db.engine import Session, dispose_engines, get_engine, migrate
from warranty.experiment import events
from warranty.experiment.models import VisitorEvent
from warranty.orders.models import Order

URLS = {"success_url": "https://shop.example/ok", "cancel_url": "https://shop.example/no"}
FACTS = CustomerFacts.__table__


EMPTY = (None, 0, 0, None, 0, 0, None, None)  # the facts of a customer with no purchase


def stored_and_fresh(url: str) -> tuple[dict, dict]:
    """The rows as kept, and as recomputed from scratch now, by email; empty rows left out
    (a customer whose only order moved away keeps one)."""
    with get_engine(url).connect() as conn:
        stored = {row.email: tuple(row) for row in conn.execute(sa.select(FACTS))}
        fresh = customers_facts.facts_select().subquery()
        recomputed = {row.email: tuple(row) for row in conn.execute(
            sa.select(*(fresh.c[c.name] for c in FACTS.columns)))}
    return tuple({email: row for email, row in rows.items() if row[1:] != EMPTY}
                 for rows in (stored, recomputed))


# Signed visitor ids, as the embed holds them (the intake refuses others).
VISITOR_ANN_1, VISITOR_BOB_1, VISITOR_CAT_1 = (signed_visitor(f"visitor-{name}-1")
                                               for name in ("ann", "bob", "cat"))


def assert_in_step(url: str) -> dict:
    """Every kept row equals its recomputation (and there is a row per customer)."""
    stored, recomputed = stored_and_fresh(url)
    assert stored == recomputed
    return {email: dict(zip([c.name for c in FACTS.columns], row, strict=True))
            for email, row in stored.items()}


def send_events(client, store_key, visitor: str, *types: str) -> str:
    """The embed's event batch for one visitor; returns the arm the server assigned."""
    res = client.post("/api/v1/events", headers=store_key, json={
        "visitor_id": visitor, "events": [{"type": t, "placement": "cart"} for t in types]})
    assert res.status_code == 202, res.json
    return res.json["arm"]


def checkout(client, store_key, database_url, *, email, visitor, plan: bool):
    """A hosted checkout of one TV (with a plan or not), paid on the stand-in; the order."""
    lines = [{"type": "product", "line_id": "p", "sku": "TV-1", "quantity": 1,
              "unit_price": 120000}]
    if plan:
        offers = client.get("/api/v1/offers?sku=TV-1", headers=store_key).json["offers"]
        token = next(o for o in offers if o["plan_code"] == "standard-36")["offer_token"]
        lines.append({"type": "plan", "for_line": "p", "quantity": 1, "offer_token": token,
                      "placement": "cart"})
    res = client.post("/api/v1/checkout/sessions", headers=store_key, json={
        "order_ref": f"W-{email}", "customer_email": email, "visitor_id": visitor,
        **URLS, "lines": lines})
    assert res.status_code == 201, res.json
    assert_in_step(database_url)  # a pending order counts for the arm already
    pay_hosted(res.json["checkout_url"])
    order, _ = wait_paid(database_url, res.json["order_id"], contracts=int(plan))
    return order


def test_facts_follow_checkout_post_purchase_imports_events_and_refunds(
        stripe_live, stripe_app, database_url, db, store_key, staff_headers, tmp_path,
        monkeypatch):
    client = stripe_app.test_client()
    load_rules(db)
    add_product(db)
    today = store_today("Asia/Tokyo")
    ann_arm = send_events(client, store_key, VISITOR_ANN_1, "exposure", "offer_viewed")
    ann = checkout(client, store_key, database_url, email="ann@example.com",
                   visitor=VISITOR_ANN_1, plan=True)
    facts = assert_in_step(database_url)
    assert facts["ann@example.com"] == {
        "email": "ann@example.com", "first_purchase": today, "orders": 1,
        "value": ann.total_amount, "next_gap": None, "year_one": 1, "months": 0,
        "first_plan": today, "arm": ann_arm}

    # Bob buys without a plan, then adds one through the post-purchase checkout: the plan
    # order is no purchase of its own, but makes him a customer with a plan.
    bob = checkout(client, store_key, database_url, email="bob@example.com",
                   visitor=VISITOR_BOB_1, plan=False)
    assert assert_in_step(database_url)["bob@example.com"]["first_plan"] is None
    offer = client.get(f"/api/v1/orders/{bob.public_id}/post-purchase-offers",
                       headers=store_key).json["lines"][0]["offers"][0]
    res = client.post("/api/v1/checkout/post-purchase", headers=store_key, json={
        "order_id": bob.public_id, "line_no": 1, "offer_token": offer["offer_token"],
        "quantity": 1, **URLS})
    assert res.status_code == 201, res.json
    pay_hosted(res.json["checkout_url"])
    wait_paid(database_url, res.json["order_id"], contracts=1)
    facts = assert_in_step(database_url)
    assert (facts["bob@example.com"]["orders"], facts["bob@example.com"]["first_plan"]) == (
        1, today)

    # Imported orders: an earlier one of Ann's moves her first purchase (she no longer
    # bought her plan with it); Cat's carry a visitor id whose events come afterwards.
    day = today - timedelta(days=200)
    batch = {"orders": [
        {"order_ref": "E-1", "email": "ann@example.com", "purchase_date": day.isoformat(),
         "total_amount": 5000},
        {"order_ref": "E-2", "email": "cat@example.com", "purchase_date": day.isoformat(),
         "total_amount": 7000, "visitor_id": VISITOR_CAT_1},
        {"order_ref": "E-3", "email": "cat@example.com",
         "purchase_date": (day + timedelta(days=40)).isoformat(), "total_amount": 3000}]}
    res = client.post("/api/v1/orders/import", headers=staff_headers, json=batch)
    assert res.status_code == 200, res.json
    facts = assert_in_step(database_url)
    assert (facts["ann@example.com"]["first_purchase"], facts["ann@example.com"]["orders"],
            facts["ann@example.com"]["next_gap"]) == (day, 2, 200)
    assert (facts["cat@example.com"]["next_gap"], facts["cat@example.com"]["arm"]) == (40, None)
    cat_arm = send_events(client, store_key, VISITOR_CAT_1, "exposure")
    assert assert_in_step(database_url)["cat@example.com"]["arm"] == cat_arm

    monkeypatch.setenv("WARRANTY_ENV", "test")
    monkeypatch.setenv("WARRANTY_DATABASE_URL", database_url)
    csv = tmp_path / "orders.csv"
    csv.write_text("order_ref,email,purchase_date,total_amount,visitor_id\n"
                   f"C-1,dan@example.com,{day},4000,{VISITOR_ANN_1}\n"
                   f"C-2,cat@example.com,{day + timedelta(days=31)},1000,\n")
    result = CliRunner().invoke(cli, ["import-orders", str(csv)])
    assert result.exit_code == 0, result.output
    facts = assert_in_step(database_url)
    assert facts["dan@example.com"]["arm"] == ann_arm  # his order carries Ann's visitor id
    assert facts["cat@example.com"]["months"] == 1 << 1  # bought again in the next month

    # Refunds change no purchase: a cancelled plan and a returned product leave the facts.
    contract = db.execute(sa.select(Contract.public_id).join(Order, Order.id == Contract.order_id)
                          .where(Order.customer_email == "ann@example.com")).scalar()
    db.commit()
    quote = client.get(f"/api/v1/contracts/{contract}/cancellation-quote",
                       headers=staff_headers).json
    res = client.post(f"/api/v1/contracts/{contract}/cancel", headers=staff_headers,
                      json={"amount": quote["amount"], "reason": "changed mind"})
    assert res.status_code == 200, res.json
    res = client.post(f"/api/v1/orders/{bob.public_id}/lines/1/returns", headers=staff_headers,
                      json={"quantity": 1})
    assert res.status_code == 200, res.json
    assert assert_in_step(database_url) == facts


def _order(email: str, day: date, *, visitor: str | None = None, total: int = 1000) -> Order:
    """A paid external order, arranged directly."""
    return Order(store_order_ref=f"R-{email}-{day}-{total}", customer_email=email,
                 currency="jpy", total_amount=total, channel="external", status="paid",
                 purchase_date=day, visitor_id=visitor)


def _race(database_url: str, first_writes, second_writes) -> None:
    """Run ``first_writes(session)`` and leave it uncommitted; start ``second_writes(session)``
    (then a commit) in a thread; check that it waits, commit the first, and let it finish."""
    engine = get_engine(database_url)
    errors: list[BaseException] = []

    def second():
        try:
            with Session(engine) as session:
                second_writes(session)
                session.commit()
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    thread = threading.Thread(target=second)
    with Session(engine) as first:
        first_writes(first)
        thread.start()
        thread.join(0.5)
        waited = thread.is_alive()
        first.commit()
    thread.join(30)
    assert waited, "the second writer should wait for the first"
    assert not thread.is_alive() and not errors, errors


def test_concurrent_orders_of_one_customer_lose_nothing(database_url, db):
    """The second writer waits for the first one's row lock, then counts both orders."""
    db.add(_order("eve@example.com", date(2025, 12, 1), total=500))  # her row exists
    db.commit()

    def first(session):
        session.add(_order("eve@example.com", date(2026, 1, 5), total=1000))
        session.flush()
        customers_facts.refresh(session.connection(), emails=["eve@example.com"])

    _race(database_url, first,
          lambda session: session.add(_order("eve@example.com", date(2026, 2, 9), total=2000)))
    facts = assert_in_step(database_url)["eve@example.com"]
    assert (facts["orders"], facts["value"], facts["next_gap"]) == (3, 3500, 35)


def _events(session) -> None:
    """A holdout visitor's event batch (share 1.0 holds everyone out)."""
    events.record_events(session=session, visitor_id="visitor-fay-1",
                             events=[events.EventIn(type="exposure")], salt="s", share=1.0,
                             received_at=utcnow())


def _fays_order(session) -> None:
    """An order carrying that visitor id."""
    session.add(_order("fay@example.com", date(2026, 3, 1), visitor="visitor-fay-1"))


def _written_and_locked(write):
    """``write``, then what its commit would do first: take the locks and recompute."""
    def first(session):
        write(session)
        session.flush()
        customers_facts.refresh(session.connection(), emails=["fay@example.com"],
                               visitors=["visitor-fay-1"])
    return first


@pytest.mark.parametrize("events_first", [True, False], ids=["events_first", "order_first"])
def test_events_and_an_order_of_the_same_visitor_at_once(database_url, events_first):
    """Events and an order carrying their visitor id, in two transactions, either one
    holding the visitor lock: the other waits, and then sees what the first wrote (the
    order's the events' arm, or the events' the order's customer)."""
    first, second = (_events, _fays_order) if events_first else (_fays_order, _events)
    _race(database_url, _written_and_locked(first), second)
    assert assert_in_step(database_url)["fay@example.com"]["arm"] == "holdout"


def test_orm_writes_of_every_kind_keep_facts_in_step(db, database_url):
    """Orders, contracts and events added, changed and moved through the ORM (as tests and
    scripts do) update the facts at commit; a rollback leaves them alone."""
    from tests.report_history import plan_sale

    plan_sale(db, price=3000, sold_on=date(2025, 5, 1), email="gus@example.com",
              visitor_id="visitor-gus-1")
    db.add(VisitorEvent(visitor_id="visitor-gus-1", arm="treatment", type="exposure"))
    db.add(_order("gus@example.com", date(2025, 4, 20)))  # earlier: without plan now
    db.add(Order(store_order_ref="P-1", customer_email="hal@example.com", currency="jpy",
                 total_amount=500, channel="checkout_session", visitor_id="visitor-hal-1"))
    db.commit()
    facts = assert_in_step(database_url)
    assert facts["gus@example.com"]["first_purchase"] == date(2025, 4, 20)
    assert facts["gus@example.com"]["arm"] == "treatment"
    assert "hal@example.com" not in facts  # a pending order only: no purchase, empty facts
    pending = db.execute(sa.select(Order).where(Order.customer_email == "hal@example.com")
                         ).scalar_one()
    pending.status, pending.purchase_date = "paid", date(2025, 6, 1)
    moved = db.execute(sa.select(Order).where(Order.store_order_ref.like("R-gus%"))
                       ).scalar_one()
    moved.customer_email = "hal@example.com"  # a correction: the order was Hal's
    db.commit()
    facts = assert_in_step(database_url)
    assert facts["gus@example.com"]["first_purchase"] == date(2025, 5, 1)
    assert facts["hal@example.com"]["orders"] == 2
    db.add(_order("ivy@example.com", date(2025, 7, 1)))
    db.flush()
    db.rollback()
    assert "ivy@example.com" not in assert_in_step(database_url)
    moved.customer_email = "jon@example.com"  # Hal's only paid order moves on again
    pending.customer_email = "jon@example.com"
    db.commit()
    facts = assert_in_step(database_url)
    assert "hal@example.com" not in facts and facts["jon@example.com"]["orders"] == 2
    hal = db.execute(sa.select(CustomerFacts).where(CustomerFacts.email == "hal@example.com")
                     ).scalar_one()
    assert (hal.first_purchase, hal.orders, hal.arm) == (None, 0, None)


def test_migration_backfills_the_same_rows(empty_database_url, monkeypatch):
    """Downgrading past 0009 and upgrading again rebuilds the table from the orders as they
    are: the migration's frozen SQL and facts_select agree."""
    from alembic import command

    from warranty.db.engine import alembic_config

    migrate(empty_database_url)
    monkeypatch.setenv("WARRANTY_ENV", "test")
    monkeypatch.setenv("WARRANTY_DATABASE_URL", empty_database_url)
    result = CliRunner().invoke(cli, ["synth", "--orders", "3000", "--plans", "600",
                                      "--start", "2025-01-01", "--days", "365"])
    assert result.exit_code == 0, result.output
    with Session(get_engine(empty_database_url)) as session:  # kinds synth does not make
        session.add(Order(store_order_ref="X-1", customer_email="c1@example.com",
                          currency="jpy", total_amount=900, channel="post_purchase",
                          status="paid", purchase_date=date(2025, 3, 1), visitor_id="n7"))
        session.add(Order(store_order_ref="X-2", customer_email="new@example.com",
                          currency="jpy", total_amount=900, channel="checkout_session",
                          visitor_id="v1"))
        session.commit()
    kept, recomputed = stored_and_fresh(empty_database_url)
    assert kept == recomputed and len(kept) > 1000
    config = alembic_config(empty_database_url)
    command.downgrade(config, "0008")
    dispose_engines()
    command.upgrade(config, "head")
    assert stored_and_fresh(empty_database_url) == (kept, kept)



def test_cli_rebuilds_facts_after_sql_run_by_hand(db, database_url, monkeypatch):
    """SQL run outside the service leaves the facts behind; the command catches them up."""
    db.add(_order("kim@example.com", date(2025, 1, 10)))
    db.add(_order("kim@example.com", date(2025, 2, 10)))
    db.commit()
    with get_engine(database_url).begin() as conn:
        conn.execute(sa.update(Order.__table__).where(
            Order.__table__.c.purchase_date == date(2025, 2, 10)).values(
            purchase_date=date(2025, 1, 20)))
    kept, recomputed = stored_and_fresh(database_url)
    assert kept != recomputed  # next_gap 31 kept, 10 now
    monkeypatch.setenv("WARRANTY_ENV", "test")
    monkeypatch.setenv("WARRANTY_DATABASE_URL", database_url)
    result = CliRunner().invoke(cli, ["rebuild-customer-facts"])
    assert result.exit_code == 0, result.output
    assert '"customers": 1' in result.output
    assert assert_in_step(database_url)["kim@example.com"]["next_gap"] == 10
