"""A real browser on the customer pages, in Japanese and English, at 390 px and 1280 px:
the contract page and its self-service cancellation, a claim's conversation (customer and
staff), the demo shop's purchase (the embed's modal, Stripe's page in the shopper's
language, a declined card then a successful one, the order page waiting then saying paid),
and the post-purchase pages. Screenshots go to artifacts/."""

from __future__ import annotations

import re
import time
from datetime import date
from pathlib import Path

import pytest
from sqlmodel import select

from tests.factories import (
    STAFF_PASSWORD,
    add_product,
    add_staff,
    load_rules,
    paid_order,
    stripe_paid_order,
)
from tests.http.web.pages import PURCHASE
from tests.stripe_helpers import wait_paid
from warranty.auth import links as magic_links
from warranty.claims import filing, workflow
from warranty.contracts.models import Contract
from warranty.core.dates import store_today
from warranty.db.engine import Session, get_engine
from warranty.orders.models import Order, Refund
from warranty.post_purchase import plans as post_purchase

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
# Each test runs in both languages; each run looks at both widths (first, then other).
RUNS = [("ja", 390), ("en", 1280)]
TEXT = {
    "ja": {"sign_in": "ログインする", "view": "契約内容を見る", "year3": "3年目",
           "cancel": "解約して返金額を確認する", "confirm": "返金額 ¥6,000 で解約する",
           "cancelled": "返金 ¥6,000 の手続きをしています", "answer": "回答",
           "send": "情報を送信する", "from_store": "ストアから",
           "add_to_cart": "カートに入れる", "checkout": "購入手続きへ",
           "covers": "メーカー保証の終了後", "terms": "保証の内容と契約条件",
           "plan": "延長保証（故障）・36か月 — 有機ELテレビ", "pay": "支払う",
           "paid": "お支払いが完了しました", "add_title": "延長保証を追加",
           "continue": "お支払いへ進む", "to_plans": "ご契約を確認する"},
    "en": {"sign_in": "Sign in", "view": "View plan", "year3": "Year 3",
           "cancel": "See the refund and cancel", "confirm": "Cancel and refund ¥6,000",
           "cancelled": "Your refund of ¥6,000 is on its way", "answer": "Your answer",
           "send": "Send the information", "from_store": "From the store",
           "add_to_cart": "Add to cart", "checkout": "Checkout",
           "covers": "once the manufacturer's warranty ends",
           "terms": "What is covered and the terms",
           "plan": "Breakdown protection, 36 months — OLED TV", "pay": "Pay",
           "paid": "Paid", "add_title": "Add a protection plan",
           "continue": "Continue to payment", "to_plans": "See my plans"},
}


def _context(browser, lang: str, width: int):
    """A browser context in ``lang`` at ``width`` px."""
    context = browser.new_context(
        locale="ja-JP" if lang == "ja" else "en-US", viewport={"width": width, "height": 900},
        extra_http_headers={"Accept-Language": "ja-JP,ja;q=0.9" if lang == "ja" else "en-US"})
    context.set_default_timeout(10000)
    return context


def _fits(page) -> bool:
    """No sideways scrolling at this width."""
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def _shot(page, name: str, lang: str, request, *, fits: bool = True) -> None:
    """Save a full-page screenshot at the current width to artifacts/, and check it fits
    (the staff pages' layout is the staff pages' own: not checked here)."""
    ARTIFACTS.mkdir(exist_ok=True)
    width = page.viewport_size["width"]
    backend = request.node.callspec.id.split("-")[0]
    page.screenshot(path=str(ARTIFACTS / f"customer-{name}-{lang}-{width}-{backend}.png"),
                    full_page=True)
    assert _fits(page) or not fits, f"{name} scrolls sideways at {width} px"


def _both_widths(page, name: str, lang: str, width: int, request) -> None:
    """Screenshot at this width and at the other one, then come back."""
    _shot(page, name, lang, request)
    other = 1280 if width == 390 else 390
    page.set_viewport_size({"width": other, "height": 900})
    _shot(page, name, lang, request)
    page.set_viewport_size({"width": width, "height": 900})


def _sign_in(page, base: str, settings, lang: str, email: str = "buyer@example.com") -> None:
    """Open a mailed link and press its button."""
    link = magic_links.plans_link(settings, email).removeprefix(settings.base_url)
    page.goto(base + link)
    page.get_by_role("button", name=TEXT[lang]["sign_in"]).click()
    page.wait_for_url("**/my/plans")


