"""Arrange known histories for report tests: orders, contracts and refunds with explicit
prices and dates (no checkout, no pricing: the report rules are what is under test)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from sqlmodel import Session, select

from tests.factories import load_rules
from warranty.claims.models import Claim, Payout
from warranty.contracts.models import Contract
from warranty.core.dates import store_today
from warranty.coverage.dates import coverage_dates
from warranty.orders.models import Order, OrderLine, Refund
from warranty.periods import booking as periods
from warranty.pricing import terms
from warranty.pricing.models import RuleSet

_counter = {"n": 0}


def _rule_version(session: Session, currency: str) -> int:
    """Any stored rule version (contracts need one), loading the test rules if none."""
    version = session.exec(select(RuleSet.version)).first()
    return version if version is not None else load_rules(session, currency=currency)


def plan_sale(session: Session, *, price: int, sold_on: date, term_months: int = 12,
              category: str = "electronics", currency: str = "jpy",
              purchase_date: date | None = None, email: str = "buyer@example.com",
              product_price: int = 50000, visitor_id: str | None = None,
              cancel: tuple[date, int] | None = None, refund_status: str = "succeeded",
              payment_intent_id: str | None = None, quantity: int = 1,
              booked_on: date | None = None,
              refund_booked_on: date | None = None, tax: int = 0,
              refund_tax: int = 0) -> list[Contract]:
    """A paid order for one product with ``quantity`` plans sold on ``sold_on``; committed.

    ``purchase_date`` earlier than ``sold_on`` makes it a post-purchase plan (the term still
    counts from the purchase date). ``cancel=(date, refund)`` cancels every plan with that
    refund each. Each fact is booked as the service books it (warranty.periods): on its
    date, or on the first open day if its month is closed; ``booked_on`` and
    ``refund_booked_on`` arrange other booking dates (a sale or refund recorded late).
    ``tax`` is the tax in each plan's price and ``refund_tax`` in each refund (none unless
    given: the report rules on prices as given).
    """
    _counter["n"] += 1
    version = _rule_version(session, currency)
    purchase_date = purchase_date or sold_on
    order = Order(store_order_ref=f"R-{_counter['n']}", customer_email=email, currency=currency,
                  total_amount=product_price * quantity + price * quantity,
                  channel="payment_intent", status="paid", purchase_date=sold_on,
                  booked_on=booked_on or periods.booking_date(session, sold_on),
                  visitor_id=visitor_id, stripe_payment_intent_id=payment_intent_id)
    session.add(order)
    session.flush()
    product = OrderLine(order_id=order.id, line_no=1, kind="product", sku="SKU-1",
                        title="Thing", quantity=quantity, unit_price=product_price,
                        amount=product_price * quantity, gross=product_price * quantity,
                        net=product_price * quantity, manufacturer_warranty_months=12,
                        warranty_category=category)
    session.add(product)
    session.flush()
    plan = OrderLine(order_id=order.id, line_no=2, kind="plan", sku="SKU-1",
                     title=f"standard-{term_months}", quantity=quantity, unit_price=price,
                     amount=price * quantity, gross=price * quantity, tax=tax * quantity,
                     net=(price - tax) * quantity, warranty_category=category,
                     plan_code=f"standard-{term_months}", rule_set_version=version,
                     covers_line_id=product.id, placement="cart")
    session.add(plan)
    session.flush()
    dates = coverage_dates(purchase_date=purchase_date, term_months=term_months,
                           manufacturer_months=12, coverage="standard",
                           plan_sold_on=sold_on if sold_on != purchase_date else None)
    contracts = []
    for unit in range(quantity):
        contract = Contract(order_id=order.id, plan_line_id=plan.id, product_line_id=product.id,
                            unit_index=unit, customer_email=email, sku="SKU-1",
                            product_title="Thing", product_price=product_price,
                            warranty_category=category, plan_code=f"standard-{term_months}",
                            coverage="standard", term_months=term_months, price=price, tax=tax,
                            currency=currency, rule_set_version=version,
                            terms_version=terms.record(session, version,
                                                       terms.Conditions(currency=currency)),
                            purchase_date=purchase_date, plan_sold_on=sold_on,
                            booked_on=booked_on or periods.booking_date(session, sold_on),
                            term_end=dates.term_end, breakdown_start=dates.breakdown_start,
                            waiting_until=dates.waiting_until)
        session.add(contract)
        session.flush()
        if cancel is not None:
            contract.status = "cancelled"
            session.add(Refund(contract_id=contract.id, order_id=order.id, amount=cancel[1],
                               tax=refund_tax,
                               currency=currency, cancel_date=cancel[0], status=refund_status,
                               booked_on=refund_booked_on
                               or periods.booking_date(session, cancel[0]),
                               idempotency_key=f"refund-{contract.public_id}",
                               stripe_refund_id=f"re_test_{contract.id}"
                               if refund_status == "succeeded" else None,
                               # Stripe made it on the cancel date (03:00 UTC: noon in Tokyo).
                               completed_at=datetime.combine(cancel[0], time(3), tzinfo=UTC)
                               if refund_status == "succeeded" else None))
        contracts.append(contract)
    session.commit()
    return contracts


def payout(session: Session, contract: Contract, *, amount: int, paid_at,
           reference: str = "BT-1", timezone: str = "Asia/Tokyo") -> Payout:
    """A paid claim on ``contract`` with its payout at ``paid_at`` (UTC), booked on its
    store-local day; committed."""
    claim = Claim(contract_id=contract.id, customer_email=contract.customer_email,
                  incident_date=paid_at.date(), failure_type="breakdown", description="broke",
                  coverage_year=1, status="paid", decision="reimburse", approved_amount=amount)
    session.add(claim)
    session.flush()
    day = store_today(timezone, paid_at)
    row = Payout(claim_id=claim.id, contract_id=contract.id, amount=amount,
                 currency=contract.currency, method="bank_transfer", reference=reference,
                 actor="test", created_at=paid_at,
                 booked_on=periods.booking_date(session, day))
    session.add(row)
    session.commit()
    return row
