"""Pricing rule sets: their document format, validation and versions (plan prices from them
are warranty.pricing.prices).

A rule document (YAML or JSON; see README "Pricing rules"):

    currency: jpy
    rounding_step: 10            # optional; ¥10 for JPY, 1 minor unit otherwise
    category_map: {tv: electronics}   # store category -> warranty category
    categories:
      electronics:
        deductible: 0                        # minor units per claim
        liability_schedule: [100, 100, 80]   # cap, % of price, per coverage year
        plans:
          - {coverage: standard, term_months: 36}
        bands:                               # min included, max excluded (null: no max)
          - {min: 0, max: 50000, prices: {standard-36: {fixed: 1980}}}
          - {min: 50000, max: null, prices: {standard-36: {rate: "0.05", floor: 2480}}}
"""

from __future__ import annotations

import functools
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Literal

import sqlalchemy as sa
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from sqlalchemy import Connection, Engine
from sqlmodel import Session, select

from warranty.core import money
from warranty.core.errors import Conflict, InvalidRules, NotFound
from warranty.db import revisions
from warranty.db.engine import write_transaction
from warranty.db.types import MAX_COLUMN_AMOUNT
from warranty.pricing.models import RuleSet

Coverage = Literal["standard", "accident"]
RULES_DIR = Path(__file__).parent / "builtin"


# Validation context of a rule set being uploaded (parse_document): the rules added since
# versions were first stored apply to new uploads only, so every stored version still loads.
UPLOAD = "upload"


def _uploading(info: ValidationInfo) -> bool:
    """True when the document is being uploaded, not read back from the database."""
    return bool(info.context and info.context.get(UPLOAD))


class _Strict(BaseModel):
    """Rule documents refuse unknown keys, so a typo is an error, not a silent default."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class PlanPrice(_Strict):
    """A band's price for one plan: a fixed amount, or a rate of the product price with a floor."""

    fixed: int | None = Field(default=None, ge=0, le=MAX_COLUMN_AMOUNT)
    rate: Decimal | None = Field(default=None, ge=0, le=10)
    floor: int = Field(default=0, ge=0, le=MAX_COLUMN_AMOUNT)

    @model_validator(mode="after")
    def _one_kind(self) -> PlanPrice:
        """Exactly one of fixed and rate."""
        if (self.fixed is None) == (self.rate is None):
            raise ValueError("give either 'fixed' or 'rate' (with an optional 'floor')")
        if self.fixed is not None and self.floor:
            raise ValueError("'floor' only applies to a 'rate' price")
        return self


class Band(_Strict):
    """Product prices from ``min`` (included) to ``max`` (excluded; null for no limit)."""

    min: int = Field(ge=0, le=MAX_COLUMN_AMOUNT)
    max: int | None = Field(default=None, gt=0, le=MAX_COLUMN_AMOUNT + 1)
    prices: dict[str, PlanPrice]

    @model_validator(mode="after")
    def _ordered(self) -> Band:
        """A band must not be empty."""
        if self.max is not None and self.max <= self.min:
            raise ValueError(f"band max {self.max} must be greater than min {self.min}")
        return self

    def contains(self, price: int) -> bool:
        """True when ``price`` falls in this band."""
        return self.min <= price and (self.max is None or price < self.max)


class PlanSpec(_Strict):
    """A plan a category offers: coverage × term."""

    coverage: Coverage
    term_months: int = Field(ge=1, le=120)

    @functools.cached_property
    def code(self) -> str:
        """Stable plan code, e.g. ``accident-36``."""
        return f"{self.coverage}-{self.term_months}"


Language = Literal["ja", "en"]
TermsText = dict[Language, list[str]]  # paragraphs per language


