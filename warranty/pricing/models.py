"""Uploaded pricing rule sets."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from warranty.db.types import json_field, ts_field


class RuleSet(SQLModel, table=True):
    """One uploaded version of the pricing rules; contracts keep the version sold under."""

    __tablename__ = "rule_set"

    version: int | None = Field(default=None, primary_key=True)
    currency: str = Field(max_length=3)
    document: dict = json_field()  # the validated rule document, as loaded
    note: str = Field(default="", max_length=500)
    created_by: str = Field(default="", max_length=200)
    created_at: datetime = ts_field()


class TermsVersion(SQLModel, table=True):
    """A version of the plans' terms: a rule set and the store conditions the terms state
    (warranty.pricing.terms). Written by the first sale under it; never changed."""

    __tablename__ = "terms_version"

    version: str = Field(primary_key=True, max_length=40)  # "<rule set version>-<digest>"
    rule_set_version: int = Field(foreign_key="rule_set.version")
    conditions: dict = json_field()  # free-look days, fee, filing window, repair-only
    created_at: datetime = ts_field()
