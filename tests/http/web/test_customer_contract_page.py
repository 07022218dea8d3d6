"""The customer's contract page: everything about one plan, and cancelling it with the
refund shown first (as far as the store allows: WARRANTY_CUSTOMER_CANCELLATION)."""

from __future__ import annotations

import re
from datetime import date

import pytest
import requests
from sqlmodel import select

from tests.factories import load_rules, paid_order, rules_doc, stripe_paid_order
from tests.http.web.pages import CSRF, PURCHASE, csrf, link_token, sign_in_customer
from tests.races import postgres_only, served, together
from warranty.auth import links as magic_links
from warranty.changes.cancellation import quote_refund
from warranty.claims import filing
from warranty.contracts.models import Contract
from warranty.core.dates import store_today
from warranty.db.engine import Session, get_engine
from warranty.http.app import create_app
from warranty.orders.models import Refund

EN = {"Accept-Language": "en"}
JA = {"Accept-Language": "ja"}


def _status(contract) -> str:
    """The contract's status as committed now (read on a connection of its own)."""
    with Session(get_engine(_URL["url"])) as session:
        return session.get(Contract, contract.id).status


def _refunds(contract) -> list[Refund]:
    """The contract's refunds as committed now."""
    with Session(get_engine(_URL["url"])) as session:
        return list(session.exec(select(Refund).where(Refund.contract_id == contract.id)))


_URL: dict[str, str] = {}


@pytest.fixture(autouse=True)
def _remember_url(database_url):
    """Where the status helpers read."""
    _URL["url"] = database_url


