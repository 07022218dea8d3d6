"""Consumption tax, worked by hand: the store's setting, the per-order rounding of the
Japanese invoice rule, the allocation to plan lines, refunds, and exclusive prices charged
through the Stripe stand-in (docs/domain/tax.md)."""

from __future__ import annotations

from decimal import Decimal

import pytest
import stripe
from pydantic import ValidationError
from sqlmodel import select

from devtools.settings import demo_settings
from tests.factories import add_product, paid_order, rules_doc
from tests.stripe_helpers import pay_hosted, wait_paid
from warranty.contracts import notices
from warranty.core import money
from warranty.core.tax import TaxPolicy, registration_problem
from warranty.http.app import create_app
from warranty.notify.models import MailMessage
from warranty.orders import tax as order_tax
from warranty.orders.models import OrderLine, Refund


def _plan(amount: int, quantity: int = 1) -> OrderLine:
    return OrderLine(line_no=1, kind="plan", sku="S", title="plan", quantity=quantity,
                     unit_price=amount // quantity, amount=amount, gross=0, net=0)


def test_a_9800_yen_inclusive_plan_carries_890_tax_and_8910_net():
    policy = demo_settings().tax  # JPY: inclusive, 10% unless set, rounded down
    assert (policy.mode, policy.rate, policy.rounding) == ("inclusive", Decimal("0.10"), "down")
    # 9,800 × 10 / 110 = 890.90… → ¥890 (down); net 9,800 − 890 = ¥8,910.
    assert policy.tax_of(9800) == 890
    line = _plan(9800)
    order_tax.apply([line], policy)
    assert (line.gross, line.tax, line.net) == (9800, 890, 8910)


def test_9_75_dollars_at_8_875_percent_exclusive_half_up_adds_87_cents():
    policy = demo_settings(currency="usd", tax_mode="exclusive", tax_rate="0.08875",
                           tax_rounding="half_up").tax
    # 975 × 0.08875 = 86.53125 cents → 87 (half up; down would give 86 as well, up 87).
    assert policy.tax_of(975) == 87
    line = _plan(975)
    order_tax.apply([line], policy)
    assert (line.gross, line.tax, line.net) == (1062, 87, 975)
    assert policy.percent == "8.875%"
    assert TaxPolicy(mode="exclusive", rate=Decimal("0.08875"), currency="usd",
                     rounding="down").tax_of(975) == 86


def test_an_order_of_several_plans_is_rounded_once_per_order_and_rate():
    policy = demo_settings().tax
    # Three plans ¥1,980, ¥2,980, ¥4,980 (sum ¥9,940). Per line, rounded down:
    # 180.0 → 180, 270.90… → 270, 452.72… → 452: ¥902. Once per order: 9,940 × 10 / 110 =
    # 903.63… → ¥903, allocated by the largest remainder: exact shares 180.0, 270.90…,
    # 452.72… floor to 180 + 270 + 452 = 902; the one yen left goes to the largest
    # remainder (0.90… of ¥2,980's 270.90…).
    lines = [_plan(1980), _plan(2980), _plan(4980)]
    order_tax.apply(lines, policy)
    assert [line.tax for line in lines] == [180, 271, 452]
    assert sum(line.tax for line in lines) == 903
    assert [line.net for line in lines] == [1800, 2709, 4528]
    assert sum(policy.tax_of(a) for a in (1980, 2980, 4980)) == 902  # not the rule


def test_a_kwd_exclusive_tax_is_charged_in_tens_of_fils():
    policy = demo_settings(currency="kwd", tax_mode="exclusive", tax_rate="0.05",
                           tax_rounding="half_up").tax
    # Plans 6.010 and 1.230 KWD: 7.240 × 5% = 0.362 → 0.360 (half up to 10 fils: 36.2
    # tens); allocated in tens: 6010/7240 × 36 = 29.88…, 1230/7240 × 36 = 6.11… → 29 + 6 = 35,
    # the ten left to the largest remainder (0.88…): 300 and 60.
    lines = [_plan(6010), _plan(1230)]
    order_tax.apply(lines, policy)
    assert [(line.gross, line.tax, line.net) for line in lines] == [(6310, 300, 6010),
                                                                     (1290, 60, 1230)]
    assert all(money.stripe_amount_problem(line.gross, "kwd") is None for line in lines)
    # Two units of a line share its tax in tens too, so each unit's full refund is chargeable.
    two = _plan(12020, quantity=2)
    order_tax.apply([two], policy)
    assert two.tax == 600  # 12.020 × 5% = 0.601 → 0.600
    assert order_tax.unit_shares(two, "kwd") == [(6310, 300), (6310, 300)]
    # Inclusive KWD: the tax is not charged, so it is worked out to the fils.
    inclusive = demo_settings(currency="kwd", tax_rate="0.05").tax
    assert inclusive.tax_of(6010) == 286  # 6010 × 5 / 105 = 286.19…


def test_a_partial_refund_reverses_tax_in_proportion():
    policy = demo_settings().tax
    # ¥9,800 with ¥890 tax, refunded ¥4,731: 890 × 4731 / 9800 = 429.65… → ¥429 (down).
    assert policy.refund_tax(line_tax=890, line_gross=9800, refund=4731, left=890) == 429
    half_up = demo_settings(tax_rounding="half_up").tax
    assert half_up.refund_tax(line_tax=890, line_gross=9800, refund=4731, left=890) == 430
    # Never more than what is left of the line's tax.
    assert policy.refund_tax(line_tax=890, line_gross=9800, refund=9800, left=100) == 100
    assert policy.refund_tax(line_tax=890, line_gross=9800, refund=0, left=890) == 0


@pytest.mark.parametrize(("total", "weights", "step", "shares"), [
    (10, [1, 1, 1], 1, [4, 3, 3]),
    (100, [1, 2, 3], 10, [20, 30, 50]),
    (7, [0, 0], 1, [4, 3]),
    (0, [5, 5], 1, [0, 0]),
])
def test_allocation_by_the_largest_remainder_sums_to_the_total(total, weights, step, shares):
    assert money.allocate(total, weights, step) == shares
    assert sum(shares) == total


def test_rounding_modes():
    half = money.Fraction(5, 2)
    assert [money.round_fraction(half, mode) for mode in money.ROUNDING_MODES] == [2, 3, 3, 2,
                                                                                    2]
    assert money.round_fraction(money.Fraction(7, 2), "half_even") == 4
    assert money.round_fraction(361, "half_up", 10) == 360
    assert money.round_fraction(365, "half_up", 10) == 370
    with pytest.raises(money.MoneyError):
        money.round_fraction(1, "sideways")


def test_the_tax_setting_is_validated_and_errors_name_it():
    for bad, name in ((dict(tax_rate="10%"), "tax_rate"), (dict(tax_rate="1.5"), "tax_rate"),
                      (dict(tax_rate="-0.1"), "tax_rate"), (dict(tax_mode="gross"), "tax_mode"),
                      (dict(tax_rounding="bankers"), "tax_rounding"),
                      (dict(tax_registration_number="T123"), "tax_registration_number"),
                      (dict(tax_registration_number="T1000012050002"),
                       "tax_registration_number")):
        with pytest.raises(ValidationError) as info:
            demo_settings(**bad)
        assert info.value.errors()[0]["loc"] == (name,)
    assert demo_settings(currency="usd").tax.rate == 0  # no default rate outside Japan
    assert demo_settings(tax_rate="0.08").tax.percent == "8%"


def test_registration_numbers_carry_the_corporate_number_check_digit():
    # The National Tax Agency's own corporate number, 7000012050002: the 12 digits after
    # the check digit, from the right, weighted 1, 2, 1, 2, …: 2 + 5 + 2 + 1×2 = 11;
    # 9 − 11 mod 9 = 7.
    assert registration_problem("T7000012050002") is None
    assert registration_problem("7000012050002") is not None  # the T is part of it
    assert registration_problem("T700001205000") is not None
    assert "check digit" in registration_problem("T8000012050002")


@pytest.fixture
def usd_store(mail_settings, stripe_standin):
    """A USD store with exclusive prices at 8.875%, talking to the emptied stand-in."""
    settings = mail_settings.model_copy(update={
        "currency": "usd", "tax_mode": "exclusive", "tax_rate": "0.08875",
        "tax_rounding": "half_up"})
    stripe_standin.reset()
    app = create_app(settings)
    yield settings, app.test_client()
    stripe_standin.reset()


def test_exclusive_prices_are_charged_with_their_tax_and_refunds_reverse_it(
        usd_store, db, stripe_standin, database_url):
    from tests.conftest import serve

    settings, client = usd_store
    admin = {"Authorization": f"Bearer {settings.api_token}"}
    assert client.post("/api/v1/rule-sets", json={"rules": rules_doc("usd")},
                       headers=admin).status_code == 201
    add_product(db, sku="TV-1", price=120000, currency="usd")
    key = {"X-Warranty-Key": settings.public_key}
    offers = client.get("/api/v1/offers?sku=TV-1", headers=key).json["offers"]
    plan = next(o for o in offers if o["plan_code"] == "standard-36")
    price = plan["price"]
    tax = money.round_fraction(money.Fraction(2 * price * 8875, 100000), "half_up")
    res = client.post("/api/v1/checkout/sessions", headers=key, json={
        "order_ref": "U-1", "customer_email": "a@example.com",
        "success_url": "https://shop.example/ok", "cancel_url": "https://shop.example/no",
        "lines": [{"type": "product", "line_id": "p", "sku": "TV-1", "quantity": 2,
                   "unit_price": 120000},
                  {"type": "plan", "for_line": "p", "quantity": 2,
                   "offer_token": plan["offer_token"]}]})
    assert res.status_code == 201, res.json
    assert res.json["total"] == 2 * 120000 + 2 * price + tax
    assert res.json["tax"] == {"mode": "exclusive", "rate": "0.08875", "percent": "8.875%",
                               "plans_gross": 2 * price + tax, "tax": tax,
                               "plans_net": 2 * price, "registration_number": None,
                               "source": "service"}
    items = stripe.checkout.Session.list_line_items(res.json["stripe_checkout_session_id"])
    assert [(i.price.unit_amount, i.quantity) for i in items.data] == [
        (120000, 2), (price, 2), (tax, 1)]
    with serve(client.application) as url:
        stripe_standin.register_webhook("warranty", f"{url}/stripe/webhook", "whsec_test")
        assert pay_hosted(res.json["checkout_url"]).status_code == 303
        order, contracts = wait_paid(database_url, res.json["order_id"], contracts=2)
    # The amount check held: Stripe charged the total with its tax, and the order is paid.
    intent = stripe.PaymentIntent.retrieve(order.stripe_payment_intent_id)
    assert intent.amount == order.total_amount == 240000 + 2 * price + tax
    line = db.exec(select(OrderLine).where(OrderLine.order_id == order.id,
                                           OrderLine.kind == "plan")).one()
    assert (line.gross, line.tax, line.net) == (2 * price + tax, tax, 2 * price)
    shares = money.allocate(tax, [1, 1])
    assert sorted((c.price, c.tax) for c in contracts) == sorted(
        (price + t, t) for t in shares)
    db.rollback()
    (mail,) = db.exec(select(MailMessage).where(MailMessage.kind == "purchase")).all()
    assert (f"Consumption tax 8.875% / 消費税 8.875%対象: "
            f"{money.format_amount(2 * price + tax, 'usd')}, tax / 消費税額: "
            f"{money.format_amount(tax, 'usd')}") in mail.body
    # A free-look cancellation refunds the whole price, tax included, and reverses the tax.
    contract = max(contracts, key=lambda c: c.tax)
    done = client.post(f"/api/v1/contracts/{contract.public_id}/cancel", headers=admin,
                       json={"amount": contract.price, "reason": "changed mind"})
    assert done.status_code == 200, done.json
    db.rollback()  # a new snapshot: the refund was written by the app's session
    refund = db.exec(select(Refund).where(Refund.contract_id == contract.id)).one()
    assert (refund.amount, refund.tax) == (contract.price, contract.tax)
    report = client.get(f"/api/v1/reports/finance?from={order.purchase_date}"
                        f"&to={order.purchase_date}", headers=admin).json["total"]
    assert (report["gross_sales"], report["sales_tax"]) == (
        sum(c.price for c in contracts), tax)
    assert (report["refunds"], report["refunds_tax"]) == (contract.price, contract.tax)
    for part, deferred in (("revenue", "deferred_revenue"), ("tax", "deferred_tax")):
        sold = report["sales_net"] if part == "revenue" else report["sales_tax"]
        back = report["refunds_net"] if part == "revenue" else report["refunds_tax"]
        assert sold - back == report[f"earned_{part}"] + report[deferred]


def test_a_registered_store_names_its_number_rate_and_tax_per_rate(db):
    settings = demo_settings(tax_registration_number="T7000012050002")
    order, (contract,) = paid_order(db)
    line = db.exec(select(OrderLine).where(OrderLine.order_id == order.id,
                                           OrderLine.kind == "plan")).one()
    assert line.tax == settings.tax.tax_of(line.gross) == contract.tax
    block = notices.tax_block(db, settings, order)
    assert block.splitlines() == [
        f"Plans / 保証プラン合計: {money.format_amount(line.gross, 'jpy')} (tax included / 税込)",
        f"Consumption tax 10% / 消費税 10%対象: {money.format_amount(line.gross, 'jpy')}, "
        f"tax / 消費税額: {money.format_amount(line.tax, 'jpy')}",
        "Registration number / 登録番号: T7000012050002"]