@pytest.mark.parametrize(("lang", "width"), RUNS)
def test_contract_page_and_cancelling_with_the_refund_shown_first(
        browser, stripe_live, stripe_app, db, request, lang, width):
    text = TEXT[lang]
    settings = stripe_app.config["SETTINGS"]
    _, (contract,) = stripe_paid_order(db, purchase_date=store_today(settings.timezone))
    page = _context(browser, lang, width).new_page()
    _sign_in(page, stripe_live, settings, lang)
    page.get_by_role("link", name=text["view"]).click()
    page.wait_for_url(f"**/my/plans/{contract.public_id}")
    assert page.locator("#contract-number").inner_text() == contract.public_id
    assert page.locator("#caps tbody tr").count() == 3
    assert text["year3"] in page.locator("#caps").inner_text()
    assert page.locator("#caps tbody tr").nth(2).inner_text().endswith("¥96,000")  # 80%
    _both_widths(page, "contract", lang, width, request)
    page.get_by_role("link", name=text["cancel"]).click()
    assert page.locator("#quote-amount").inner_text() == "¥6,000"
    _both_widths(page, "cancel-quote", lang, width, request)
    page.get_by_role("button", name=text["confirm"]).click()
    page.wait_for_url(re.compile(rf".*/my/plans/{contract.public_id}\?cancelled=1$"))
    assert text["cancelled"] in page.locator("#cancelled-notice").inner_text()
    _shot(page, "cancelled", lang, request)
    with Session(get_engine(settings.database_url)) as session:
        assert session.get(Contract, contract.id).status == "cancelled"
        assert [r.amount for r in session.exec(select(Refund)).all()] == [6000]
    page.context.close()


@pytest.mark.parametrize(("lang", "width"), RUNS)
def test_a_claims_conversation_adds_to_it_and_both_sides_see_it(
        browser, live_server, db, settings, request, lang, width):
    text = TEXT[lang]
    _, (contract,) = paid_order(db, purchase_date=PURCHASE)
    claim = filing.file_claim(session=db, settings=settings, contract=contract,
                              customer_email="buyer@example.com", incident_date=date(2025, 3, 1),
                              failure_type="breakdown", description="The screen stays black.",
                              estimated_amount=None, files=[], actor="customer:x",
                              today=date(2025, 3, 2))
    workflow.request_info(session=db, settings=settings, claim=claim,
                          message="Please send the serial number.", actor="staff:alice")
    db.commit()
    add_staff(db, email="alice@store.example", role="admin")
    page = _context(browser, lang, width).new_page()
    _sign_in(page, live_server, settings, lang)
    page.goto(f"{live_server}/my/claims/{claim.public_id}")
    page.get_by_label(text["answer"]).fill("Serial: SN-42 <b>bold</b>")
    _both_widths(page, "claim-answer", lang, width, request)
    page.get_by_role("button", name=text["send"]).click()
    page.wait_for_url(f"**/my/claims/{claim.public_id}")
    messages = page.locator("#claim-messages li")
    assert messages.count() == 2
    assert text["from_store"] in messages.nth(0).inner_text()
    assert "Serial: SN-42 <b>bold</b>" in messages.nth(1).inner_text()  # escaped, as typed
    assert page.locator("#claim-description").inner_text() == "The screen stays black."
    _both_widths(page, "claim-history", lang, width, request)
    staff = _context(browser, "en", width).new_page()  # the staff pages' own language
    staff.goto(f"{live_server}/staff/claims/{claim.public_id}")
    staff.get_by_label("Email").fill("alice@store.example")
    staff.get_by_label("Password").fill(STAFF_PASSWORD)
    staff.get_by_role("button", name="Sign in").click()
    staff.wait_for_url(f"**/staff/claims/{claim.public_id}")
    assert "Serial: SN-42 <b>bold</b>" in staff.locator("#claim-messages").inner_text()
    assert staff.locator("#claim-description").inner_text() == "The screen stays black."
    _shot(staff, "staff-claim-history", lang, request, fits=False)
    page.context.close()
    staff.context.close()


@pytest.fixture
def shop(db, stripe_app, stripe_live):
    """The demo store on the Stripe stand-in (webhooks delivered), with one television."""
    load_rules(db)
    add_product(db, sku="TV-1", price=120000, title="有機ELテレビ / OLED TV")
    settings = stripe_app.config["SETTINGS"]
    stripe_app.config["SETTINGS"] = settings.model_copy(
        update={"allowed_origins": f"{settings.allowed_origins},{stripe_live}"})
    return stripe_live


def _treatment_visitor(settings) -> str:
    """A signed visitor id in the arm that sees offers."""
    from tests.http.web.test_embed_browser import visitor_in
    return visitor_in("treatment", settings)