class TermsRules(_Strict):
    """What a rule set adds to the terms (warranty.pricing.terms writes the rest from the
    plan, the category's figures and the store's settings): the exclusions, clauses of the
    whole rule set or a category, and clauses of one plan. Each is a list of paragraphs per
    language; a language left out falls back to the built-in exclusions or to none."""

    exclusions: TermsText = Field(default_factory=dict)
    clauses: TermsText = Field(default_factory=dict)
    plans: dict[str, TermsText] = Field(default_factory=dict)  # plan code -> clauses

    @field_validator("exclusions", "clauses")
    @classmethod
    def _paragraphs(cls, value: TermsText) -> TermsText:
        """Paragraphs are non-empty and at most 2,000 characters each."""
        for paragraphs in value.values():
            for text in paragraphs:
                if not text.strip() or len(text) > 2000:
                    raise ValueError("each paragraph of the terms is 1 to 2,000 characters")
        return value


class CategoryRules(_Strict):
    """Plans, bands and claim terms of one warranty category."""

    plans: list[PlanSpec] = Field(min_length=1)
    bands: list[Band] = Field(min_length=1)
    deductible: int = Field(default=0, ge=0, le=MAX_COLUMN_AMOUNT)
    liability_schedule: list[Decimal] = Field(default_factory=lambda: [Decimal(100)],
                                              min_length=1)
    terms: TermsRules | None = None

    @field_validator("liability_schedule")
    @classmethod
    def _never_rising(cls, schedule: list[Decimal], info: ValidationInfo) -> list[Decimal]:
        """On upload: a year's cap may stay or fall, never rise above the year before's.

        A payout that uses up the cap of its coverage year fulfils the contract, which is
        only right when no later year has more cover. Versions stored before this rule load
        as they are (contracts keep the rules they were sold under).
        """
        if not _uploading(info) or any(pct < 0 or pct > 100 for pct in schedule):
            return schedule  # percentages out of range are reported by _consistent
        for year, (before, pct) in enumerate(zip(schedule, schedule[1:], strict=False), 2):
            if pct > before:
                raise ValueError(f"the cap rises in coverage year {year} ({pct}% after "
                                 f"{before}% in year {year - 1}); a cap may stay or fall "
                                 "from one year to the next, never rise")
        return schedule

    @model_validator(mode="after")
    def _consistent(self) -> CategoryRules:
        """Bands are contiguous, name only known plans, and every plan is priced somewhere."""
        codes = [plan.code for plan in self.plans]
        if len(set(codes)) != len(codes):
            raise ValueError(f"a plan is listed twice: {codes}")
        for pct in self.liability_schedule:
            if pct < 0 or pct > 100:
                raise ValueError("liability_schedule values are percentages from 0 to 100")
        bands = sorted(self.bands, key=lambda band: band.min)
        for before, after in zip(bands, bands[1:], strict=False):
            if before.max is None or before.max > after.min:
                raise ValueError(f"bands overlap: [{before.min}, {before.max}) and "
                                 f"[{after.min}, {after.max})")
            if before.max < after.min:
                raise ValueError(f"gap between bands: no band covers [{before.max}, {after.min})")
        priced = set()
        for band in bands:
            unknown = set(band.prices) - set(codes)
            if unknown:
                raise ValueError(f"band [{band.min}, {band.max}) prices unknown plan(s) "
                                 f"{sorted(unknown)}; plans are {codes}")
            priced |= set(band.prices)
        unpriced = [code for code in codes if code not in priced]
        if unpriced:
            raise ValueError(f"no band prices plan(s) {unpriced}")
        unknown_terms = sorted(set(self.terms.plans) - set(codes)) if self.terms else []
        if unknown_terms:
            raise ValueError(f"terms name unknown plan(s) {unknown_terms}; plans are {codes}")
        object.__setattr__(self, "bands", bands)
        return self

    @functools.cached_property
    def offer_liability_schedule(self) -> list[int | float]:
        """The schedule as offers show it: whole percentages as integers."""
        return [int(p) if p == int(p) else float(p) for p in self.liability_schedule]

    def cap_percent(self, coverage_year: int) -> Decimal:
        """Liability cap for a coverage year (1-based); the last value holds after the list."""
        index = min(coverage_year, len(self.liability_schedule)) - 1
        return self.liability_schedule[index]


