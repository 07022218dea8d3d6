"""The public terms pages: every version, plan by plan, in Japanese and English; the offers
link to the version in force, and a contract's version stays readable after a change."""

from __future__ import annotations

from datetime import date

from tests.factories import add_product, load_rules, paid_order
from warranty.http.app import create_app
from warranty.pricing import terms


def test_offers_link_to_the_terms_in_force_and_carry_the_confirmation_figures(
        client, db, settings, store_key):
    version = load_rules(db)
    add_product(db)
    answer = client.get("/api/v1/offers?sku=TV-1", headers=store_key).json
    label = terms.current_label(version, settings)
    assert answer["terms"] == {"version": label, "free_look_days": 30, "cancellation_fee": 0,
                               "repair_only": False, "tax_mode": "inclusive",
                               "tax_percent": "10%"}
    standard = next(o for o in answer["offers"] if o["plan_code"] == "standard-36")
    # ¥6,000 (5% of ¥120,000) tax included: ¥545 of it is tax (6,000 × 10/110, rounded down).
    assert (standard["price"], standard["price_with_tax"], standard["tax"]) == (6000, 6000, 545)
    assert standard["terms_version"] == label
    assert standard["terms_url"] == f"{settings.base_url}/terms/{label}/electronics/standard-36"
    page = client.get(f"/terms/{label}/electronics/standard-36?lang=en")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert f'data-terms-version="{label}"' in html
    for expected in ("Extended warranty terms", "Breakdown, 36 months", "Exclusions",
                     "Cancel within 30 days", "Liability cap, coverage year 3: 80%",
                     "How to claim"):
        assert expected in html, expected
    ja = client.get(f"/terms/{label}/electronics/standard-36?lang=ja").get_data(as_text=True)
    assert "延長保証 保証規約" in ja and "解約と返金" in ja and 'lang="ja"' in ja
    index = client.get(f"/terms/{label}?lang=en").get_data(as_text=True)
    assert f"/terms/{label}/electronics/accident-36" in index


def test_a_contracts_terms_stay_as_sold_after_the_settings_change(db, settings):
    _order, (contract,) = paid_order(db, purchase_date=date(2026, 1, 10))
    later = create_app(settings.model_copy(update={"free_look_days": 7, "repair_only": True,
                                                   "cancellation_fee": 1000}))
    html = later.test_client().get(
        f"/terms/{contract.terms_version}/electronics/standard-36?lang=en").get_data(
        as_text=True)
    assert "Cancel within 30 days" in html and "a cancellation fee of ¥0" in html
    assert "never by a cash payment" not in html
    # The version in force now is another one, with the new conditions.
    now = terms.current_label(contract.rule_set_version, later.config["SETTINGS"])
    assert now != contract.terms_version
    html = later.test_client().get(f"/terms/{now}/electronics/standard-36?lang=en").get_data(
        as_text=True)
    assert "Cancel within 7 days" in html and "never by a cash payment" in html


def test_unknown_versions_and_plans_are_readable_404s(client, db, settings):
    version = load_rules(db)
    label = terms.current_label(version, settings)
    for path in ("/terms/1-000000", f"/terms/{label}/electronics/standard-99",
                 f"/terms/{label}/garden/standard-36", "/terms/%3Cscript%3E"):
        page = client.get(path + "?lang=en", headers={"Accept": "text/html"})
        assert page.status_code == 404, path
        assert page.mimetype == "text/html" and "<script>" not in page.get_data(as_text=True)


def test_the_provider_is_escaped_on_the_page(db, settings):
    version = load_rules(db)
    store = settings.model_copy(update={"store_legal_name": "<script>alert(1)</script> K.K."})
    label = terms.current_label(version, store)
    html = create_app(store).test_client().get(
        f"/terms/{label}/electronics/standard-36?lang=en").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; K.K." in html