def _page(client, contract, headers=EN) -> str:
    """The contract page's HTML (asserting it is served)."""
    response = client.get(f"/my/plans/{contract.public_id}", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_data(as_text=True)


def _text(html: str) -> str:
    """The page's text with tags and extra white space removed."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_the_contract_page_shows_the_plan_its_cover_caps_claims_and_terms(client, db,
                                                                         settings):
    load_rules(db, rules_doc(liability_schedule=[100, 100, 80, 70, 60], deductible=3000))
    _, (contract,) = paid_order(db, purchase_date=PURCHASE, product_price=120000)
    claim = filing.file_claim(session=db, settings=settings, contract=contract,
                              customer_email="buyer@example.com", incident_date=date(2025, 3, 1),
                              failure_type="breakdown", description="No picture",
                              estimated_amount=None, files=[], actor="customer:x",
                              today=date(2025, 3, 2))
    db.commit()
    sign_in_customer(client, settings)
    text = _text(_page(client, contract))
    assert contract.public_id in text
    assert "Price paid (tax included) ¥6,000" in text
    assert "Term 2024-01-10 – 2027-01-09" in text
    assert "Breakdown cover from 2025-01-10" in text
    assert "This plan does not cover accidental damage." in text
    assert "Waiting period None" in text
    assert "Deductible per claim ¥3,000" in text
    # One row per coverage year the 36-month term has (not the schedule's five).
    assert "Year 1 2024-01-10 – 2025-01-09 100% ¥120,000" in text
    assert "Year 2 2025-01-10 – 2026-01-09 100% ¥120,000" in text
    assert "Year 3 2026-01-10 – 2027-01-09 80% ¥96,000" in text
    assert "Year 4" not in text and "70%" not in text
    assert f"{claim.public_id} · Incident 2025-03-01 · In review" in text
    assert "Cancel within 30 days of the plan" in text  # the terms of its own version
    # Bought in 2024: past the free look, and the store's default lets customers cancel
    # only with a full refund.
    assert "More than 30 days have passed" in text
    assert "/cancel" not in _page(client, contract)
    ja = _text(_page(client, contract, JA))
    assert "3年目 2026-01-10 – 2027-01-09 80% ¥96,000" in ja
    assert "故障の補償開始日 2025-01-10" in ja and "免責金額（1回の申請ごと） ¥3,000" in ja


def test_the_contract_page_links_its_terms_version_and_certificates_and_takes_the_serial(
        client, db, settings):
    """The plan's own terms version, its certificate in both languages (a real PDF of this
    contract) and, before any claim, the serial number form."""
    from io import BytesIO

    from pypdf import PdfReader

    _, (contract,) = paid_order(db, purchase_date=PURCHASE, product_price=120000)
    db.commit()
    sign_in_customer(client, settings)
    html = _page(client, contract)
    assert f'action="/my/plans/{contract.public_id}/serial-number"' in html
    (terms_href,) = re.findall(r'class="terms-link" href="([^"]+)"', html)
    assert contract.terms_version and f"/terms/{contract.terms_version}/" in terms_href
    # The terms shown are those of the plan's own version.
    assert f"These terms are version {contract.terms_version}" in html or \
        f"version {contract.terms_version}" in _text(html)
    assert client.get(terms_href).status_code == 200
    hrefs = re.findall(r'class="certificate-link" href="([^"]+)"', html)
    assert len(hrefs) == 2 and {h.rsplit("lang=", 1)[1] for h in hrefs} == {"ja", "en"}
    for href in hrefs:
        pdf = client.get(href.replace("&amp;", "&"))
        assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
        text = "".join(page.extract_text() for page in PdfReader(BytesIO(pdf.data)).pages)
        assert contract.public_id in text
    ja = client.get(f"/my/plans/{contract.public_id}?lang=ja").get_data(as_text=True)
    assert "製造番号と書類" in ja and "Serial number and documents" in html


def test_a_plan_added_later_shows_its_waiting_period_and_accident_cover(client, db, settings):
    _, (contract,) = paid_order(db, purchase_date=PURCHASE, plan_code="accident-36",
                                plan_sold_on=date(2024, 2, 1))
    sign_in_customer(client, settings)
    text = _text(_page(client, contract))
    assert "Accidental damage cover from 2024-03-02" in text
    assert "Incidents before 2024-03-02 are not covered" in text


def test_the_contract_page_needs_the_mailed_link(client, db, settings):
    _, (contract,) = paid_order(db, purchase_date=PURCHASE, order_ref="A-1")
    token = csrf(client)
    client.post("/my/plans", data={"csrf_token": token, "email": "buyer@example.com",
                                   "order_ref": "A-1"})
    page = client.get(f"/my/plans/{contract.public_id}", headers=EN)
    assert page.status_code == 403 and 'action="/my/plans-link"' in page.get_data(as_text=True)
    assert client.get("/my/plans", headers=EN).status_code == 200


@pytest.fixture
def shop(stripe_app, db):
    """The Stripe-connected app's client and today's date in the store."""
    return stripe_app.test_client(), store_today(stripe_app.config["SETTINGS"].timezone)


def _cancel(client, contract, amount) -> object:
    """Post the cancellation form with the refund the customer saw."""
    token = csrf(client, f"/my/plans/{contract.public_id}/cancel")
    return client.post(f"/my/plans/{contract.public_id}/cancel", headers=EN,
                       data={"csrf_token": token, "amount": str(amount)})


def test_cancelling_in_the_free_look_shows_the_full_refund_first(shop, db, stripe_app):
    client, today = shop
    _, (contract,) = stripe_paid_order(db, purchase_date=today)
    sign_in_customer(client, stripe_app.config["SETTINGS"])
    assert f'href="/my/plans/{contract.public_id}/cancel"' in _page(client, contract)
    quote = client.get(f"/my/plans/{contract.public_id}/cancel", headers=EN)
    text = _text(quote.get_data(as_text=True))
    assert quote.status_code == 200 and "Refund ¥6,000" in text
    assert "Cancelled within 30 days of the purchase: the full price" in text
    assert _status(contract) == "active"  # showing changes nothing
    done = _cancel(client, contract, 6000)
    assert done.status_code == 303
    assert _status(contract) == "cancelled"
    (refund,) = _refunds(contract)
    assert (refund.amount, refund.status) == (6000, "succeeded")  # sent to Stripe at once
    page = _text(client.get(done.headers["Location"], headers=EN).get_data(as_text=True))
    assert "Your refund of ¥6,000 is on its way." in page and "Refunded" in page
    again = _cancel(client, contract, 6000)  # a second press: nothing more
    assert again.status_code == 409
    assert len(_refunds(contract)) == 1


def test_a_refund_that_moved_is_shown_again_and_nothing_is_cancelled(shop, db, stripe_app):
    client, today = shop
    _, (contract,) = stripe_paid_order(db, purchase_date=today)
    sign_in_customer(client, stripe_app.config["SETTINGS"])
    moved = _cancel(client, contract, 5999)
    assert moved.status_code == 409
    text = _text(moved.get_data(as_text=True))
    assert "The refund has changed since the page was shown." in text and "¥6,000" in text
    assert _status(contract) == "active"
    assert _refunds(contract) == []


def test_a_store_that_allows_any_time_cancels_pro_rata(stripe_settings, db):
    settings = stripe_settings.model_copy(update={"customer_cancellation": "any"})
    client = create_app(settings).test_client()
    today = store_today(settings.timezone)
    _, (contract,) = stripe_paid_order(db, purchase_date=date(today.year - 1, today.month, 1))
    expected = quote_refund(contract=contract, cancel_date=today, free_look_days=30)
    assert expected.rule == "pro_rata" and 0 < expected.amount < contract.price
    sign_in_customer(client, settings)
    quote = _text(client.get(f"/my/plans/{contract.public_id}/cancel",
                             headers=EN).get_data(as_text=True))
    assert f"{expected.unused_days} unused days of {expected.span_days}, pro rata" in quote
    assert _cancel(client, contract, expected.amount).status_code == 303
    assert [r.amount for r in _refunds(contract)] == [expected.amount]


def test_a_store_that_turns_it_off_offers_no_cancellation(stripe_settings, db):
    settings = stripe_settings.model_copy(update={"customer_cancellation": "off"})
    client = create_app(settings).test_client()
    _, (contract,) = stripe_paid_order(db, purchase_date=store_today(settings.timezone))
    sign_in_customer(client, settings)
    page = _page(client, contract)
    assert "/cancel" not in page and "contact the store&#39;s support" in page
    token = csrf(client)
    refused = client.post(f"/my/plans/{contract.public_id}/cancel", headers=EN,
                          data={"csrf_token": token, "amount": str(contract.price)})
    assert refused.status_code == 409
    assert _status(contract) == "active"


def test_an_open_claim_keeps_the_plan_until_it_is_settled(shop, db, stripe_app):
    client, today = shop
    settings = stripe_app.config["SETTINGS"]
    _, (contract,) = stripe_paid_order(db, purchase_date=today, plan_code="accident-36")
    filing.file_claim(session=db, settings=settings, contract=contract,
                      customer_email="buyer@example.com", incident_date=today,
                      failure_type="accident", description="Dropped it", estimated_amount=None,
                      files=[], actor="customer:x", today=today)
    db.commit()
    sign_in_customer(client, settings)
    assert "A claim on this plan is still open" in _text(_page(client, contract))
    assert _cancel(client, contract, contract.price).status_code == 409
    assert _status(contract) == "active"


def _browser(base: str, settings, email: str = "buyer@example.com") -> requests.Session:
    """A browser signed in with a mailed link of its own."""
    browser = requests.Session()
    link = magic_links.plans_link(settings, email)
    page = browser.get(base + link.removeprefix(settings.base_url), timeout=30)
    token = CSRF.search(page.text).group(1)
    res = browser.post(f"{base}/my/sign-in", timeout=30, allow_redirects=False,
                       data={"csrf_token": token, "token": link_token(link)})
    assert res.status_code == 303, res.text
    return browser


def test_two_presses_at_once_cancel_and_refund_once(stripe_settings, db, database_url):
    postgres_only(database_url)
    _, (contract,) = stripe_paid_order(db, purchase_date=store_today(stripe_settings.timezone))
    with served(stripe_settings) as base:
        browsers = [_browser(base, stripe_settings) for _ in range(3)]
        path = f"{base}/my/plans/{contract.public_id}/cancel"
        tokens = [CSRF.search(b.get(path, timeout=30).text).group(1) for b in browsers]
        answers = together(*(
            (lambda b=b, t=t: b.post(path, timeout=60, allow_redirects=False,
                                     data={"csrf_token": t, "amount": str(contract.price)}))
            for b, t in zip(browsers, tokens, strict=True)))
    assert sorted(a.status_code for a in answers) == [303, 409, 409], [a.text for a in answers]
    assert _status(contract) == "cancelled"
    assert [r.amount for r in _refunds(contract)] == [contract.price]
