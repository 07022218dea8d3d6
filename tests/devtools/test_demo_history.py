"""The demo's history (two years): loaded once on an empty store, fast, with something in every
report, and the holdout as the embed makes it (no plans, fewer purchases)."""

from __future__ import annotations

import time
from datetime import date, timedelta

from sqlmodel import func, select

from devtools.demo_data import HISTORY_ORDERS, load_demo, load_history
from warranty.claims.models import Claim, NpsAnswer
from warranty.contracts.models import Contract
from warranty.experiment.arms import HOLDOUT, assign_arm
from warranty.experiment.models import VisitorEvent
from warranty.orders.models import Order, OrderLine

TODAY = date(2026, 12, 1)


def test_the_demo_starts_with_a_year_of_history_once(settings, db, client, staff_headers):
    load_demo(session=db, currency="jpy")
    db.commit()
    began = time.perf_counter()
    figures = load_history(settings.database_url, today=TODAY, log=lambda text: None)
    assert time.perf_counter() - began < 20  # the demo starts in seconds
    assert 0.9 * HISTORY_ORDERS < figures["rows_orders"] <= HISTORY_ORDERS
    orders = db.exec(select(func.count()).select_from(Order)).one()
    assert orders == figures["rows_orders"]
    first, last = db.exec(select(func.min(Order.purchase_date),
                                 func.max(Order.purchase_date))).one()
    assert first >= TODAY - timedelta(days=729) and last <= TODAY
    # Nothing after the last day: claims filed, NPS answered by then.
    assert db.exec(select(func.max(Claim.created_at))).one().date() <= TODAY
    assert db.exec(select(func.count()).select_from(NpsAnswer)).one() > 30
    assert db.exec(select(func.count()).select_from(Contract).where(
        Contract.status == "cancelled")).one() > 0
    # The holdout is offered no plans: none of its orders carries one.
    plan_orders = db.exec(select(Order.visitor_id).join(
        OrderLine, OrderLine.order_id == Order.id).where(OrderLine.kind == "plan")).all()
    assert plan_orders and all(
        assign_arm(v, salt=settings.experiment_salt, share=settings.holdout_share) != HOLDOUT
        for v in plan_orders)
    assert db.exec(select(func.count()).select_from(VisitorEvent)).one() > orders
    # Every report the dashboard draws has figures for the year.
    period = f"from={TODAY - timedelta(days=364)}&to={TODAY}"
    conversion = client.get(f"/api/v1/reports/conversion?{period}", headers=staff_headers).json
    arms = {r["arm"]: r for r in conversion["rows"]}
    share = arms["holdout"]["visitors"] / (arms["holdout"]["visitors"]
                                           + arms["treatment"]["visitors"])
    assert 0.07 < share < 0.13  # about 10% of the demo's visitors are in the holdout
    assert arms["holdout"]["conversion_rate"] < arms["treatment"]["conversion_rate"]
    for name in ("finance", "attach", "retention", "nps"):
        assert client.get(f"/api/v1/reports/{name}?{period}",
                          headers=staff_headers).status_code == 200
    # The year before last: customers observed a full year, so LTV has figures.
    earlier = f"from={TODAY - timedelta(days=729)}&to={TODAY - timedelta(days=365)}"
    ltv = client.get(f"/api/v1/reports/retention?{earlier}", headers=staff_headers).json["ltv"]
    assert ltv["with_plan"]["ltv"] > 0 and ltv["without_plan"]["ltv"] > 0
    # A second start finds orders and adds nothing.
    assert load_history(settings.database_url, today=TODAY) is None
    assert db.exec(select(func.count()).select_from(Order)).one() == orders
