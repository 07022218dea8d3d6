"""The public terms pages (ja/en): every version's terms, plan by plan, at a stable address
that offers, carts, the payment page, mails and certificates link to."""

from __future__ import annotations

from flask import Blueprint, render_template

from warranty.http.session import get_session
from warranty.http.web.pages import page_language, protect, settings
from warranty.pricing import rules as pricing_rules
from warranty.pricing import terms

bp = Blueprint("terms", __name__, url_prefix="/terms")
protect(bp)


def _version(version: str):
    """The rule document and conditions of a terms version (404 for an unknown one)."""
    db = get_session()
    rule_version, conditions = terms.resolve(db, version, settings())
    return pricing_rules.get_version(db, rule_version), conditions


@bp.get("/<version>")
def index(version: str):
    """The plans of one terms version, each linking to its terms."""
    rules, _conditions = _version(version)
    return render_template("terms/index.html", version=version,
                           plans=terms.version_plans(rules),
                           plan_name=terms.plan_name)


def plan_text(version: str, category: str, plan_code: str) -> terms.PlanTerms:
    """One plan's whole terms of a version, in the page's language (NotFound if unknown)."""
    rules, conditions = _version(version)
    current = settings()
    return terms.plan_terms(rules=rules, version=version, category=category,
                            plan_code=plan_code, conditions=conditions,
                            provider=terms.provider_of(current), lang=page_language(),
                            claims_url=current.base_url.rstrip("/") + "/my/plans")


@bp.get("/<version>/<category>/<plan_code>")
def plan(version: str, category: str, plan_code: str):
    """One plan's whole terms in the page's language."""
    text = plan_text(version, category, plan_code)
    response = render_template("terms/plan.html", terms=text, version=version,
                               category=category)
    # A version never changes: shared caches may keep it (the language is in the query).
    return response, 200, {"Cache-Control": "public, max-age=3600"}
