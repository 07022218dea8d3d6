"""The plans' terms: their versions and their text in Japanese and English.

A terms version is the rule set a plan is sold under (prices, covers, deductible, caps, the
exclusions and clauses of its ``terms`` sections) together with the store's conditions the
terms state (the free-look days, the cancellation fee, the filing window after the term,
repair-or-replace-only): ``<rule set version>-<digest of the conditions>``, e.g.
``3-5f0c2a``. So a version never changes once it exists; uploading rules or changing one of
those settings starts a new one. Each contract keeps the version it was sold under
(``Contract.terms_version``); the row recording a version's conditions is written by the
sale that first uses it (``record``), so the terms page, the mails and the certificate of
a contract always show what it was sold under. The version in force (``current_label``)
needs no row to be shown: offers and carts name it before anything is sold.

Every text (the terms page, the certificate, the confirmation items, mails) is written from
the same pieces here: ``plan_terms`` for the whole terms, ``cancellation_text`` and
``settlement_text`` for the parts repeated elsewhere.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, select

from warranty.core import i18n
from warranty.core.errors import NotFound
from warranty.core.money import format_amount
from warranty.core.settings import Settings
from warranty.coverage.dates import WAITING_PERIOD_DAYS
from warranty.pricing.models import TermsVersion
from warranty.pricing.rules import CategoryRules, RuleDocument, get_version

# What each coverage covers, as the terms and the confirmation items list it.
COVERS = {"standard": ("terms.covers.breakdown",),
          "accident": ("terms.covers.breakdown", "terms.covers.accident")}
DEFAULT_EXCLUSIONS = ("terms.exclusion.wear", "terms.exclusion.cosmetic",
                      "terms.exclusion.misuse", "terms.exclusion.consumables",
                      "terms.exclusion.data", "terms.exclusion.loss")
DEFAULT_EXCLUSIONS_ACCIDENT = tuple(key for key in DEFAULT_EXCLUSIONS
                                    if key != "terms.exclusion.misuse")


@dataclass(frozen=True)
class Conditions:
    """The store settings the terms state, as they were when a version was made."""

    currency: str
    free_look_days: int = 30
    cancellation_fee: int = 0  # minor units
    claim_filing_days: int = 90
    repair_only: bool = False

    def as_dict(self) -> dict:
        """The JSON stored with a terms version."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Conditions:
        """The conditions stored with a version (keys it lacks take the defaults)."""
        known = {key: data[key] for key in cls.__dataclass_fields__ if key in data}
        return cls(**known)


def conditions_of(settings: Settings) -> Conditions:
    """The store's conditions in force now."""
    return Conditions(currency=settings.currency, free_look_days=settings.free_look_days,
                      cancellation_fee=settings.cancellation_fee,
                      claim_filing_days=settings.claim_filing_days_after_term,
                      repair_only=settings.repair_only)


def label(rule_set_version: int, conditions: Conditions) -> str:
    """The version's name: the rule set version and a digest of the conditions."""
    canonical = json.dumps(conditions.as_dict(), sort_keys=True, separators=(",", ":"))
    return f"{rule_set_version}-{hashlib.sha256(canonical.encode()).hexdigest()[:6]}"


def current_label(rule_set_version: int, settings: Settings) -> str:
    """The version a plan sold now under ``rule_set_version`` gets."""
    return label(rule_set_version, conditions_of(settings))


def record(session: Session, rule_set_version: int, conditions: Conditions) -> str:
    """Store the version (once; concurrent sales insert it at most once) and name it. The
    caller is in a write transaction (a sale)."""
    name = label(rule_set_version, conditions)
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(insert(TermsVersion.__table__).values(
        version=name, rule_set_version=rule_set_version, conditions=conditions.as_dict(),
    ).on_conflict_do_nothing(index_elements=["version"]))
    return name


def resolve(session: Session | Connection, name: str,
            settings: Settings) -> tuple[int, Conditions]:
    """The rule set version and conditions of a terms version: a recorded one, or the one
    in force now under an existing rule set (shown by offers before its first sale)."""
    row = session.execute(select(TermsVersion.rule_set_version, TermsVersion.conditions)
                          .where(TermsVersion.version == name)).first()
    if row is not None:
        return row[0], Conditions.from_dict(row[1])
    number, _, _digest = name.partition("-")
    if number.isdigit() and len(number) < 10:
        try:
            get_version(session, int(number))
        except NotFound:
            pass
        else:
            if current_label(int(number), settings) == name:
                return int(number), conditions_of(settings)
    raise NotFound(f"no terms version {name!r}", code="unknown_terms_version")


