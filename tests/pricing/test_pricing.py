"""Rule validation, band edges, rounding and eligibility."""

import copy

import pytest

from tests.factories import rules_doc
from warranty.core.errors import InvalidRules
from warranty.pricing import prices as pricing_prices
from warranty.pricing import rules


def parse(doc):
    return rules.parse_document(doc)


def prices(doc, price, months=12, category="electronics"):
    return {p.spec.code: p.price
            for p in pricing_prices.price_plans(parse(doc), category, price, months)}


def test_band_edges_min_included_max_excluded():
    doc = rules_doc()
    assert prices(doc, 1000) == {"standard-36": 1980, "accident-36": 2980}
    assert prices(doc, 49999) == {"standard-36": 1980, "accident-36": 2980}
    # 50000 is the second band: 5% = 2500 but floor 2480 → 2500; 8.3% = 4150.
    assert prices(doc, 50000) == {"standard-36": 2500, "accident-36": 4150}
    assert prices(doc, 299999)["standard-36"] == 15000  # 14999.95 rounds up to ¥10
    with pytest.raises(pricing_prices.NoOffer) as below:
        prices(doc, 999)
    assert below.value.code == "price_outside_bands"
    with pytest.raises(pricing_prices.NoOffer) as above:
        prices(doc, 300000)
    assert above.value.code == "price_outside_bands"


def test_floor_applies_below_it():
    # 5% of 50001 = 2500.05 → ¥2510 (¥10 step); floor 2480 does not bind.
    assert prices(rules_doc(), 50001)["standard-36"] == 2510
    doc = rules_doc()
    doc["categories"]["electronics"]["bands"][1]["prices"]["standard-36"]["floor"] = 9000
    assert prices(doc, 50000)["standard-36"] == 9000


def test_rounding_per_currency():
    usd = rules_doc("usd")
    assert prices(usd, 50001)["standard-36"] == 2501  # 2500.05 cents → 2501
    kwd = rules_doc("kwd")
    assert prices(kwd, 50001)["standard-36"] == 2510  # three-decimal: step 10 (Stripe rule)
    step = rules_doc("usd")
    step["rounding_step"] = 100
    assert prices(step, 50001)["standard-36"] == 2600
    fixed = rules_doc()
    fixed["categories"]["electronics"]["bands"][0]["prices"]["standard-36"] = {"fixed": 1975}
    assert prices(fixed, 5000)["standard-36"] == 1980


def test_standard_plan_inside_manufacturer_warranty_is_not_offered():
    assert prices(rules_doc(), 5000, months=36) == {"accident-36": 2980}
    doc = rules_doc(plans=[{"coverage": "standard", "term_months": 36}])
    for band in doc["categories"]["electronics"]["bands"]:
        band["prices"].pop("accident-36")
    with pytest.raises(pricing_prices.NoOffer) as no:
        prices(doc, 5000, months=36)
    assert no.value.code == "nothing_past_manufacturer_warranty"


def test_unknown_category_has_no_rules():
    with pytest.raises(pricing_prices.NoOffer) as no:
        prices(rules_doc(), 5000, category="furniture")
    assert no.value.code == "no_rules_for_category"


def test_category_map():
    doc = parse(rules_doc())
    assert doc.warranty_category("tv") == "electronics"
    assert doc.warranty_category("Electronics") == "electronics"
    assert doc.warranty_category("cables") is None


def _broken(mutate):
    doc = copy.deepcopy(rules_doc())
    mutate(doc["categories"]["electronics"])
    return doc


@pytest.mark.parametrize(("mutate", "fragment"), [
    (lambda c: c["bands"][1].update(min=40000), "bands overlap"),
    (lambda c: c["bands"][1].update(min=60000), "gap between bands"),
    (lambda c: c["bands"][0].update(min=-1), "greater than or equal to 0"),
    (lambda c: c["bands"][0]["prices"].update({"standard-36": {"fixed": -5}}), "greater than"),
    (lambda c: c.update(deductible=-100), "greater than or equal to 0"),
    (lambda c: c["plans"].append({"coverage": "theft", "term_months": 12}), "'standard'"),
    (lambda c: c["plans"].append({"coverage": "standard", "term_months": 60}),
     "no band prices plan(s) ['standard-60']"),
    (lambda c: c["bands"][0]["prices"].update({"standard-99": {"fixed": 1}}), "unknown plan"),
    (lambda c: c["bands"][0]["prices"].update({"standard-36": {"fixed": 1, "rate": "0.1"}}),
     "either 'fixed' or 'rate'"),
    (lambda c: c["bands"][0].update(max=500), "must be greater than min"),
    (lambda c: c.update(liability_schedule=[100, 120]), "percentages from 0 to 100"),
    (lambda c: c.update(surprise=1), "Extra inputs are not permitted"),
])
def test_invalid_rules_are_refused_with_reason(mutate, fragment):
    with pytest.raises(InvalidRules) as err:
        parse(_broken(mutate))
    assert fragment in err.value.message
    assert err.value.details and all("at" in d for d in err.value.details)


def test_document_level_errors():
    with pytest.raises(InvalidRules):
        parse(["not", "a", "mapping"])
    with pytest.raises(InvalidRules, match="undefined categories"):
        parse({**rules_doc(), "category_map": {"tv": "televisions"}})
    with pytest.raises(InvalidRules, match="not a currency code"):
        parse({**rules_doc(), "currency": "yen!"})
    with pytest.raises(InvalidRules, match="not valid YAML"):
        rules.load_text("currency: [jpy")


def test_shipped_rule_files_are_valid_and_price_sensibly():
    jpy = rules.load_text(rules.builtin_rules("default-jpy"))
    assert jpy.currency == "jpy"
    expected = {"electronics", "appliances", "computers", "phones", "audio", "furniture",
                "outdoor", "eyewear", "car_accessories", "bicycles", "sports",
                "musical_instruments", "jewelry"}
    assert set(jpy.categories) == expected
    for name in expected:
        for price in (5000, 30000, 150000, 800000):
            for plan in pricing_prices.price_plans(jpy, name, price, 12):
                assert plan.price % 10 == 0
                years = plan.spec.term_months / 12
                # around 5% a year of the product price (breakdown), a bit more for accident
                assert 0.02 * years * price <= plan.price <= 0.2 * years * max(price, 7000)
    usd = rules.load_text(rules.builtin_rules("example-usd"))
    assert usd.currency == "usd"
