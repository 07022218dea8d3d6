"""Terms versions (a rule set and the store's conditions), their texts, the rule sections."""

from __future__ import annotations

import hashlib
import json
from datetime import date

import pytest
from sqlmodel import select

from tests.factories import load_rules, paid_order, rules_doc
from warranty.core.errors import InvalidRules, NotFound
from warranty.coverage.dates import coverage_dates
from warranty.pricing import rules as pricing_rules
from warranty.pricing import terms
from warranty.pricing.models import TermsVersion

JPY = terms.Conditions(currency="jpy")


def test_a_version_names_its_rule_set_and_a_digest_of_its_conditions():
    canonical = json.dumps({"cancellation_fee": 0, "claim_filing_days": 90, "currency": "jpy",
                            "free_look_days": 30, "repair_only": False},
                           sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:6]
    assert terms.label(3, JPY) == f"3-{digest}"
    # Any condition the terms state makes another version; the same ones the same.
    others = {terms.label(3, terms.Conditions(currency="jpy", free_look_days=14)),
              terms.label(3, terms.Conditions(currency="jpy", cancellation_fee=500)),
              terms.label(3, terms.Conditions(currency="jpy", claim_filing_days=30)),
              terms.label(3, terms.Conditions(currency="jpy", repair_only=True)),
              terms.label(4, JPY)}
    assert len(others) == 5 and terms.label(3, JPY) not in others
    assert terms.label(3, terms.Conditions(currency="jpy")) == terms.label(3, JPY)


def test_the_version_in_force_follows_the_settings(settings):
    assert terms.current_label(2, settings) == terms.label(2, terms.Conditions(
        currency="jpy", claim_filing_days=settings.claim_filing_days_after_term))
    repair = settings.model_copy(update={"repair_only": True})
    assert terms.current_label(2, repair) != terms.current_label(2, settings)


def test_a_sale_records_its_version_once_and_the_contract_keeps_it(db, settings):
    _order, created = paid_order(db, quantity=2, plan_quantity=2,
                                 purchase_date=date(2026, 1, 10))
    version = created[0].rule_set_version
    assert {c.terms_version for c in created} == {terms.label(version, JPY)}
    rows = db.exec(select(TermsVersion)).all()
    assert [(r.version, r.rule_set_version, r.conditions) for r in rows] == [
        (terms.label(version, JPY), version, JPY.as_dict())]
    # Recording again (another sale under the same terms) adds nothing.
    terms.record(db, version, JPY)
    db.commit()
    assert len(db.exec(select(TermsVersion)).all()) == 1
    # A recorded version resolves to what it was sold under, whatever the settings say now.
    changed = settings.model_copy(update={"free_look_days": 7, "repair_only": True})
    assert terms.resolve(db, created[0].terms_version, changed) == (version, JPY)


def test_an_unrecorded_version_resolves_only_when_it_is_the_one_in_force(db, settings):
    version = load_rules(db)
    current = terms.current_label(version, settings)
    assert terms.resolve(db, current, settings) == (version, terms.conditions_of(settings))
    for unknown in (terms.label(version, JPY), f"{version + 1}-abcdef", "x", "9999999999-a"):
        with pytest.raises(NotFound) as raised:
            terms.resolve(db, unknown, settings)
        assert raised.value.code == "unknown_terms_version"


def test_the_plan_terms_state_the_rule_set_and_the_conditions(db):
    version = load_rules(db, rules_doc(deductible=3000, liability_schedule=[100, 80, 50]))
    rules = pricing_rules.get_version(db, version)
    conditions = terms.Conditions(currency="jpy", free_look_days=14, cancellation_fee=500,
                                  claim_filing_days=60)
    provider = terms.Provider("株式会社テスト", "東京都千代田区1-1", "support@shop.example")
    name = terms.label(version, conditions)
    en = terms.plan_terms(rules=rules, version=name, category="electronics",
                          plan_code="accident-36", conditions=conditions, provider=provider,
                          lang="en", claims_url="https://w.example/my/plans")
    text = "\n".join(p for s in en.sections for p in [s.heading, *s.paragraphs])
    for expected in ("Provider: 株式会社テスト", "Address: 東京都千代田区1-1",
                     "Contact: support@shop.example", "Breakdown and accidental damage, 36 months",
                     "Deductible per claim: ¥3,000",
                     "coverage year 1: 100% of the purchase price",
                     "coverage year 2: 80%", "coverage year 3: 50%",
                     "Accidental damage cover starts on the purchase date",
                     "30-day waiting period", "within 14 days", "a cancellation fee of ¥500",
                     "up to 60 days after the term ends", "https://w.example/my/plans",
                     "by repair, by replacement, or by reimbursing", f"version {name}"):
        assert expected in text, expected
    assert "coverage year 4" not in text  # a 36-month plan has three coverage years
    assert "Misuse" not in text  # accidental damage is covered by an accident plan
    ja = terms.plan_terms(rules=rules, version=name, category="electronics",
                          plan_code="standard-36", conditions=terms.Conditions(
                              currency="jpy", repair_only=True), provider=provider,
                          lang="ja", claims_url="https://w.example/my/plans")
    text = "\n".join(p for s in ja.sections for p in [s.heading, *s.paragraphs])
    for expected in ("提供者: 株式会社テスト", "故障保証 36か月",
                     "免責金額(1回の申請あたり): ¥3,000", "補償上限 2年目: 購入価格の80%",
                     "30日以内", "金銭による補償(現金でのお支払い)は", "誤った使用"):
        assert expected in text, expected
    with pytest.raises(NotFound):
        terms.plan_terms(rules=rules, version=name, category="electronics",
                         plan_code="standard-60", conditions=conditions, provider=provider,
                         lang="en", claims_url="")