def path(name: str, category: str | None = None, plan_code: str | None = None) -> str:
    """The public page of a version's terms (of one plan when given)."""
    return f"/terms/{name}" + (f"/{category}/{plan_code}" if category and plan_code else "")


def url(settings: Settings, name: str, category: str | None = None,
        plan_code: str | None = None) -> str:
    """The absolute address of ``path`` (mails, PDFs and Stripe's page link to it)."""
    return settings.base_url.rstrip("/") + path(name, category, plan_code)


# --- the text ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Provider:
    """Who provides the plans: the store's legal name, address and contact."""

    legal_name: str
    address: str
    contact: str


def provider_of(settings: Settings) -> Provider:
    """The provider as configured (WARRANTY_STORE_LEGAL_NAME, _ADDRESS, _CONTACT)."""
    return Provider(settings.store_legal_name, settings.store_address, settings.store_contact)


@dataclass
class Section:
    """A heading and its paragraphs."""

    heading: str
    paragraphs: list[str] = field(default_factory=list)


@dataclass
class PlanTerms:
    """A plan's terms in one language."""

    version: str
    lang: str
    title: str
    plan_name: str
    sections: list[Section]


def plan_name(lang: str, coverage: str, term_months: int) -> str:
    """``Breakdown, 36 months`` / ``故障保証 36か月``."""
    return i18n.t(lang, "terms.plan_name", coverage=i18n.t(lang, f"coverage.{coverage}"),
                  months=term_months)


def covers(lang: str, coverage: str) -> list[str]:
    """What the coverage covers."""
    return [i18n.t(lang, key) for key in COVERS.get(coverage, ())]


