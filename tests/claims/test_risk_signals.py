"""Claim risk signals, worked out by hand in JPY and USD: judged at the claim's incident and
filing dates, shown to staff (page and API), never a decision."""

from datetime import UTC, date, datetime

import pytest

from tests.claims.helpers import file
from tests.factories import add_staff, load_rules, paid_order, rules_doc
from tests.http.api.test_claims_api import customer_token
from tests.http.web.pages import sign_in_staff
from warranty.claims import signals
from warranty.claims.models import Claim, Payout


def _codes(db, settings, claim) -> dict:
    """The claim's signals by code."""
    db.refresh(claim)
    return {s.code: s for s in signals.signals_for(db, claim, settings=settings)}


def _at(db, claim, when: datetime) -> Claim:
    """Set when the claim was filed (committed)."""
    claim.created_at = when
    db.add(claim)
    db.commit()
    return claim


def _paid(db, claim, contract, amount: int, when: datetime) -> None:
    """A payout recorded on ``claim`` at ``when`` (committed)."""
    db.add(Payout(claim_id=claim.id, contract_id=contract.id, amount=amount,
                  currency=contract.currency, method="bank_transfer", actor="staff:test",
                  booked_on=when.date(), created_at=when))
    db.commit()


# --- near the cap, in JPY and USD ------------------------------------------------------

def test_jpy_a_claim_close_to_the_cap_by_share_and_by_margin(db, settings):
    # Product ¥100,000, schedule [100, 100, 80]: the year-2 cap is ¥100,000; deductible ¥5,000.
    load_rules(db, rules_doc("jpy", deductible=5000))
    _, (contract,) = paid_order(db, product_price=100000)
    claim = file(db, settings, contract, incident=date(2027, 3, 1), estimate=97000)
    # 97,000 − 5,000 = 92,000 ≥ 90% of 100,000 = 90,000; 8,000 left.
    sig = _codes(db, settings, claim)["near_cap"]
    assert (sig.details["total"], sig.details["cap"], sig.details["left"]) == (92000, 100000,
                                                                              8000)
    assert (sig.details["by_share"], sig.details["by_margin"]) == (True, False)  # no margin set
    with_margin = settings.model_copy(update={"signal_cap_margin": "10000"})  # ¥10,000
    sig = _codes(db, with_margin, claim)["near_cap"]
    assert (sig.details["margin"], sig.details["by_margin"]) == (10000, True)  # 8,000 < 10,000
    assert "¥92,000" in sig.message and "¥100,000" in sig.message
    # ¥100 of margin is ¥100 in JPY, not ¥10,000: 8,000 left is more than it.
    small = settings.model_copy(update={"signal_cap_margin": "100", "signal_cap_percent": 95})
    assert "near_cap" not in _codes(db, small, claim)


def test_jpy_what_was_paid_before_the_filing_counts_and_what_came_after_does_not(db, settings):
    load_rules(db, rules_doc("jpy", deductible=5000))
    _, (contract,) = paid_order(db, product_price=100000)
    first = _at(db, file(db, settings, contract, incident=date(2027, 3, 1), estimate=10000),
                datetime(2027, 3, 2, tzinfo=UTC))
    _paid(db, first, contract, 50000, datetime(2027, 3, 10, tzinfo=UTC))
    second = _at(db, file(db, settings, contract, incident=date(2027, 4, 1), estimate=45000),
                 datetime(2027, 4, 2, tzinfo=UTC))
    # Paid before: ¥50,000; this one 45,000 − 5,000 = 40,000; 90,000 ≥ 90,000 (90%).
    sig = _codes(db, settings, second)["near_cap"]
    assert (sig.details["paid_before"], sig.details["claim_amount"], sig.details["total"]) == (
        50000, 40000, 90000)
    # The first claim was filed before the payout: judged then, 10,000 − 5,000 = 5,000 only.
    assert "near_cap" not in _codes(db, settings, first)