def test_rule_sets_may_add_exclusions_and_clauses_per_category_and_plan(db):
    doc = rules_doc(terms={"exclusions": {"en": ["Screens burnt in."]},
                           "plans": {"accident-36": {"en": ["Two accident claims a year."],
                                                     "ja": ["事故の申請は年2回まで。"]}}})
    doc["terms"] = {"exclusions": {"en": ["Never shown: the category's win."]},
                    "clauses": {"en": ["Governed by the store's rules."]}}
    version = load_rules(db, doc)
    rules = pricing_rules.get_version(db, version)
    assert terms.exclusions("en", rules, "electronics", "standard") == ["Screens burnt in."]
    assert terms.clauses("en", rules, "electronics", "accident-36") == [
        "Governed by the store's rules.", "Two accident claims a year."]
    assert terms.clauses("en", rules, "electronics", "standard-36") == [
        "Governed by the store's rules."]
    # A language the rules leave out falls back to the built-in exclusions.
    assert len(terms.exclusions("ja", rules, "electronics", "standard")) == 6


def test_terms_sections_are_validated_with_their_place():
    with pytest.raises(InvalidRules) as raised:
        pricing_rules.parse_document(rules_doc(terms={"plans": {"standard-99": {"en": ["x"]}}}))
    assert "standard-99" in raised.value.message
    with pytest.raises(InvalidRules) as raised:
        pricing_rules.parse_document(rules_doc(terms={"clauses": {"fr": ["non"]}}))
    assert "categories.electronics.terms.clauses" in raised.value.message
    with pytest.raises(InvalidRules):
        pricing_rules.parse_document(rules_doc(terms={"exclusions": {"en": [" "]}}))


def test_the_builtin_rules_still_load_with_their_terms_section():
    doc = pricing_rules.load_text(pricing_rules.builtin_rules("default-jpy"))
    assert doc.terms is not None and doc.terms.clauses["ja"]
    pricing_rules.load_text(pricing_rules.builtin_rules("example-usd"))


def test_confirmation_items_of_a_tax_inclusive_yen_plan(settings):
    dates = coverage_dates(purchase_date=date(2026, 1, 10), term_months=36,
                           manufacturer_months=12, coverage="accident")
    item = terms.confirm_plan(settings=settings, rule_set_version=1, category="electronics",
                              plan_code="accident-36", coverage="accident", term_months=36,
                              unit_price=9800, dates=dates)
    # ¥9,800 tax included at 10%: ¥890 of tax (9,800 × 10/110, rounded down).
    assert (item.price_with_tax, item.tax) == (9800, 890)
    assert (item.term_start, item.term_end) == ("2026-01-10", "2029-01-09")
    assert (item.breakdown_cover_start, item.accident_cover_start) == ("2027-01-10",
                                                                       "2026-01-10")
    assert item.terms_url == (f"{settings.base_url}/terms/{item.terms_version}"
                              "/electronics/accident-36")
    en = item.items("en")
    assert en[1] == "Price (tax included): ¥9,800 (tax ¥890)"
    assert "Term: 2026-01-10 to 2029-01-09 (36 months)" in en
    assert any(line.startswith("Cancellation: Cancel within 30 days") for line in en)
    assert en[-1].endswith(item.terms_url)
    assert "価格(税込): ¥9,800(うち消費税 ¥890)" in item.items("ja")


def test_confirmation_items_of_a_tax_exclusive_dollar_plan(settings):
    usd = settings.model_copy(update={"currency": "usd", "tax_mode": "exclusive",
                                      "tax_rate": "0.08875", "tax_rounding": "half_up"})
    dates = coverage_dates(purchase_date=date(2026, 1, 10), term_months=24,
                           manufacturer_months=12, coverage="standard")
    item = terms.confirm_plan(settings=usd, rule_set_version=1, category="electronics",
                              plan_code="standard-24", coverage="standard", term_months=24,
                              unit_price=975, dates=dates)
    # $9.75 at 8.875% added, half up: $0.87 (86.53 cents) → $10.62 with the tax.
    assert (item.price_with_tax, item.tax) == (1062, 87)
    assert item.accident_cover_start is None
    assert item.items("en")[1] == "Price (tax included): $10.62 (tax $0.87)"


def test_first_sales_under_a_new_version_at_once_record_it_once(database_url, db):
    from tests.races import postgres_only, together
    from warranty.db.engine import Session, get_engine

    postgres_only(database_url)
    version = load_rules(db)

    def sell():
        # Each sale on its own connection, in its own transaction, inserting the version.
        with Session(get_engine(database_url)) as session:
            name = terms.record(session, version, JPY)
            session.commit()
            return name

    names = together(*[sell for _ in range(6)])
    assert set(names) == {terms.label(version, JPY)}
    assert len(db.exec(select(TermsVersion)).all()) == 1