def cap_lines(lang: str, schedule: list, term_months: int) -> list[str]:
    """The cap of each coverage year the term has, as a percentage of the purchase price."""
    years = -(-term_months // 12)
    values = [str(pct) for pct in schedule] or ["100"]
    return [i18n.t(lang, "terms.cap_year", year=year,
                   percent=percent_text(values[min(year, len(values)) - 1]))
            for year in range(1, years + 1)]


def percent_text(value: str) -> str:
    """``80`` for ``80``, ``80.0`` or ``80.00``; ``72.5`` kept."""
    text = str(value)
    return text.rstrip("0").rstrip(".") if "." in text else text


def cancellation_text(lang: str, conditions: Conditions) -> list[str]:
    """The cancellation conditions, as the terms, the confirmation items and the
    certificate state them."""
    fee = format_amount(conditions.cancellation_fee, conditions.currency)
    return [i18n.t(lang, "terms.cancel.free_look", days=conditions.free_look_days),
            i18n.t(lang, "terms.cancel.pro_rata", fee=fee),
            i18n.t(lang, "terms.cancel.returned")]


def settlement_text(lang: str, conditions: Conditions) -> str:
    """How an approved claim is settled: repair or replacement only, or also in cash."""
    key = "terms.settle.repair_only" if conditions.repair_only else "terms.settle.any"
    return i18n.t(lang, key)


def how_to_claim(lang: str, conditions: Conditions, claims_url: str) -> list[str]:
    """Where and how to file a claim, and until when."""
    return [i18n.t(lang, "terms.claim.how", url=claims_url),
            i18n.t(lang, "terms.claim.window", days=conditions.claim_filing_days)]


def exclusions(lang: str, rules: RuleDocument, category: str, coverage: str) -> list[str]:
    """The category's exclusions, else the rule set's, else the built-in ones."""
    for source in (_category_terms(rules, category), rules.terms):
        if source is not None and source.exclusions.get(lang):
            return list(source.exclusions[lang])
    keys = DEFAULT_EXCLUSIONS_ACCIDENT if coverage == "accident" else DEFAULT_EXCLUSIONS
    return [i18n.t(lang, key) for key in keys]


def _category_terms(rules: RuleDocument, category: str):
    """The category's own terms section, if any."""
    cat: CategoryRules | None = rules.categories.get(category)
    return cat.terms if cat is not None else None


def clauses(lang: str, rules: RuleDocument, category: str, plan_code: str) -> list[str]:
    """Clauses the rule set adds: its own, the category's, the plan's."""
    cat_terms = _category_terms(rules, category)
    found = list(rules.terms.clauses.get(lang, [])) if rules.terms else []
    if cat_terms is not None:
        found += cat_terms.clauses.get(lang, [])
        found += cat_terms.plans.get(plan_code, {}).get(lang, [])
    return found


def plan_terms(*, rules: RuleDocument, version: str, category: str, plan_code: str,
               conditions: Conditions, provider: Provider, lang: str,
               claims_url: str) -> PlanTerms:
    """The whole terms of one plan of a version, in ``lang``; NotFound for a plan the rule
    set does not have."""
    cat = rules.categories.get(category)
    plan = next((p for p in cat.plans if p.code == plan_code), None) if cat else None
    if plan is None:
        raise NotFound(f"terms version {version} has no plan {category}/{plan_code}",
                       code="unknown_plan")
    t = i18n.t
    dash = "—"
    sections = [
        Section(t(lang, "terms.h.provider"), [
            t(lang, "terms.provider.name", name=provider.legal_name or dash),
            t(lang, "terms.provider.address", address=provider.address or dash),
            t(lang, "terms.provider.contact", contact=provider.contact or dash),
            t(lang, "terms.provider.nature")]),
        Section(t(lang, "terms.h.plan"), [
            t(lang, "terms.plan.what", name=plan_name(lang, plan.coverage, plan.term_months),
              category=category),
            t(lang, "terms.plan.term", months=plan.term_months)]),
        Section(t(lang, "terms.h.covers"), covers(lang, plan.coverage)),
        Section(t(lang, "terms.h.start"), [t(lang, "terms.start.breakdown")]
                + ([t(lang, "terms.start.accident")] if plan.coverage == "accident" else [])
                + [t(lang, "terms.start.waiting", days=WAITING_PERIOD_DAYS)]),
        Section(t(lang, "terms.h.limits"), [
            t(lang, "terms.deductible",
              amount=format_amount(cat.deductible, rules.currency))]
                + cap_lines(lang, cat.offer_liability_schedule, plan.term_months)
                + [t(lang, "terms.cap_rule")]),
        Section(t(lang, "terms.h.settlement"), [settlement_text(lang, conditions)]),
        Section(t(lang, "terms.h.exclusions"),
                exclusions(lang, rules, category, plan.coverage)),
        Section(t(lang, "terms.h.claims"), how_to_claim(lang, conditions, claims_url)),
        Section(t(lang, "terms.h.cancellation"), cancellation_text(lang, conditions)),
        Section(t(lang, "terms.h.transfer"), [t(lang, "terms.transfer")]),
    ]
    extra = clauses(lang, rules, category, plan_code)
    if extra:
        sections.append(Section(t(lang, "terms.h.clauses"), extra))
    sections.append(Section(t(lang, "terms.h.version"),
                            [t(lang, "terms.version", version=version)]))
    return PlanTerms(version=version, lang=lang, title=t(lang, "terms.title"),
                     plan_name=plan_name(lang, plan.coverage, plan.term_months),
                     sections=sections)


def version_plans(rules: RuleDocument) -> list[tuple[str, str, str, int]]:
    """(category, plan code, coverage, term months) of every plan of a rule set."""
    return [(name, plan.code, plan.coverage, plan.term_months)
            for name, cat in sorted(rules.categories.items()) for plan in cat.plans]


# --- the final-confirmation items (shown wherever a plan is chosen, and on the payment page)


@dataclass(frozen=True)
class Confirmation:
    """What the shopper must see before buying a plan: its price with the tax, its term,
    when cover starts, the cancellation conditions, and the terms (version and address)."""

    plan_code: str
    coverage: str
    term_months: int
    currency: str
    price_with_tax: int  # minor units, one plan, the tax included
    tax: int  # minor units, the tax in price_with_tax
    term_start: str
    term_end: str
    breakdown_cover_start: str
    accident_cover_start: str | None
    waiting_until: str | None
    free_look_days: int
    cancellation_fee: int  # minor units
    repair_only: bool
    terms_version: str
    terms_url: str

    def items(self, lang: str) -> list[str]:
        """The items as sentences in ``lang``."""
        t = i18n.t
        price = format_amount(self.price_with_tax, self.currency)
        lines = [plan_name(lang, self.coverage, self.term_months),
                 t(lang, "confirm.price_tax", amount=price,
                   tax=format_amount(self.tax, self.currency)) if self.tax else
                 t(lang, "confirm.price", amount=price),
                 t(lang, "confirm.term", start=self.term_start, end=self.term_end,
                   months=self.term_months),
                 t(lang, "confirm.breakdown_start", date=self.breakdown_cover_start)]
        if self.accident_cover_start:
            lines.append(t(lang, "confirm.accident_start", date=self.accident_cover_start))
        if self.waiting_until:
            lines.append(t(lang, "confirm.waiting", date=self.waiting_until))
        conditions = Conditions(currency=self.currency, free_look_days=self.free_look_days,
                                cancellation_fee=self.cancellation_fee,
                                repair_only=self.repair_only)
        lines.append(t(lang, "confirm.cancellation",
                       text=" ".join(cancellation_text(lang, conditions)[:2])))
        if self.repair_only:
            lines.append(settlement_text(lang, conditions))
        lines.append(f"{t(lang, 'terms.this_version', version=self.terms_version)}: "
                     f"{self.terms_url}")
        return lines

    def as_dict(self, lang: str | None = None) -> dict:
        """The JSON answers' shape (with the sentences when a language is given)."""
        data = asdict(self)
        if lang is not None:
            data["items"] = self.items(lang)
        return data


def confirm_plan(*, settings: Settings, rule_set_version: int, category: str, plan_code: str,
                 coverage: str, term_months: int, unit_price: int, dates) -> Confirmation:
    """The confirmation items of one plan at ``unit_price`` (as the cart prices it: tax
    included, or the tax added for tax-exclusive stores) with its coverage ``dates``
    (warranty.coverage.dates.CoverageDates)."""
    policy = settings.tax
    tax = policy.tax_of(unit_price)
    conditions = conditions_of(settings)
    version = label(rule_set_version, conditions)
    return Confirmation(
        plan_code=plan_code, coverage=coverage, term_months=term_months,
        currency=settings.currency,
        price_with_tax=unit_price + tax if policy.exclusive else unit_price, tax=tax,
        term_start=dates.purchase_date.isoformat(), term_end=dates.term_end.isoformat(),
        breakdown_cover_start=dates.breakdown_start.isoformat(),
        accident_cover_start=dates.accident_start.isoformat() if dates.accident_start else None,
        waiting_until=dates.waiting_until.isoformat() if dates.waiting_until else None,
        free_look_days=conditions.free_look_days,
        cancellation_fee=conditions.cancellation_fee, repair_only=conditions.repair_only,
        terms_version=version, terms_url=url(settings, version, category, plan_code))


def confirmation_notice(lang: str, items: list[Confirmation]) -> list[str]:
    """The cancellation conditions of the plans being bought, how claims are settled when
    that is repair or replacement only, and each plan's terms (for the payment page)."""
    first = items[0]
    conditions = Conditions(currency=first.currency, free_look_days=first.free_look_days,
                            cancellation_fee=first.cancellation_fee,
                            repair_only=first.repair_only)
    lines = [i18n.t(lang, "confirm.cancellation",
                    text=" ".join(cancellation_text(lang, conditions)[:2]))]
    if first.repair_only:
        lines.append(settlement_text(lang, conditions))
    seen = set()
    for item in items:
        if item.terms_url not in seen:
            seen.add(item.terms_url)
            lines.append(f"{i18n.t(lang, 'terms.this_version', version=item.terms_version)}: "
                         f"{item.terms_url}")
    return lines


def add_offer_terms(settings: Settings, offers: list[dict], *, rule_set_version: int | None,
                    category: str | None) -> dict:
    """Give each offer (as the offers API shapes it) its final-confirmation figures: the
    price with the tax, the tax, the terms version and address; return the conditions all
    of them are sold under."""
    version = current_label(rule_set_version, settings) if rule_set_version else None
    policy = settings.tax
    for offer in offers:
        tax = policy.tax_of(offer["price"])
        offer["price_with_tax"] = offer["price"] + tax if policy.exclusive else offer["price"]
        offer["tax"] = tax
        offer["terms_version"] = version
        offer["terms_url"] = url(settings, version, category, offer["plan_code"])
    return offer_conditions(settings, version)


def offer_conditions(settings: Settings, version: str | None) -> dict:
    """The conditions offers are sold under now (the offers answers' ``terms``)."""
    policy = settings.tax
    return {"version": version, "free_look_days": settings.free_look_days,
            "cancellation_fee": settings.cancellation_fee, "repair_only": settings.repair_only,
            "tax_mode": policy.mode, "tax_percent": policy.percent}


def offer_confirmation(settings: Settings, offer: dict, *,
                       waiting_until: str | None = None) -> Confirmation:
    """The confirmation items of an offer as ``add_offer_terms`` completed it (a plan page
    that renders offers on the server)."""
    conditions = conditions_of(settings)
    return Confirmation(
        plan_code=offer["plan_code"], coverage=offer["coverage"],
        term_months=offer["term_months"], currency=offer["currency"],
        price_with_tax=offer["price_with_tax"], tax=offer["tax"],
        term_start=offer["term_start"], term_end=offer["term_end"],
        breakdown_cover_start=offer["breakdown_cover_start"],
        accident_cover_start=offer["accident_cover_start"], waiting_until=waiting_until,
        free_look_days=conditions.free_look_days,
        cancellation_fee=conditions.cancellation_fee, repair_only=conditions.repair_only,
        terms_version=offer["terms_version"], terms_url=offer["terms_url"])