def test_usd_a_claim_close_to_the_cap_and_the_margin_in_dollars(db, settings):
    usd = settings.model_copy(update={"currency": "usd", "signal_cap_margin": "100"})
    # Product $1,000.00 = 100,000 cents; deductible $50.00 = 5,000 cents.
    load_rules(db, rules_doc("usd", deductible=5000), currency="usd")
    _, (contract,) = paid_order(db, product_price=100000, currency="usd")
    claim = file(db, usd, contract, incident=date(2027, 3, 1), estimate=96000)
    # $960.00 − $50.00 = $910.00 = 91,000 ≥ 90,000; $90.00 left < "100" = $100.00 = 10,000.
    sig = _codes(db, usd, claim)["near_cap"]
    assert (sig.details["total"], sig.details["left"], sig.details["margin"]) == (91000, 9000,
                                                                                 10000)
    assert (sig.details["by_share"], sig.details["by_margin"]) == (True, True)
    assert "$910.00" in sig.message and "$1,000.00" in sig.message
    # $900.00 estimate: 85,000, $150.00 left; the margin alone decides (share set to 100%).
    lower = _at(db, file(db, usd, contract, incident=date(2027, 3, 2), estimate=90000),
                datetime(2027, 3, 3, tzinfo=UTC))
    only_margin = usd.model_copy(update={"signal_cap_percent": 100})
    assert "near_cap" not in _codes(db, only_margin, lower)  # 15,000 left ≥ 10,000
    wider = only_margin.model_copy(update={"signal_cap_margin": "200"})  # $200.00 = 20,000
    assert _codes(db, wider, lower)["near_cap"].details["by_margin"] is True


def test_the_margin_is_scaled_by_the_currency_exponent(settings):
    margin = settings.model_copy(update={"signal_cap_margin": "100"})
    assert margin.cap_margin("jpy") == 100          # ¥100
    assert margin.cap_margin("usd") == 10000        # $100.00
    assert margin.cap_margin("kwd") == 100000       # KWD 100.000
    assert settings.cap_margin("usd") == 0          # unset: the share alone decides


def test_the_margin_setting_is_validated_against_the_store_currency():
    from pydantic import ValidationError

    from devtools.settings import demo_settings

    assert demo_settings(currency="usd", signal_cap_margin="99.50").cap_margin("usd") == 9950
    for currency, value in (("jpy", "100.5"), ("usd", "1.005"), ("usd", "-1"), ("usd", "x")):
        with pytest.raises(ValidationError, match="WARRANTY_SIGNAL_CAP_MARGIN"):
            demo_settings(currency=currency, signal_cap_margin=value)


# --- soon after purchase ---------------------------------------------------------------

def test_an_incident_soon_after_the_plan_was_sold(db, settings):
    _, (contract,) = paid_order(db, plan_code="accident-36", purchase_date=date(2026, 1, 10))
    early = file(db, settings, contract, incident=date(2026, 2, 8), failure="accident",
                 today=date(2026, 3, 1))
    later = file(db, settings, contract, incident=date(2026, 2, 9), failure="accident",
                 today=date(2026, 3, 1))
    # 2026-01-10 → 2026-02-08 is 29 days (< 30): a signal; 2026-02-09 is 30 days: none.
    assert _codes(db, settings, early)["soon_after_purchase"].details["days"] == 29
    assert "soon_after_purchase" not in _codes(db, settings, later)


def test_a_plan_bought_later_counts_from_its_own_sale(db, settings):
    _, (contract,) = paid_order(db, plan_code="accident-36", purchase_date=date(2026, 1, 10),
                                plan_sold_on=date(2026, 3, 1))
    claim = file(db, settings, contract, incident=date(2026, 3, 20), failure="accident",
                 today=date(2026, 4, 1))
    # 69 days after the product's purchase, but 19 days after the plan's sale.
    sig = _codes(db, settings, claim)["soon_after_purchase"]
    assert (sig.details["days"], sig.details["plan_sold_on"]) == (19, "2026-03-01")


# --- several claims in 90 days (store dates, Asia/Tokyo) --------------------------------

def _claims_on_plans(db, settings, when: list[datetime]) -> list[Claim]:
    """One claim per fresh plan of the same customer, filed at each time given."""
    claims = []
    for n, at in enumerate(when):
        _, (contract,) = paid_order(db, order_ref=f"F-{n}")
        claims.append(_at(db, file(db, settings, contract, incident=date(2027, 3, 1)), at))
    return claims


def test_three_claims_within_90_store_days(db, settings):
    # The third is filed 2027-08-29 23:59 in Tokyo: its 90 days (30 in June, 31 in July, 29
    # in August) start on 2027-06-01 there.
    first, second, third = _claims_on_plans(db, settings, [
        datetime(2027, 6, 1, 0, 0, tzinfo=UTC),       # 2027-06-01 09:00 JST: inside
        datetime(2027, 7, 15, 0, 0, tzinfo=UTC),
        datetime(2027, 8, 29, 14, 59, tzinfo=UTC)])
    sig = _codes(db, settings, third)["frequent_claims"]
    assert (sig.details["count"], sig.details["from"], sig.details["to"]) == (
        3, "2027-06-01", "2027-08-29")
    assert sig.details["claims"] == [c.public_id for c in (first, second, third)]
    # Judged as filed: the second saw two claims only (the third came later).
    assert "frequent_claims" not in _codes(db, settings, second)


