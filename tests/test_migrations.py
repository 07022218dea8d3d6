"""The models and the Alembic migrations describe the same schema."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

from warranty.db import get_engine


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