class RuleDocument(_Strict):
    """A whole rule set as uploaded."""

    currency: str
    rounding_step: int | None = Field(default=None, ge=1, le=MAX_COLUMN_AMOUNT)
    category_map: dict[str, str] = Field(default_factory=dict)
    categories: dict[str, CategoryRules] = Field(min_length=1)
    terms: TermsRules | None = None  # exclusions and clauses of every category

    @field_validator("rounding_step")
    @classmethod
    def _stripe_step(cls, step: int | None, info: ValidationInfo) -> int | None:
        """On upload: plan prices must be amounts Stripe charges in the rule set's currency."""
        currency = info.data.get("currency")
        if step is None or not currency or not _uploading(info):
            return step
        stripe_step = money.stripe_step(currency)
        if step % stripe_step:
            raise ValueError(f"{currency.upper()} amounts go to Stripe in multiples of "
                             f"{stripe_step} minor units, so the rounding step must be a "
                             f"multiple of {stripe_step} (it is {step})")
        return step

    @model_validator(mode="after")
    def _check(self) -> RuleDocument:
        """Currency is a real code; the map only points at defined categories."""
        object.__setattr__(self, "currency", money.check_currency(self.currency))
        missing = sorted({t for t in self.category_map.values() if t not in self.categories})
        if missing:
            raise ValueError(f"category_map points at undefined categories {missing}")
        return self

    @property
    def step(self) -> int:
        """Rounding step for plan prices in minor units."""
        return self.rounding_step or money.default_step(self.currency)

    def warranty_category(self, store_category: str) -> str | None:
        """The warranty category for a store category (identity for warranty category names)."""
        key = store_category.strip()
        if key in self.category_map:
            return self.category_map[key]
        lowered = key.lower()
        if lowered in self.category_map:
            return self.category_map[lowered]
        return lowered if lowered in self.categories else None


def parse_document(data: object) -> RuleDocument:
    """Validate a rule document, turning every problem into one InvalidRules error."""
    if not isinstance(data, dict):
        raise InvalidRules("a rule set must be a mapping with currency and categories")
    try:
        return RuleDocument.model_validate(data, context={UPLOAD: True})
    except ValidationError as exc:
        problems = [
            {"at": ".".join(str(part) for part in err["loc"]) or "(document)",
             "message": err["msg"].removeprefix("Value error, ")}
            for err in exc.errors(include_url=False)
        ]
        summary = "; ".join(f"{p['at']}: {p['message']}" for p in problems[:5])
        raise InvalidRules(f"invalid pricing rules: {summary}", details=problems) from None


