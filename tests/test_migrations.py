"""The models and the Alembic migrations describe the same schema."""

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

from warranty.db import get_engine
from warranty.models import UTCDateTime


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


def test_0016_books_existing_rows_on_their_own_dates(empty_database_url):
    """Rows written before closed months existed are booked on their dates (payouts on the
    store-local day they were made), and the close table starts empty."""
    from datetime import date

    from alembic import command
    from sqlmodel import Session, select

    from tests.report_history import payout, plan_sale
    from warranty.db import alembic_config
    from warranty.models import Contract, Order, Payout, Refund

    config = alembic_config(empty_database_url)
    command.upgrade(config, "head")
    engine = sa.create_engine(empty_database_url, poolclass=sa.pool.NullPool)
    with Session(engine) as session:
        (contract,) = plan_sale(session, price=3650, sold_on=date(2026, 1, 10),
                                cancel=(date(2026, 2, 3), 1000))
        # 2026-03-31 16:00 UTC is 2026-04-01 01:00 in Tokyo.
        payout(session, contract, amount=2000, paid_at=datetime(2026, 3, 31, 16, tzinfo=UTC))
    command.downgrade(config, "0010")  # as the rows stood before 0016
    command.upgrade(config, "head")
    with Session(engine) as session:
        assert session.exec(select(Contract.booked_on)).all() == [date(2026, 1, 10)]
        assert session.exec(select(Order.booked_on)).all() == [date(2026, 1, 10)]
        assert session.exec(select(Refund.booked_on)).all() == [date(2026, 2, 3)]
        assert session.exec(select(Payout.booked_on)).all() == [date(2026, 4, 1)]
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM closed_month")).scalar() == 0
    engine.dispose()
