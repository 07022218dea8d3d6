"""Conversion, attach rates and NPS on a small known history, figures worked by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from tests.claims.helpers import file
from tests.factories import add_product, load_rules, paid_order
from warranty.claims.models import NpsAnswer
from warranty.experiment.models import VisitorEvent
from warranty.orders.models import Order

URL = "/api/v1/reports/{}?from=2026-03-01&to=2026-03-31"


def _visit(db, visitor, arm, when=datetime(2026, 3, 5, 3, 0, tzinfo=UTC)):
    db.add(VisitorEvent(visitor_id=visitor, arm=arm, type="exposure", occurred_at=when))


def _order(db, visitor, total, day=date(2026, 3, 10), status="paid"):
    db.add(Order(store_order_ref=f"R-{visitor}-{total}", customer_email=f"{visitor}@x.jp",
                 currency="jpy", total_amount=total, channel="checkout_session", status=status,
                 purchase_date=day, visitor_id=visitor))


@pytest.fixture
def experiment(db):
    """Treatment t1..t4, holdout h1..h2; t1, t2, t3 and h1 buy in March."""
    for visitor in ("t1", "t2", "t3", "t4"):
        _visit(db, visitor, "treatment")
    for visitor in ("h1", "h2"):
        _visit(db, visitor, "holdout")
    # 2026-02-28 15:30 UTC is already March 1st in Tokyo: counted. 2026-03-31 15:00 UTC is
    # April 1st in Tokyo: not counted (that visitor never appears).
    _visit(db, "h2", "holdout", datetime(2026, 2, 28, 15, 30, tzinfo=UTC))
    _visit(db, "late", "treatment", datetime(2026, 3, 31, 15, 0, tzinfo=UTC))
    _order(db, "t1", 10000)
    _order(db, "t2", 30000)
    _order(db, "t3", 20000)
    _order(db, "h1", 20000)
    _order(db, "t4", 50000, status="pending")  # never paid: not a conversion
    _order(db, "h2", 70000, day=date(2026, 4, 2))  # after the period
    db.commit()


def test_conversion_per_arm_with_confidence_intervals(client, staff_headers, experiment):
    body = client.get(URL.format("conversion"), headers=staff_headers).get_json()
    rows = {row["arm"]: row for row in body["rows"]}
    assert rows["treatment"] == {
        "arm": "treatment", "visitors": 4, "converting_visitors": 3, "conversion_rate": 0.75,
        "orders": 3, "revenue": 60000, "average_order_value": 20000,
        "revenue_per_visitor": 15000}
    assert rows["holdout"]["visitors"] == 2 and rows["holdout"]["conversion_rate"] == 0.5
    assert rows["holdout"]["revenue_per_visitor"] == 10000
    conv = body["tests"]["conversion_rate"]
    # diff 0.75 − 0.5 = 0.25; SE = √(.75·.25/4 + .5·.5/2) = √0.171875 = 0.414578;
    # CI = 0.25 ± 1.959964 × 0.414578 = (−0.562558, 1.062558).
    assert conv["difference"] == 0.25
    assert (conv["ci_low"], conv["ci_high"]) == (-0.562558, 1.062558)
    # pooled p = 4/6; SE0 = √(2/9 × (1/4 + 1/2)) = 0.408248; z = 0.612372; p = 0.540291.
    assert conv["p_value"] == 0.540291
    # lift 0.75/0.5 − 1 = 0.5; log-ratio SE = √(.25/3 + .5/1) = 0.763763;
    # CI = exp(ln 1.5 ± 1.959964 × 0.763763) − 1 = (−0.664281, 5.702042).
    assert conv["relative_lift"] == 0.5
    assert (conv["lift_ci_low"], conv["lift_ci_high"]) == (-0.664281, 5.702042)
    rpv = body["tests"]["revenue_per_visitor"]
    # treatment [10000, 30000, 20000, 0]: mean 15000, s² = 166,666,666.7;
    # holdout [20000, 0]: mean 10000, s² = 200,000,000; SE = √(s1²/4 + s2²/2) = 11902.38;
    # diff 5000, CI = 5000 ± 23328.24, p = erfc(0.420084/√2) = 0.674424.
    assert rpv["difference"] == 5000
    assert (rpv["ci_low"], rpv["ci_high"]) == (-18328.2375, 28328.2375)
    assert rpv["p_value"] == 0.674424


def test_conversion_csv_carries_the_tests(client, staff_headers, experiment):
    text = client.get(URL.format("conversion") + "&format=csv",
                      headers=staff_headers).get_data(as_text=True)
    assert "treatment − holdout: p_value" in text and "0.540291" in text


def test_attach_rates_by_placement_category_and_band(client, db, staff_headers):
    load_rules(db)
    add_product(db, sku="TV-1", price=120000)
    # Two TVs with one ¥6,000 plan, bought 2026-03-10; a cable with no plan.
    order, _ = paid_order(db, quantity=2, plan_quantity=1, purchase_date=date(2026, 3, 10))
    paid_order(db, sku="TV-1", quantity=1, plan_quantity=1, purchase_date=date(2026, 5, 1))
    body = client.get(URL.format("attach"), headers=staff_headers).get_json()
    rows = {(r["dimension"], r["key"]): r for r in body["rows"]}
    overall = rows[("all", "all")]
    # 1 plan unit / 2 TV units = 0.5; ¥6,000 / ¥240,000 = 0.025 (the May order is outside).
    assert (overall["product_units"], overall["plan_units"]) == (2, 1)
    assert (overall["attach_rate_units"], overall["attach_rate_revenue"]) == (0.5, 0.025)
    assert rows[("category", "electronics")]["attach_rate_units"] == 0.5
    assert rows[("price_band", "electronics 50000–300000")]["plan_revenue"] == 6000
    assert rows[("placement", "api")]["attach_rate_units"] == 0.5


def test_nps_by_claim_outcome(client, db, settings, staff_headers):
    _, contracts = paid_order(db, quantity=3, plan_quantity=3, plan_code="accident-36")
    answered = datetime(2026, 3, 20, 1, 0, tzinfo=UTC)
    outcomes = [("paid", "repair", 10), ("paid", "repair", 9), ("denied", None, 3)]
    for contract, (status, decision, score) in zip(contracts, outcomes, strict=True):
        claim = file(db, settings, contract, failure="accident", incident=date(2026, 2, 1))
        claim.status, claim.decision = status, decision
        db.add(claim)
        db.add(NpsAnswer(claim_id=claim.id, score=score, comment="", created_at=answered))
    db.commit()
    body = client.get(URL.format("nps"), headers=staff_headers).get_json()
    rows = {(r["status"], r["outcome"]): r for r in body["rows"]}
    assert rows[("paid", "repair")]["nps"] == 100.0  # 2 promoters of 2
    assert rows[("denied", "denied")]["nps"] == -100.0  # 1 detractor of 1
    # All: (2 promoters − 1 detractor) / 3 = 33.3 points.
    assert rows[("all", "all")]["nps"] == 33.3


def test_retention_per_holdout_arm(client, db, staff_headers):
    _visit(db, "t1", "treatment")
    _visit(db, "h1", "holdout")
    for visitor, email, day in (("t1", "a@x.jp", date(2026, 1, 5)),
                                ("t1", "a@x.jp", date(2026, 2, 1)),
                                ("h1", "b@x.jp", date(2026, 1, 10)),
                                (None, "c@x.jp", date(2026, 6, 1))):  # observation runs to June
        db.add(Order(store_order_ref=f"R-{email}-{day}", customer_email=email, currency="jpy",
                     total_amount=10000, channel="external", status="paid", purchase_date=day,
                     visitor_id=visitor))
    db.commit()
    body = client.get("/api/v1/reports/retention?from=2026-01-01&to=2026-03-31",
                      headers=staff_headers).get_json()
    rows = {(r["group"], r["cohort"]): r for r in body["rows"]}
    # a@ (treatment) came back 27 days later, inside 90 and in month 1; observed 147 days.
    treatment = rows[("treatment", "2026-01")]
    assert (treatment["customers"], treatment["orders"]) == (1, 2)
    assert treatment["repeat_90_rate"] == 1.0 and treatment["retention_m1"] == 1.0
    # b@ (holdout) did not come back within 90 days (observed 142 days).
    holdout = rows[("holdout", "2026-01")]
    assert holdout["repeat_90_rate"] == 0.0 and holdout["retention_m1"] == 0.0
    assert rows[("no_visitor", "all")]["customers"] == 0  # c@ starts after the period
    assert set(body["ltv"]) >= {"with_plan", "without_plan", "treatment", "holdout"}
