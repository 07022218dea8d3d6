"""The models and the Alembic migrations describe the same schema."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

from warranty.db import get_engine
from warranty.models import UTCDateTime

ROOT = Path(__file__).resolve().parents[1]


def test_models_and_migrations_do_not_drift(database_url):
    engine = get_engine(database_url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, SQLModel.metadata)
    assert diff == [], f"models and migrations differ; run alembic revision --autogenerate: {diff}"


def test_migrations_downgrade_and_upgrade_cleanly(tmp_path):
    from alembic import command

    from warranty.db import alembic_config

    url = f"sqlite:///{tmp_path / 'roundtrip.db'}"
    config = alembic_config(url)
    command.upgrade(config, "head")
    command.downgrade(config, "base")
    command.upgrade(config, "head")
    get_engine(url).dispose()


def test_0008_schedules_stored_stripe_events_as_the_old_worker_did(empty_database_url):
    from alembic import command

    from warranty.db import alembic_config

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


def test_0012_backfills_sku_keys_and_refuses_skus_that_would_become_one(empty_database_url):
    import importlib.util

    from alembic import command

    from warranty.db import alembic_config
    from warranty.text import sku_key

    config = alembic_config(empty_database_url)
    command.upgrade(config, "0010")
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
    command.downgrade(config, "0010")
    add("tv\u00ad-1")  # one product with TV-1 once normalised: the upgrade names both
    with pytest.raises(RuntimeError, match=r"'TV-1', 'tv\\xad-1'"):
        command.upgrade(config, "head")
    engine.dispose()
    # The migration's frozen copy of the key agrees with the service's.
    path = next((ROOT / "migrations" / "versions").glob("0012_*.py"))
    spec = importlib.util.spec_from_file_location("migration_0012", path)
    frozen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(frozen)
    for sku in ("TV-1", " ＴＶ\u200b–1 ", "ß\ufeffX", "A\u3164B", "x\ufe0fy", "Ａ  Ｂ"):
        assert frozen.sku_key(sku) == sku_key(sku)
