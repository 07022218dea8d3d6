"""A real browser on the staff pages at phone and desktop widths, in Japanese and English:
contract search, the contract page, a cancellation confirmed from its quote (refunded through
the Stripe stand-in), a transfer, the customer history's refunds, the claim queue and a claim
review with its photo preview and a note to the customer. No page scrolls sideways.
Screenshots go to artifacts/."""

from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path

import pytest
from sqlmodel import select

from tests.factories import STAFF_PASSWORD, add_staff, paid_order, stripe_paid_order
from tests.http.web.pages import PURCHASE
from warranty.claims import attachments as uploads
from warranty.claims import filing
from warranty.contracts.models import Contract
from warranty.core import i18n
from warranty.notify.models import MailMessage

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
WIDTHS = (390, 1280)
LANGS = ("ja", "en")
LOCALES = {"ja": "ja-JP", "en": "en-US"}


def _photo(width: int = 240, height: int = 160) -> bytes:
    """A real PNG photo stand-in of ``width`` × ``height`` (a grey-blue gradient)."""
    rows = b"".join(
        b"\x00" + b"".join(bytes((40 + x * 160 // width, 90, 120 + y * 100 // height))
                           for x in range(width))
        for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        """One PNG chunk with its CRC."""
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def _sign_in(browser, base: str, email: str, lang: str, width: int):
    """A new browser context in ``lang`` at ``width``, signed in to the staff pages."""
    context = browser.new_context(viewport={"width": width, "height": 900},
                                  locale=LOCALES[lang],
                                  extra_http_headers={"Accept-Language": LOCALES[lang]})
    page = context.new_page()
    page.goto(f"{base}/staff/login")
    page.locator("#email").fill(email)
    page.locator("#password").fill(STAFF_PASSWORD)
    page.locator("form button[type=submit]").click()
    page.wait_for_url(lambda url: "/staff/login" not in url)
    return context, page


def _fits(page, what: str, width: int) -> None:
    """The page does not scroll sideways."""
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{what} scrolls sideways by {overflow}px at {width}px"


def _shot(page, name: str, request) -> None:
    """A full-page screenshot in artifacts/."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}-{request.node.callspec.id}.png"),
                    full_page=True)


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("width", WIDTHS)
def test_finance_finds_a_contract_and_cancels_it_from_the_quote(
        browser, stripe_server, db, request, width, lang):
    order, (contract,) = stripe_paid_order(db, purchase_date=PURCHASE,
                                           email="a-very-long-address.for-a-phone@example.com",
                                           order_ref="A-2001")
    add_staff(db, email="fin@store.example", role="finance")
    context, page = _sign_in(browser, stripe_server, "fin@store.example", lang, width)
    t = lambda key, **values: i18n.t(lang, key, **values)  # noqa: E731
    page.locator("#nav-contracts").click()
    page.wait_for_url("**/staff/contracts")
    assert page.locator("h1").inner_text() == t("staff.contracts.title")
    page.get_by_label(t("staff.contracts.q")).fill("A-2001")
    page.get_by_role("button", name=t("staff.contracts.search")).click()
    page.wait_for_load_state()
    _fits(page, "the contract search", width)
    _shot(page, "staff-contracts", request)
    page.get_by_role("link", name=contract.public_id).click()
    page.wait_for_url(f"**/staff/contracts/{contract.public_id}")
    assert page.locator("#contract-status").inner_text() == t("staff.cstatus.active")
    assert "2024-01-10 – 2027-01-09" in page.locator("#contract-term").inner_text()
    assert page.locator("#contract-caps tbody tr").count() == 3
    assert page.locator("#contract-documents").count() == 1
    _fits(page, "the contract page", width)
    _shot(page, "staff-contract", request)
    page.get_by_role("button", name=t("staff.cancel.show_quote")).click()
    page.wait_for_url("**/cancel?**")
    amount = page.locator("#quote-amount").inner_text()
    assert re.fullmatch(r"¥[\d,]+", amount)
    _fits(page, "the cancellation quote", width)
    _shot(page, "staff-cancel-quote", request)
    page.get_by_label(t("staff.cancel.reason")).fill("moving abroad")
    page.get_by_role("button", name=t("staff.cancel.confirm", amount=amount)).click()
    page.wait_for_url(f"**/staff/contracts/{contract.public_id}?done=cancelled")
    assert page.locator("#done").inner_text() == t(
        "staff.cancel.done", amount=amount, status=t("staff.refund.succeeded"))
    assert page.locator("#contract-status").inner_text() == t("staff.cstatus.cancelled")
    page.locator("#contract-owner a").click()
    page.wait_for_url("**/staff/customers?**")
    refunds = page.locator("#history-refunds")
    assert amount in refunds.inner_text() and t("staff.refund.succeeded") in refunds.inner_text()
    assert contract.public_id in page.locator("#history-cancellations").inner_text()
    _fits(page, "the customer history", width)
    _shot(page, "staff-customer-history", request)
    context.close()


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("width", WIDTHS)
def test_support_transfers_a_plan(browser, live_server, db, request, width, lang):
    _, (contract,) = paid_order(db, purchase_date=PURCHASE, email="old@example.com")
    add_staff(db, email="sup@store.example", role="support")
    context, page = _sign_in(browser, live_server, "sup@store.example", lang, width)
    t = lambda key, **values: i18n.t(lang, key, **values)  # noqa: E731
    page.goto(f"{live_server}/staff/contracts/{contract.public_id}")
    # Support may transfer, but confirming a refund is finance's: no return form.
    assert page.locator("#return-quantity").count() == 0
    page.get_by_label(t("staff.transfer.email")).fill("not an address")
    page.locator("#transfer-email").evaluate("e => e.type = 'text'")  # past the browser's check
    page.get_by_role("button", name=t("staff.transfer.submit")).click()
    page.wait_for_load_state()
    assert page.locator("#transfer-error").inner_text() == t("staff.transfer.bad_email")
    page.get_by_label(t("staff.transfer.email")).fill("new@example.com")
    page.get_by_role("button", name=t("staff.transfer.submit")).click()
    page.wait_for_url("**?done=transferred")
    assert page.locator("#done").inner_text() == t("staff.transfer.done",
                                                   email="new@example.com")
    assert "old@example.com → new@example.com" in page.locator("#contract-audit").inner_text()
    _fits(page, "the contract page after a transfer", width)
    _shot(page, "staff-transfer", request)
    db.expire_all()
    assert db.exec(select(Contract.customer_email)).one() == "new@example.com"
    context.close()


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("width", WIDTHS)
def test_claim_queue_and_review_with_a_photo(browser, live_server, db, settings, request,
                                            width, lang):
    _, (contract,) = paid_order(db, purchase_date=PURCHASE, plan_code="accident-36",
                                email="hanako.with.a.long.name@example.jp")
    claim = filing.file_claim(
        session=db, settings=settings, contract=contract,
        customer_email="hanako.with.a.long.name@example.jp",
        incident_date=PURCHASE.replace(year=2025, month=3, day=1), failure_type="breakdown",
        description="電源が入りません。", estimated_amount=30000,
        files=[uploads.Upload(filename="壊れたテレビ.png", data=_photo()),
               uploads.Upload(filename="receipt.pdf", data=b"%PDF-1.4\n%%EOF\n")],
        actor="customer:x", today=PURCHASE.replace(year=2026), lang=lang)
    db.commit()
    add_staff(db, email="fin@store.example", role="finance")
    context, page = _sign_in(browser, live_server, "fin@store.example", lang, width)
    t = lambda key, **values: i18n.t(lang, key, **values)  # noqa: E731
    page.goto(f"{live_server}/staff/claims")
    queue = page.locator("#claim-queue")
    assert t("staff.status.in_review") in queue.inner_text()
    assert "in_review" not in queue.inner_text()
    box = queue.bounding_box()
    main = page.locator("main").bounding_box()
    assert box["x"] + box["width"] <= main["x"] + main["width"] + 1, "the queue overflows"
    _fits(page, "the claim queue", width)
    _shot(page, "staff-queue", request)
    page.get_by_role("link", name=claim.public_id).click()
    page.wait_for_url(f"**/staff/claims/{claim.public_id}")
    preview = page.locator("img.preview")
    assert preview.count() == 1
    # The preview loads lazily: on a phone the risk signals and messages put it below the fold.
    preview.scroll_into_view_if_needed()
    assert preview.evaluate("img => img.decode().then(() => img.naturalWidth)") == 240
    assert page.get_by_role("link", name="receipt.pdf").count() == 1
    assert page.locator("#claim-type").inner_text() == t("staff.failure.breakdown")
    _fits(page, "the claim review", width)
    _shot(page, "staff-claim", request)
    page.get_by_label(t("staff.claim.approve_decision")).select_option("repair")
    page.get_by_label(t("staff.claim.approve_amount", currency="JPY")).fill("25000")
    page.get_by_label(t("staff.claim.approve_note")).fill("Monday pick-up / 月曜に集荷します")
    page.get_by_role("button", name=t("staff.claim.approve_submit"), exact=True).click()
    page.wait_for_load_state()
    assert page.locator("#payable").inner_text() == "¥25,000"
    page.get_by_label(t("staff.claim.pay_method")).select_option("repair_vendor")
    page.get_by_role("button", name=t("staff.claim.pay_submit")).click()
    page.wait_for_load_state()
    assert page.locator("#claim-status").inner_text() == t("staff.status.paid")
    assert page.locator("#payable").count() == 0
    assert t("staff.method.repair_vendor") in page.locator("#claim-paid").inner_text()
    _shot(page, "staff-claim-paid", request)
    db.expire_all()
    approved = db.exec(select(MailMessage).where(MailMessage.kind == "claim_approved")).one()
    assert "Monday pick-up / 月曜に集荷します" in approved.body
    context.close()
