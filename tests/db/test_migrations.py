"""The models and the Alembic migrations describe the same schema."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from warranty.db.engine import get_engine
from warranty.db.types import UTCDateTime
from warranty.schema import metadata

ROOT = Path(__file__).resolve().parents[2]


def test_models_and_migrations_do_not_drift(database_url):
    engine = get_engine(database_url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, metadata)
    assert diff == [], f"models and migrations differ; run alembic revision --autogenerate: {diff}"


def test_migrations_downgrade_and_upgrade_cleanly(tmp_path):
    from alembic import command

    from warranty.db.engine import alembic_config

    url = f"sqlite:///{tmp_path / 'roundtrip.db'}"
    config = alembic_config(url)
    command.upgrade(config, "head")
    command.downgrade(config, "base")
    command.upgrade(config, "head")
    get_engine(url).dispose()


def test_0008_schedules_stored_stripe_events_as_the_old_worker_did(empty_database_url):
    from alembic import command

    from warranty.db.engine import alembic_config

    config = alembic_config(empty_database_url)
    command.upgrade(config, "0007")
    received = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    table = sa.table("stripe_event", sa.column("id"), sa.column("type"), sa.column("attempts"),
                     sa.column("payload", sa.JSON()), sa.column("received_at", UTCDateTime()),
                     sa.column("processed_at", UTCDateTime()))
    rows = [("evt_done", 1, received + timedelta(seconds=2)), ("evt_crashed", 0, None),
            ("evt_failed_twice", 2, None)]
    engine = sa.create_engine(empty_database_url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.execute(table.insert(), [
            {"id": id_, "type": "checkout.session.completed", "payload": {},
             "attempts": attempts, "received_at": received, "processed_at": processed}
            for id_, attempts, processed in rows])
    command.upgrade(config, "head")
    with engine.connect() as conn:
        due = dict(conn.execute(sa.select(sa.column("id"), sa.column("next_attempt_at",
                                                                      UTCDateTime()))
                                .select_from(sa.table("stripe_event"))).all())
    engine.dispose()
    after = {key: (value - received).total_seconds() for key, value in due.items()}
    # Processed: when it was. Unprocessed: 30 s after arrival, plus 30 s and 60 s of backoff
    # for two failed tries (the default settings).
    assert after == {"evt_done": 2, "evt_crashed": 30, "evt_failed_twice": 120}


def test_0012_keeps_existing_refunds_as_plan_refunds_stripe_made(empty_database_url):
    from datetime import date

    from alembic import command

    from warranty.db.engine import alembic_config

    config = alembic_config(empty_database_url)
    command.upgrade(config, "0011")
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    engine = sa.create_engine(empty_database_url, poolclass=sa.pool.NullPool)
    meta = sa.MetaData()
    meta.reflect(engine)
    t = meta.tables
    stamps = {"created_at": now, "updated_at": now}
    with engine.begin() as conn:
        conn.execute(t["rule_set"].insert(), {"version": 1, "currency": "jpy", "document": {},
                                              "note": "", "created_by": "t",
                                              "created_at": now})
        conn.execute(t["orders"].insert(), {
            "id": 1, "public_id": "ord_1", "store_order_ref": "A-1", "customer_email": "a@x.jp",
            "currency": "jpy", "total_amount": 12000, "channel": "payment_intent",
            "status": "paid", **stamps})
        conn.execute(t["order_line"].insert(), [
            {"id": n, "order_id": 1, "line_no": n, "kind": kind, "sku": "TV", "title": "TV",
             "quantity": 2, "unit_price": 6000, "amount": 12000, "refunded_quantity": 0}
            for n, kind in ((1, "product"), (2, "plan"))])
        day = date(2026, 3, 1)
        conn.execute(t["contract"].insert(), [
            {"id": n, "public_id": f"ct_{n}", "order_id": 1, "plan_line_id": 2,
             "product_line_id": 1, "unit_index": n, "customer_email": "a@x.jp", "sku": "TV",
             "product_title": "TV", "product_price": 6000, "warranty_category": "electronics",
             "plan_code": "standard-36", "coverage": "standard", "term_months": 36,
             "price": 600, "currency": "jpy", "rule_set_version": 1, "deductible": 0,
             "liability_schedule": [], "purchase_date": day, "plan_sold_on": day,
             "term_end": day, "breakdown_start": day, "status": "cancelled", **stamps}
            for n in (1, 2)])
        conn.execute(t["refund"].insert(), [
            {"id": 1, "contract_id": 1, "order_id": 1, "amount": 600, "currency": "jpy",
             "cancel_date": day, "fee": 0, "claims_paid": 0, "reason": "", "status": "succeeded",
             "idempotency_key": "k1", "stripe_refund_id": "re_1", "attempts": 1,
             "created_at": now, "completed_at": now},
            {"id": 2, "contract_id": 2, "order_id": 1, "amount": 600, "currency": "jpy",
             "cancel_date": day, "fee": 0, "claims_paid": 0, "reason": "", "status": "pending",
             "idempotency_key": "k2", "stripe_refund_id": None, "attempts": 0,
             "created_at": now, "completed_at": None}])
    command.upgrade(config, "head")
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT id, kind, stripe_status, covered_by_id FROM refund "
                                    "ORDER BY id")).all()
        assert [tuple(r) for r in rows] == [(1, "plan", "succeeded", None),
                                            (2, "plan", None, None)]
        conn.rollback()
        # A plan refund has a contract, always.
        with pytest.raises(sa.exc.IntegrityError), conn.begin():
            conn.execute(sa.text(
                "INSERT INTO refund (order_id, kind, amount, currency, cancel_date, fee, "
                "claims_paid, reason, status, idempotency_key, attempts, created_at) VALUES "
                "(1, 'plan', 1, 'jpy', '2026-03-01', 0, 0, '', 'pending', 'k3', 0, "
                "'2026-03-01 00:00:00')"))
    command.downgrade(config, "0011")
def test_0013_books_existing_rows_on_their_own_dates(empty_database_url):
    """Rows written before closed months existed are booked on their dates (payouts on the
    store-local day they were made), and the close table starts empty."""
    from datetime import date

    from alembic import command
    from sqlmodel import select

    from tests.report_history import payout, plan_sale
    from warranty.claims.models import Payout
    from warranty.contracts.models import Contract
    from warranty.db.engine import Session, alembic_config
    from warranty.orders.models import Order, Refund

    config = alembic_config(empty_database_url)
    command.upgrade(config, "head")
    engine = sa.create_engine(empty_database_url, poolclass=sa.pool.NullPool)
    with Session(engine) as session:
        (contract,) = plan_sale(session, price=3650, sold_on=date(2026, 1, 10),
                                cancel=(date(2026, 2, 3), 1000))
        # 2026-03-31 16:00 UTC is 2026-04-01 01:00 in Tokyo.
        payout(session, contract, amount=2000, paid_at=datetime(2026, 3, 31, 16, tzinfo=UTC))
    command.downgrade(config, "0012")  # as the rows stood before 0013
    command.upgrade(config, "head")
    with Session(engine) as session:
        assert session.exec(select(Contract.booked_on)).all() == [date(2026, 1, 10)]
        assert session.exec(select(Order.booked_on)).all() == [date(2026, 1, 10)]
        assert session.exec(select(Refund.booked_on)).all() == [date(2026, 2, 3)]
        assert session.exec(select(Payout.booked_on)).all() == [date(2026, 4, 1)]
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM closed_month")).scalar() == 0
    engine.dispose()


def test_0014_backfills_sku_keys_and_refuses_skus_that_would_become_one(empty_database_url):
    import importlib.util

    from alembic import command

    from warranty.core.text import sku_key
    from warranty.db.engine import alembic_config

    config = alembic_config(empty_database_url)
    command.upgrade(config, "0013")
    product = sa.table("product", sa.column("sku"), sa.column("title"),
                       sa.column("store_category"), sa.column("unit_price"),
                       sa.column("currency"), sa.column("manufacturer_warranty_months"),
                       sa.column("created_at", UTCDateTime()),
                       sa.column("updated_at", UTCDateTime()))
    now = datetime(2026, 3, 1, tzinfo=UTC)

    def add(*skus):
        with engine.begin() as conn:
            conn.execute(product.insert(), [
                {"sku": sku, "title": "t", "store_category": "tv", "unit_price": 1,
                 "currency": "jpy", "manufacturer_warranty_months": 12, "created_at": now,
                 "updated_at": now} for sku in skus])

    engine = sa.create_engine(empty_database_url, poolclass=sa.pool.NullPool)
    add("TV-1", "ＣＡＭ\u200b－２", "Ring ﬁ")
    command.upgrade(config, "head")
    with engine.connect() as conn:
        keys = dict(conn.execute(sa.text("SELECT sku, sku_key FROM product")).all())
    assert keys == {"TV-1": "tv-1", "ＣＡＭ\u200b－２": "cam-2", "Ring ﬁ": "ring fi"}
    command.downgrade(config, "0013")
    add("tv\u00ad-1")  # one product with TV-1 once normalised: the upgrade names both
    with pytest.raises(RuntimeError, match=r"'TV-1', 'tv\\xad-1'"):
        command.upgrade(config, "head")
    engine.dispose()
    # The migration's frozen copy of the key agrees with the service's.
    path = next((ROOT / "migrations" / "versions").glob("0014_*.py"))
    spec = importlib.util.spec_from_file_location("migration_0014", path)
    frozen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(frozen)
    for sku in ("TV-1", " ＴＶ\u200b–1 ", "ß\ufeffX", "A\u3164B", "x\ufe0fy", "Ａ  Ｂ"):
        assert frozen.sku_key(sku) == sku_key(sku)


def _order_at_0016(engine, now):
    """An order at revision 0016: a ¥9,800 plan line of two units (¥4,900 each), one of them
    cancelled with a ¥2,450 refund, and a product line."""
    from datetime import date

    meta = sa.MetaData()
    meta.reflect(engine)
    t = meta.tables
    stamps = {"created_at": now, "updated_at": now}
    day = date(2026, 3, 1)
    with engine.begin() as conn:
        conn.execute(t["rule_set"].insert(), {"version": 1, "currency": "jpy", "document": {},
                                              "note": "", "created_by": "t",
                                              "created_at": now})
        conn.execute(t["orders"].insert(), {
            "id": 1, "public_id": "ord_1", "store_order_ref": "A-1", "customer_email": "a@x.jp",
            "currency": "jpy", "total_amount": 109800, "channel": "payment_intent",
            "status": "paid", "booked_on": day, **stamps})
        conn.execute(t["order_line"].insert(), [
            {"id": 1, "order_id": 1, "line_no": 1, "kind": "product", "sku": "TV",
             "title": "TV", "quantity": 2, "unit_price": 50000, "amount": 100000,
             "refunded_quantity": 0},
            {"id": 2, "order_id": 1, "line_no": 2, "kind": "plan", "sku": "TV", "title": "plan",
             "quantity": 2, "unit_price": 4900, "amount": 9800, "refunded_quantity": 0}])
        conn.execute(t["contract"].insert(), [
            {"id": n, "public_id": f"ct_{n}", "order_id": 1, "plan_line_id": 2,
             "product_line_id": 1, "unit_index": n - 1, "customer_email": "a@x.jp",
             "sku": "TV", "product_title": "TV", "product_price": 50000,
             "warranty_category": "electronics", "plan_code": "standard-36",
             "coverage": "standard", "term_months": 36, "price": 4900, "currency": "jpy",
             "rule_set_version": 1, "deductible": 0, "liability_schedule": [],
             "purchase_date": day, "plan_sold_on": day, "term_end": day,
             "breakdown_start": day, "booked_on": day,
             "status": "cancelled" if n == 1 else "active", **stamps} for n in (1, 2)])
        conn.execute(t["refund"].insert(), {
            "id": 1, "contract_id": 1, "order_id": 1, "kind": "plan", "amount": 2450,
            "currency": "jpy", "cancel_date": day, "booked_on": day, "fee": 0,
            "claims_paid": 0, "reason": "", "status": "succeeded", "idempotency_key": "k1",
            "stripe_refund_id": "re_1", "attempts": 1, "created_at": now, "completed_at": now})


@pytest.mark.parametrize("mode", ["inclusive", "exclusive"])
def test_0017_backfills_tax_as_the_store_setting_implies(empty_database_url, monkeypatch,
                                                         mode):
    from alembic import command

    from warranty.db.engine import alembic_config

    monkeypatch.setenv("WARRANTY_TAX_MODE", mode)
    monkeypatch.delenv("WARRANTY_TAX_RATE", raising=False)
    monkeypatch.delenv("WARRANTY_CURRENCY", raising=False)
    config = alembic_config(empty_database_url)
    command.upgrade(config, "0016")
    engine = sa.create_engine(empty_database_url, poolclass=sa.pool.NullPool)
    _order_at_0016(engine, datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    command.upgrade(config, "head")
    with engine.connect() as conn:
        lines = conn.execute(sa.text("SELECT kind, gross, tax, net FROM order_line "
                                     "ORDER BY id")).all()
        contracts = conn.execute(sa.text("SELECT price, tax FROM contract ORDER BY id")).all()
        refunds = conn.execute(sa.text("SELECT amount, tax FROM refund")).all()
    engine.dispose()
    if mode == "inclusive":
        # JPY, 10% included: 9,800 × 10 / 110 = 890.9… → ¥890 on the plan line, ¥445 a unit;
        # the ¥2,450 refund reverses 445 × 2450 / 4900 = ¥222.5 → ¥222 (down).
        assert [tuple(r) for r in lines] == [("product", 100000, 0, 100000),
                                             ("plan", 9800, 890, 8910)]
        assert [tuple(r) for r in contracts] == [(4900, 445), (4900, 445)]
        assert [tuple(r) for r in refunds] == [(2450, 222)]
    else:
        # Exclusive prices: nothing was added to those orders; their tax is 0.
        assert [tuple(r) for r in lines] == [("product", 100000, 0, 100000),
                                             ("plan", 9800, 0, 9800)]
        assert [tuple(r) for r in contracts] == [(4900, 0), (4900, 0)]
        assert [tuple(r) for r in refunds] == [(2450, 0)]
    command.downgrade(config, "0016")


def test_0018_gives_existing_contracts_the_terms_version_of_their_rule_set(
        empty_database_url, monkeypatch):
    import json

    from alembic import command

    from warranty.db.engine import alembic_config
    from warranty.pricing import terms

    for name in ("WARRANTY_CURRENCY", "WARRANTY_FREE_LOOK_DAYS", "WARRANTY_CANCELLATION_FEE",
                 "WARRANTY_CLAIM_FILING_DAYS_AFTER_TERM"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WARRANTY_REPAIR_ONLY", "true")
    config = alembic_config(empty_database_url)
    command.upgrade(config, "0016")
    engine = sa.create_engine(empty_database_url, poolclass=sa.pool.NullPool)
    _order_at_0016(engine, datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    command.upgrade(config, "head")
    conditions = terms.Conditions(currency="jpy", repair_only=True)
    with engine.connect() as conn:
        contracts = conn.execute(sa.text("SELECT terms_version FROM contract")).scalars().all()
        versions = conn.execute(sa.text("SELECT version, rule_set_version, conditions "
                                        "FROM terms_version")).all()
    engine.dispose()
    # The migration's digest is the service's: the version the code would name.
    assert contracts == [terms.label(1, conditions)] * 2
    assert [(v, r) for v, r, _ in versions] == [(terms.label(1, conditions), 1)]
    stored = versions[0][2]
    stored = stored if isinstance(stored, dict) else json.loads(stored)
    assert terms.Conditions.from_dict(stored) == conditions
    command.downgrade(config, "0017")