def test_a_claim_on_the_91st_store_day_does_not_count(db, settings):
    _, _, third = _claims_on_plans(db, settings, [
        datetime(2027, 5, 31, 14, 59, tzinfo=UTC),    # 2027-05-31 23:59 JST: outside
        datetime(2027, 7, 15, 0, 0, tzinfo=UTC),
        datetime(2027, 8, 29, 14, 59, tzinfo=UTC)])
    assert "frequent_claims" not in _codes(db, settings, third)
    two = settings.model_copy(update={"signal_claims_count": 2})
    assert _codes(db, two, third)["frequent_claims"].details["count"] == 2


# --- the same serial ------------------------------------------------------------------

def test_the_same_serial_on_another_contract_or_claim(db, settings):
    _, (mine,) = paid_order(db, order_ref="S-1")
    _, (resold,) = paid_order(db, order_ref="S-2", email="second@example.com")
    _, (earlier,) = paid_order(db, order_ref="S-3", email="third@example.com")
    for contract, serial in ((mine, "SN-1"), (resold, "sn 1"), (earlier, "SN-1")):
        contract.serial_number = serial
        contract.serial_key = "sn1"
        db.add(contract)
    db.commit()
    old_claim = file(db, settings, earlier, incident=date(2027, 3, 1))
    earlier.serial_number, earlier.serial_key = "OTHER", "other"  # corrected after the claim
    db.add(earlier)
    db.commit()
    claim = file(db, settings, mine, incident=date(2027, 3, 2))
    sig = _codes(db, settings, claim)["same_serial"]
    assert sig.details["contracts"] == [resold.public_id]
    assert sig.details["claims"] == [old_claim.public_id]
    assert (sig.details["contract_count"], sig.details["claim_count"]) == (1, 1)


def test_no_serial_or_a_unique_one_gives_no_signal(db, settings):
    _, (contract,) = paid_order(db)
    claim = file(db, settings, contract, incident=date(2027, 3, 1))
    assert "same_serial" not in _codes(db, settings, claim)
    contract.serial_number, contract.serial_key = "SN-ONLY", "snonly"
    db.add(contract)
    db.commit()
    assert "same_serial" not in _codes(db, settings, claim)


# --- where staff see them ----------------------------------------------------------------

def test_staff_see_signals_on_the_claim_page_and_in_the_api_customers_do_not(
        client, db, settings, staff_headers, store_key):
    load_rules(db, rules_doc("jpy", deductible=5000))
    _, (contract,) = paid_order(db, product_price=100000, plan_code="accident-36")
    claim = file(db, settings, contract, incident=date(2026, 1, 20), failure="accident",
                 estimate=97000, today=date(2026, 2, 1))
    api = client.get(f"/api/v1/claims/{claim.public_id}", headers=staff_headers).json
    assert [s["code"] for s in api["risk_signals"]] == ["soon_after_purchase", "near_cap"]
    near = api["risk_signals"][1]["details"]
    assert (near["total"], near["cap"], near["currency"]) == (92000, 100000, "jpy")
    own = client.get(f"/api/v1/claims/{claim.public_id}",
                     headers={**store_key, "X-Customer-Token": customer_token(settings)})
    assert own.status_code == 200 and own.json["risk_signals"] is None
    assert claim.status != "denied"  # a signal never decides
    add_staff(db)
    sign_in_staff(client)
    page = client.get(f"/staff/claims/{claim.public_id}").get_data(as_text=True)
    assert "Risk signals" in page
    assert 'data-code="soon_after_purchase"' in page and 'data-code="near_cap"' in page
    assert "never a reason to deny by itself" in page
    assert "Paid before the filing (¥0) plus this claim (¥92,000 after the deductible)" in page
    ja = client.get(f"/staff/claims/{claim.public_id}?lang=ja").get_data(as_text=True)
    assert "リスクシグナル" in ja and "上限に近い" in ja and "購入直後の事故" in ja
    assert "事故日(2026-01-20)は、プランの販売日(2026-01-10)の 10 日後です。" in ja
