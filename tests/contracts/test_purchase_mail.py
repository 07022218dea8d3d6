"""The purchase mail: each contract's caps for the coverage years its term has, no more."""

from sqlmodel import select

from tests.factories import load_rules, paid_order, rules_doc
from warranty.contracts.notices import notify_contracts_created
from warranty.notify.models import MailMessage
from warranty.orders.models import Order


def test_the_purchase_mail_lists_a_cap_for_each_year_of_the_term_only(db, settings):
    load_rules(db, rules_doc(liability_schedule=[100, 100, 80, 70, 60]))
    order, contracts = paid_order(db, product_price=120000)  # 36 months from 2026-01-10
    notify_contracts_created(session=db, settings=settings, order=db.get(Order, order.id),
                             contracts=contracts)
    db.commit()
    (mail,) = db.exec(select(MailMessage).where(MailMessage.kind == "purchase")).all()
    assert ("year 1 (2026-01-10 – 2027-01-09): 100% = ¥120,000 / "
            "1年目（2026-01-10 – 2027-01-09）：100% = ¥120,000") in mail.body
    assert "year 2 (2027-01-10 – 2028-01-09): 100% = ¥120,000" in mail.body
    assert "3年目（2028-01-10 – 2029-01-09）：80% = ¥96,000" in mail.body
    assert "year 4" not in mail.body and "70%" not in mail.body and "60%" not in mail.body
