"""Pricing rule endpoints: upload a new version, read versions."""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, current_app, g
from pydantic import BaseModel, Field
from sqlmodel import select

from warranty.core.errors import NotFound
from warranty.http.api.spec import endpoint
from warranty.http.session import get_session
from warranty.pricing import rules as pricing_rules
from warranty.pricing.models import RuleSet

bp = Blueprint("rules", __name__, url_prefix="/api/v1")


class RuleSetUpload(BaseModel):
    """A rule document (see README "Pricing rules") and a note for the version history."""

    rules: dict = Field(description="the rule document, same format as the YAML file")
    note: str = Field(default="", max_length=500)
    based_on_version: int | None = Field(
        default=None, ge=1, le=2**31 - 1,
        description="the version these rules were edited from; if a newer one was uploaded "
                    "since, the upload is refused (409 rules_changed) instead of replacing it")


class RuleSetOut(BaseModel):
    """One version of the rules."""

    version: int
    currency: str
    note: str
    created_by: str
    created_at: datetime
    rules: dict | None = None


class RuleSetList(BaseModel):
    """Every version, newest first."""

    versions: list[RuleSetOut]


def _out(row: RuleSet, with_rules: bool) -> RuleSetOut:
    """API shape of a rule version."""
    return RuleSetOut(version=row.version, currency=row.currency, note=row.note,
                      created_by=row.created_by, created_at=row.created_at,
                      rules=row.document if with_rules else None)


@endpoint(bp, "/rule-sets", method="POST", summary="Upload pricing rules as a new version",
          auth="admin", body=RuleSetUpload, response=RuleSetOut, status=201, errors=(409,))
def upload(body: RuleSetUpload):
    """Validate and store a new rule version."""
    session = get_session()
    document = pricing_rules.parse_document(body.rules)
    row = pricing_rules.save_rule_set(session=session, document=document,
                                store_currency=current_app.config["SETTINGS"].currency,
                                created_by=g.actor, note=body.note,
                                based_on=body.based_on_version)
    session.commit()
    return _out(row, with_rules=True)


@endpoint(bp, "/rule-sets", summary="List rule versions", auth="read", response=RuleSetList)
def list_versions():
    """Every version, newest first (without their documents)."""
    rows = get_session().exec(select(RuleSet).order_by(RuleSet.version.desc())).all()
    return RuleSetList(versions=[_out(r, with_rules=False) for r in rows])


@endpoint(bp, "/rule-sets/<int:version>", summary="One rule version with its document",
          auth="read", response=RuleSetOut, errors=(404,))
def get_version(version: int):
    """A version and its document."""
    row = get_session().get(RuleSet, version)
    if row is None:
        raise NotFound(f"rule set version {version} does not exist")
    return _out(row, with_rules=True)