def load_text(text: str) -> RuleDocument:
    """Parse YAML or JSON text into a validated rule document."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidRules(f"not valid YAML or JSON: {exc}") from None
    return parse_document(data)


# Parsed rule versions and the newest version number, per database: the key is the
# database's URL (password included, so two databases differing only by it stay apart). A
# version never changes once stored; the newest one changes with an upload, which this
# process forgets at the upload's commit (other processes within LATEST_TTL_SECONDS).
_cache_lock = threading.Lock()
_by_version: dict[tuple[str, int], RuleDocument] = {}
_latest: dict[str, tuple[float, int | None]] = {}
_forgotten: dict[str, int] = {}  # per database: how often its newest version was forgotten
LATEST_TTL_SECONDS = 2.0  # other processes see a new upload within this long


def _database(session: Session | Connection) -> str:
    """The cache key of the database behind ``session``: its URL."""
    bind = session.engine if isinstance(session, Connection) else session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    return engine.url.render_as_string(hide_password=False)


def save_rule_set(*, session: Session, document: RuleDocument, store_currency: str,
                  created_by: str, note: str = "", based_on: int | None = None) -> RuleSet:
    """Store a validated document as a new version (the session's caller commits).

    Uploads go one at a time: each waits for the newest version's row lock, then reads the
    newest version again, so versions are numbered in the order they commit. ``based_on``
    is the version the uploader edited: if another upload committed since, this one is
    refused (409) instead of silently replacing it.
    """
    write_transaction(session)
    if document.currency != store_currency:
        raise InvalidRules(f"rule set is in {document.currency.upper()} but the store "
                           f"currency is {store_currency.upper()}", code="currency_mismatch")
    newest = select(RuleSet.version).order_by(RuleSet.version.desc()).limit(1)
    session.exec(newest.with_for_update()).first()
    latest = session.exec(newest).first()  # a new statement: sees what committed meanwhile
    if based_on is not None and based_on != latest:
        raise Conflict(f"the rules were changed meanwhile: the newest version is {latest}, "
                       f"not {based_on}; start again from version {latest}",
                       code="rules_changed", details={"newest_version": latest})
    row = RuleSet(currency=document.currency, document=document.model_dump(mode="json"),
                  created_by=created_by, note=note)
    session.add(row)
    session.flush()
    revisions.set_rules(session, row.version)  # cached offers see it when this commits
    database = _database(session)
    forget_latest(database)
    # Forgotten again at commit: a request that read the newest version between this flush
    # and the commit must not keep the old one cached for the next request.
    sa.event.listen(session, "after_commit", lambda _session: forget_latest(database),
                    once=True)
    return row


def forget_latest(database: str | None = None) -> None:
    """Drop the cached 'latest version' of ``database`` (every database's when None), so
    this process sees a new upload at once."""
    with _cache_lock:
        for key in [database] if database is not None else set(_latest) | set(_forgotten):
            _latest.pop(key, None)
            _forgotten[key] = _forgotten.get(key, 0) + 1


def get_version(session: Session | Connection, version: int) -> RuleDocument:
    """A rule version's document, parsed once per process and database (versions never
    change)."""
    key = (_database(session), version)
    doc = _by_version.get(key)
    if doc is None:
        document = session.execute(select(RuleSet.document)
                                   .where(RuleSet.version == version)).scalar()
        if document is None:
            raise NotFound(f"rule set version {version} does not exist")
        doc = RuleDocument.model_validate(document)
        with _cache_lock:
            _by_version[key] = doc
    return doc


def latest_version(session: Session | Connection) -> int | None:
    """The newest rule version, cached for a couple of seconds (offers are hot)."""
    key = _database(session)
    now = time.monotonic()
    cached = _latest.get(key)
    if cached and now - cached[0] < LATEST_TTL_SECONDS:
        return cached[1]
    generation = _forgotten.get(key, 0)
    version = session.execute(select(RuleSet.version).order_by(RuleSet.version.desc())
                              .limit(1)).scalar()
    with _cache_lock:
        # Not cached when an upload was forgotten meanwhile: this read may predate it.
        if _forgotten.get(key, 0) == generation:
            _latest[key] = (now, version)
    return version


def newest_version(session: Session | Connection) -> int | None:
    """The newest rule version as committed now (not cached: checkout asks it)."""
    return session.execute(select(RuleSet.version).order_by(RuleSet.version.desc())
                           .limit(1)).scalar()


def current_rules(session: Session | Connection) -> tuple[int, RuleDocument]:
    """The active rule version and document, or NotFound when none is loaded."""
    version = latest_version(session)
    if version is None:
        raise NotFound("no pricing rules are loaded yet", code="no_rules")
    return version, get_version(session, version)


def builtin_rules(name: str) -> str:
    """Text of a rule file shipped with the package (``default-jpy``, ``example-usd``)."""
    path = RULES_DIR / f"{name}.yaml"
    if not path.is_file():
        raise NotFound(f"no built-in rule file named {name!r}")
    return path.read_text(encoding="utf-8")


def clear_caches() -> None:
    """Forget every cached rule version (tests that wipe the database call this)."""
    forget_latest()
    with _cache_lock:
        _by_version.clear()
