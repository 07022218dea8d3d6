"""Small factories with explicit amounts for arranging tests."""

from __future__ import annotations

from sqlmodel import Session

from warranty.catalog import services as catalog
from warranty.experiment import arms
from warranty.pricing import prices
from warranty.pricing import rules as pricing_rules


def rules_doc(currency: str = "jpy", **category_overrides) -> dict:
    """A small rule document with known bands: [1000, 50000) fixed, [50000, 300000) rate."""
    electronics = {
        "deductible": 0,
        "liability_schedule": [100, 100, 80],
        "plans": [{"coverage": "standard", "term_months": 36},
                  {"coverage": "accident", "term_months": 36}],
        "bands": [
            {"min": 1000, "max": 50000,
             "prices": {"standard-36": {"fixed": 1980}, "accident-36": {"fixed": 2980}}},
            {"min": 50000, "max": 300000,
             "prices": {"standard-36": {"rate": "0.05", "floor": 2480},
                        "accident-36": {"rate": "0.083", "floor": 3980}}},
        ],
    }
    electronics.update(category_overrides)
    return {"currency": currency, "category_map": {"tv": "electronics"},
            "categories": {"electronics": electronics}}


def load_rules(session: Session, document: dict | None = None, currency: str = "jpy") -> int:
    """Store a rule document as a new version and commit; returns the version."""
    row = pricing_rules.save_rule_set(session=session,
                                document=pricing_rules.parse_document(
                                    document or rules_doc(currency)),
                                store_currency=currency, created_by="test")
    session.commit()
    return row.version


def add_product(session: Session, sku: str = "TV-1", price: int = 120000,
                category: str = "tv", months: int = 12, currency: str = "jpy",
                title: str = "Test TV") -> None:
    """Upsert one product and commit."""
    catalog.upsert_products(session=session, currency=currency, products=[
        catalog.ProductIn(sku=sku, title=title, category=category, price=price,
                          manufacturer_warranty_months=months)])
    session.commit()


def paid_order(session: Session, *, email: str = "buyer@example.com", sku: str = "TV-1",
               product_price: int = 120000, quantity: int = 1, plan_quantity: int = 1,
               plan_code: str = "standard-36", purchase_date=None, currency: str = "jpy",
               payment_intent_id: str | None = None, manufacturer_months: int = 12,
               order_ref: str = "A-1001", plan_sold_on=None, tax=None):
    """A paid order with one product line and one plan line, and its contracts (committed).

    Arranges state directly, without checkout: for tests of what happens after payment.
    Pass ``payment_intent_id`` of a real PaymentIntent on the stand-in when the test refunds,
    and ``plan_sold_on`` for a plan sold after the product (post-purchase: a waiting period,
    and a span from that day to the term end).
    """
    from datetime import date

    from sqlmodel import select

    from warranty.contracts import lifecycle as contracts
    from warranty.core.tax import TaxPolicy, default_rate
    from warranty.orders import tax as order_tax
    from warranty.orders.models import Order, OrderLine
    from warranty.periods import booking as periods
    from warranty.pricing import rules as pricing_rules
    from warranty.pricing.models import RuleSet

    version = session.exec(select(RuleSet.version).order_by(RuleSet.version.desc())).first()
    if version is None:
        version = load_rules(session, currency=currency)
    rules = pricing_rules.get_version(session, version)
    category = rules.warranty_category("tv")
    plans = {p.spec.code: p for p in prices.price_plans(rules, category, product_price,
                                                         manufacturer_months)}
    plan_price = plans[plan_code].price
    purchase_date = purchase_date or date(2026, 1, 10)
    order = Order(store_order_ref=order_ref, customer_email=email, currency=currency,
                  total_amount=0, channel="payment_intent", status="paid",
                  purchase_date=purchase_date,
                  booked_on=periods.booking_date(session, purchase_date),
                  stripe_payment_intent_id=payment_intent_id)
    session.add(order)
    session.flush()
    product = OrderLine(order_id=order.id, line_no=1, kind="product", sku=sku, title="Test TV",
                        quantity=quantity, unit_price=product_price,
                        amount=product_price * quantity,
                        manufacturer_warranty_months=manufacturer_months,
                        warranty_category=category)
    plan = OrderLine(order_id=order.id, line_no=2, kind="plan", sku=sku, title=plan_code,
                     quantity=plan_quantity, unit_price=plan_price,
                     amount=plan_price * plan_quantity, warranty_category=category,
                     plan_code=plan_code, rule_set_version=version)
    # Taxed as checkout taxes them: the store's default setting (JPY: 10% included).
    order_tax.apply([product, plan], tax or TaxPolicy(rate=default_rate(currency),
                                                        currency=currency))
    order.total_amount = product.gross + plan.gross
    session.add(product)
    session.flush()
    plan.covers_line_id = product.id
    session.add(plan)
    session.flush()
    created = contracts.create_contracts(session=session, order=order,
                                         purchase_date=purchase_date, plan_sold_on=plan_sold_on)
    session.commit()
    return order, created


def stripe_paid_order(session: Session, **kwargs):
    """``paid_order`` whose payment is a real, succeeded PaymentIntent on the Stripe stand-in.

    Needs the ``stripe_standin`` fixture (the SDK's global config points at it).
    """
    import stripe

    order, created = paid_order(session, **kwargs)
    intent = stripe.PaymentIntent.create(amount=order.total_amount, currency=order.currency,
                                         payment_method="pm_card_visa", confirm=True,
                                         metadata={"order": order.public_id})
    order.stripe_payment_intent_id = intent.id
    session.add(order)
    session.commit()
    return order, created


STAFF_PASSWORD = "correct horse battery staple"


def add_staff(session: Session, email: str = "alice@store.example", role: str = "staff",
              password: str = STAFF_PASSWORD):
    """A staff account (committed)."""
    from warranty.staff.accounts import create_staff

    user = create_staff(session=session, email=email, role=role, password=password)
    session.commit()
    return user


# The smallest files of each accepted kind, by their real signatures.
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 64 \
    + b"\xff\xd9"
PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00"
       b"\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7"
       b"\x35\x81\x84\x00\x00\x00\x00IEND\xaeB`\x82")
WEBP = (b"RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00/\x00\x00\x00\x10\x07\x10\x11"
        b"\x11\x88\x88\xfe\x07\x00")
HEIC = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 32
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
# A Windows executable: what a renamed .exe really starts with.
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 64


def signed_visitor(name: str, secret: str | None = None) -> str:
    """The visitor id the service would have issued for ``name`` (signed with the test
    secret): the same name gives the same id, and so the same arm."""
    from tests.conftest import SECRET

    nonce = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "_-") else "_"
                    for ch in name)[:22].ljust(22, "0")
    return arms.sign_visitor_id(secret or SECRET, nonce)
