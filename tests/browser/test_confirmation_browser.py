"""The final-confirmation items in a real browser, on the demo store, at 390 and 1280 px, in
Japanese and English: the product page's plan choice, the add-to-cart modal, the cart, and
the hosted payment page; the terms link opens the terms of the version the plan is sold
under."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlmodel import select

from tests.http.web.test_embed_browser import paying_shop, ready, visitor_in  # noqa: F401
from tests.stripe_helpers import wait_paid
from warranty.core.dates import store_today
from warranty.coverage.dates import coverage_dates
from warranty.db.engine import Session, get_engine
from warranty.orders.models import Order
from warranty.pricing import rules as pricing_rules
from warranty.pricing import terms

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
TEXT = {
    "en": {"legend": "Protect your purchase", "accident": "Accident & breakdown protection",
           "add": "Add to cart", "checkout": "Checkout", "modal": "Add protection?",
           "price": "Price (tax included)", "cancel": "full refund within 30 days",
           "terms": "Terms (version ", "term": "Term: {start} to {end} (36 months)",
           "hosted_price": "Price (tax included): ¥9,960 (tax ¥905)",
           "terms_page": "Extended warranty terms"},
    "ja": {"legend": "延長保証を付ける", "accident": "延長保証（破損・故障）",
           "add": "カートに入れる", "checkout": "購入手続きへ", "modal": "延長保証を追加しますか？",
           "price": "価格（税込）", "cancel": "30日以内", "terms": "保証規約（バージョン ",
           "term": "保証期間：{start}〜{end}（36か月）",
           "hosted_price": "価格(税込): ¥9,960(うち消費税 ¥905)",
           "terms_page": "延長保証 保証規約"},
}


def _page(browser, shop, lang: str, width: int):
    """A treatment-arm visitor's page at ``width`` px in ``lang``."""
    context = browser.new_context(locale="ja-JP" if lang == "ja" else "en-US",
                                  viewport={"width": width, "height": 900})
    context.add_cookies([{"name": "wty_vid", "value": visitor_in("treatment", shop.settings),
                          "url": shop.url}])
    context.set_default_timeout(8000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.js_errors = errors
    page.goto(f"{shop.url}/lang/{lang}")
    return page


def _fits(page, width: int) -> None:
    """Nothing wider than the window (no sideways scrolling at 390 px)."""
    assert page.evaluate("document.documentElement.scrollWidth") <= width


@pytest.mark.parametrize("width", [390, 1280])
@pytest.mark.parametrize("lang", ["ja", "en"])
def test_every_placement_shows_the_confirmation_items(browser, paying_shop, database_url, db,  # noqa: F811
                                                      lang, width):
    shop, text = paying_shop, TEXT[lang]
    ARTIFACTS.mkdir(exist_ok=True)
    version = pricing_rules.newest_version(db)
    label = terms.current_label(version, shop.settings)
    purchase = store_today(shop.settings.timezone)
    today = purchase.isoformat()
    end = coverage_dates(purchase_date=purchase, term_months=36, manufacturer_months=12,
                         coverage="accident").term_end.isoformat()
    page = _page(browser, shop, lang, width)

    # The product page: the chosen plan's items under the choice.
    page.goto(f"{shop.url}/products/TV-1")
    ready(page)
    assert page.locator(".wty-product .wty-confirm").count() == 0  # nothing chosen yet
    page.get_by_role("group", name=text["legend"]).get_by_role(
        "radio", name=re.compile(re.escape(text["accident"]))).check()
    items = page.locator(".wty-product .wty-confirm")
    items.wait_for()
    shown = items.inner_text()
    assert text["price"] in shown and "9,960" in shown and "905" in shown
    assert text["cancel"] in shown and today in shown
    link = items.get_by_role("link", name=re.compile(re.escape(text["terms"] + label)))
    href = link.get_attribute("href")
    assert href == f"{shop.settings.base_url}/terms/{label}/electronics/accident-36?lang={lang}"
    _fits(page, width)
    page.screenshot(path=str(ARTIFACTS / f"confirm-product-{lang}-{width}.png"), full_page=True)

    # The terms link's page, in the shopper's language (served by this same app).
    terms_page = page.context.new_page()
    terms_page.goto(href.replace(shop.settings.base_url, shop.url))
    assert text["terms_page"] in terms_page.inner_text("h1")
    assert terms_page.locator(f"[data-terms-version='{label}']").count() == 1
    _fits(terms_page, width)
    terms_page.close()

    # The add-to-cart modal: every choice with its items.
    page.get_by_role("button", name=text["add"]).click()
    page.wait_for_url(f"{shop.url}/cart")
    page.goto(f"{shop.url}/products/TV-2")
    ready(page)
    page.get_by_role("button", name=text["add"]).click()
    dialog = page.get_by_role("dialog")
    dialog.wait_for()
    assert dialog.locator("h2").inner_text() == text["modal"]
    assert dialog.locator(".wty-confirm").count() == 2  # the two plans the rules offer
    for n in range(2):
        one = dialog.locator(".wty-confirm").nth(n).inner_text()
        assert text["price"] in one and text["cancel"] in one and text["terms"] in one
    assert "2,980" in dialog.locator(".wty-confirm[data-plan='accident-36']").inner_text()
    _fits(page, width)
    page.screenshot(path=str(ARTIFACTS / f"confirm-modal-{lang}-{width}.png"), full_page=True)
    dialog.locator(".wty-choice").filter(has=page.locator(
        ".wty-confirm[data-plan='standard-36']")).get_by_role("button").click()

    # The cart: the chosen plans' items, and for each item still without one, each offer's.
    page.wait_for_url(f"{shop.url}/cart")
    ready(page)
    cart = page.locator("[data-warranty-cart]")
    assert cart.locator(".wty-confirm").count() == 2  # one chosen plan per product line
    tv1 = page.locator("[data-sku='TV-1'] .wty-confirm").inner_text()
    assert "9,960" in tv1 and text["term"].format(start=today, end=end) in tv1
    assert "1,980" in page.locator("[data-sku='TV-2'] .wty-confirm").inner_text()
    _fits(page, width)
    page.screenshot(path=str(ARTIFACTS / f"confirm-cart-{lang}-{width}.png"), full_page=True)

    # The hosted payment page: each plan's items and the conditions above Pay.
    ref = page.get_attribute("#checkout", "data-order-ref")
    page.get_by_role("button", name=re.compile(text["checkout"])).click()
    page.wait_for_url(re.compile(r".*/pay/cs_"))
    hosted = page.inner_text("body")
    assert text["hosted_price"] in hosted
    assert f"/terms/{label}/electronics/accident-36" in hosted
    assert page.locator(".custom-text-submit").count() == 1
    page.screenshot(path=str(ARTIFACTS / f"confirm-hosted-{lang}-{width}.png"), full_page=True)
    page.check("#pm_card_visa")
    # The stand-in's page speaks the Checkout Session's locale (the shopper's language).
    page.get_by_role("button", name="支払う" if lang == "ja" else "Pay").click()
    page.wait_for_url(f"{shop.url}/orders/{ref}/complete")
    with Session(get_engine(database_url)) as session:
        order = session.exec(select_order(ref)).one()
    _order, contracts = wait_paid(database_url, order.public_id, contracts=2)
    assert {c.terms_version for c in contracts} == {label}
    assert page.js_errors == []
    page.context.close()


def select_order(ref: str):
    """The demo store's order with reference ``ref``."""
    return select(Order).where(Order.store_order_ref == ref)
