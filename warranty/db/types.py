"""Column types and field helpers shared by every domain's tables; the constraint naming
convention. Money columns are integers in the currency's minor unit.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from warranty.core.dates import utcnow
from warranty.core.text import SINGLE_LINE_PATTERN

# Explicit constraint names keep migrations stable across SQLite and PostgreSQL.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(sa.types.TypeDecorator):
    """Timezone-aware UTC timestamps on every backend (SQLite keeps no zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        """Refuse naive datetimes; store UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given for a UTC timestamp column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        """Always hand back an aware UTC datetime."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# One line of text (no control characters, so nothing becomes a new line in a mail header
# or a CSV row; PostgreSQL refuses NUL anyway): for validating input models.
SINGLE_LINE = SINGLE_LINE_PATTERN
# The largest amount input models accept (money columns are 64-bit; Stripe's cap is far below).
MAX_COLUMN_AMOUNT = 10**12


def ts_field(**kwargs: Any) -> Any:
    """A UTC timestamp column defaulting to now."""
    nullable = kwargs.pop("nullable", False)
    default = kwargs.pop("default", None)
    extra = {} if nullable or default is not None else {"default_factory": utcnow}
    if nullable:
        extra["default"] = None
    elif default is not None:
        extra["default"] = default
    return Field(sa_type=UTCDateTime(), nullable=nullable, **extra, **kwargs)


def money_field(**kwargs: Any) -> Any:
    """An amount in the currency's minor unit: 64-bit, since KRW, VND or IDR totals outgrow
    32 bits long before anything else does."""
    return Field(sa_type=sa.BigInteger(), ge=0, **kwargs)


def json_field(default_factory=dict) -> Any:
    """A JSON column."""
    return Field(default_factory=default_factory, sa_type=sa.JSON(), nullable=False)