def _wait_embed(page) -> None:
    """Wait until the embed has done its first pass."""
    end = time.monotonic() + 10
    while not page.evaluate("window.Warranty !== undefined"):
        assert time.monotonic() < end
        time.sleep(0.05)
    page.evaluate("Warranty.ready")


@pytest.mark.parametrize(("lang", "width"), RUNS)
def test_a_purchase_in_the_shoppers_language_ends_on_an_order_page_that_says_paid(
        browser, shop, stripe_app, database_url, request, lang, width):
    text = TEXT[lang]
    settings = stripe_app.config["SETTINGS"]
    context = _context(browser, lang, width)
    context.add_cookies([{"name": "wty_vid", "value": _treatment_visitor(settings),
                          "url": shop}])
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{shop}/lang/{lang}")
    page.goto(f"{shop}/products/TV-1")
    _wait_embed(page)
    page.get_by_role("button", name=text["add_to_cart"]).click()
    dialog = page.get_by_role("dialog")
    assert text["covers"] in dialog.inner_text()
    terms = dialog.get_by_role("link", name=text["terms"])
    assert terms.get_attribute("href").endswith(f"/my/terms?lang={lang}")
    assert "￥" not in page.locator("body").inner_text()  # one yen sign: ¥
    box = dialog.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= page.viewport_size["width"]
    _both_widths(page, "embed-modal", lang, width, request)
    dialog.get_by_role("button", name=re.compile("6,000")).first.click()
    page.wait_for_url(f"{shop}/cart")
    _wait_embed(page)
    ref = page.get_attribute("#checkout", "data-order-ref")
    page.get_by_role("button", name=text["checkout"]).click()
    page.wait_for_url(re.compile(r".*/pay/cs_"))
    assert page.locator("html").get_attribute("lang") == lang
    assert page.locator("#locale code").inner_text() == lang
    assert text["plan"] in page.locator("table").inner_text()
    _shot(page, "stripe-page", lang, request)
    page.check("#pm_card_chargeCustomerFail")  # declined first
    page.get_by_role("button", name=text["pay"]).click()
    page.get_by_role("alert").wait_for()
    page.check("#pm_card_visa")
    page.get_by_role("button", name=text["pay"]).click()
    page.wait_for_url(f"{shop}/orders/{ref}/complete")
    status = page.locator("#order-status")
    assert status.get_attribute("data-state") in ("waiting", "paid")
    assert "fail" not in status.inner_text().lower() and "失敗" not in status.inner_text()
    page.locator('#order-status[data-state="paid"]').wait_for(timeout=20000)
    assert status.inner_text() == text["paid"]
    _both_widths(page, "order-paid", lang, width, request)
    with Session(get_engine(database_url)) as session:
        order = session.exec(select(Order).where(Order.store_order_ref == ref)).one()
    wait_paid(database_url, order.public_id, contracts=1)
    assert errors == []
    context.close()


@pytest.mark.parametrize(("lang", "width"), RUNS)
def test_the_post_purchase_pages_look_like_the_others_and_lead_to_the_plans(
        browser, stripe_live, stripe_app, db, database_url, request, lang, width):
    text = TEXT[lang]
    settings = stripe_app.config["SETTINGS"]
    load_rules(db)
    add_product(db)
    order, _ = stripe_paid_order(db, purchase_date=store_today(settings.timezone),
                                 quantity=2, plan_quantity=1)
    link = post_purchase.post_purchase_link(settings, order, 1)
    page = _context(browser, lang, width).new_page()
    page.goto(stripe_live + link.removeprefix(settings.base_url))
    assert page.locator("h1").inner_text() == text["add_title"]
    assert page.locator("header.site").count() == 1  # the customer pages' header and styles
    _both_widths(page, "plans-add", lang, width, request)
    page.get_by_role("button", name=text["continue"]).click()
    page.wait_for_url(re.compile(r".*/pay/cs_"))
    assert page.locator("#locale code").inner_text() == lang
    page.get_by_role("button", name=text["pay"]).click()
    page.wait_for_url(re.compile(r".*/plans/added\?session_id=cs_.*"))
    # The page reloads itself (no script on the service's pages) until the payment is in.
    page.locator('#order-status[data-state="paid"]').wait_for(timeout=20000)
    assert page.locator("#order-status").inner_text() == text["paid"]
    _both_widths(page, "plans-added", lang, width, request)
    page.get_by_role("link", name=text["to_plans"]).click()
    page.wait_for_url("**/my/plans")
    page.context.close()
