"""The embed in a real browser, on the demo store, under a strict CSP: every placement."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from sqlmodel import select

from tests.factories import add_product, load_rules, rules_doc
from tests.stripe_helpers import wait_paid
from warranty.db.engine import Session, get_engine
from warranty.experiment import arms
from warranty.experiment.models import VisitorEvent
from warranty.orders.models import Order

ARTIFACTS = Path(__file__).resolve().parents[3] / "artifacts"


def visitor_in(arm: str, settings) -> str:
    """A visitor id signed by the service that it assigns to ``arm`` under these settings
    (as the embed would have kept it from an earlier visit)."""
    signed = (arms.sign_visitor_id(settings.secret_key, f"browser{n:015d}")
              for n in range(10000))
    return next(v for v in signed if arms.assign_arm(
        v, salt=settings.experiment_salt, share=settings.holdout_share) == arm)


class Shop:
    """The demo store served over HTTP: its URL and settings."""

    def __init__(self, url: str, settings):
        """Remember where the store runs and how."""
        self.url, self.settings = url, settings


def stock(db) -> None:
    """Rules and two televisions of known plan prices."""
    load_rules(db)
    add_product(db, sku="TV-1", price=120000, title="有機ELテレビ / OLED TV")  # 6000 / 9960
    add_product(db, sku="TV-2", price=40000, title="液晶テレビ / LED TV")  # 1980 / 2980


@pytest.fixture
def shop(db, app, live_server):
    """The demo store (no payments) with the test catalog."""
    stock(db)
    return Shop(live_server, app.config["SETTINGS"])


def open_page(browser, shop, arm: str, lang: str = "ja"):
    """A fresh browser context for a visitor in ``arm``; returns (page, visitor id)."""
    vid = visitor_in(arm, shop.settings)
    context = browser.new_context(locale="ja-JP" if lang == "ja" else "en-US")
    context.add_cookies([{"name": "wty_vid", "value": vid, "url": shop.url}])
    context.set_default_timeout(5000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.js_errors = errors
    if lang == "en":
        page.goto(f"{shop.url}/lang/en")
    return page, vid


def wait_js(page, expression: str, deadline: float = 5.0):
    """Poll a JS expression until truthy (wait_for_function would eval, which CSP forbids)."""
    end = time.monotonic() + deadline
    while not (value := page.evaluate(expression)):
        assert time.monotonic() < end, f"still false after {deadline}s: {expression}"
        time.sleep(0.05)
    return value


def ready(page) -> None:
    """Wait for the embed to finish its first pass."""
    wait_js(page, "window.Warranty !== undefined")
    page.evaluate("Warranty.ready")


def shot(page, name: str) -> None:
    """Save a screenshot of the placement to artifacts/."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"embed-{name}.png"), full_page=True)


def events_of(database_url: str, vid: str, expect: int, deadline: float = 6.0):
    """The visitor's stored events, polling until at least ``expect`` arrived."""
    end = time.monotonic() + deadline
    while True:
        with Session(get_engine(database_url)) as session:
            rows = session.exec(select(VisitorEvent).where(VisitorEvent.visitor_id == vid)
                                .order_by(VisitorEvent.id)).all()
        if len(rows) >= expect or time.monotonic() > end:
            return rows
        time.sleep(0.1)


def test_product_page_offers_reprice_on_variant_and_select(browser, shop, database_url):
    page, vid = open_page(browser, shop, "treatment")
    page.goto(f"{shop.url}/products/TV-1")
    ready(page)
    group = page.get_by_role("group", name="延長保証を付ける")
    radios = group.get_by_role("radio")
    assert radios.count() == 3
    assert "6,000" in group.get_by_text("延長保証（故障） 3年").locator("..").inner_text()
    assert re.search(r"9,960", group.inner_text())
    assert page.get_by_role("radio", name="保証なし").is_checked()
    # A variant change updates data-sku/data-price; the embed reprices and announces it.
    page.select_option("#variant", "TV-2")
    wait_js(page, "document.querySelector('.wty-product').innerText.includes('1,980')")
    assert "2,980" in group.inner_text() and "6,000" not in group.inner_text()
    wait_js(page, "document.querySelector('[aria-live]').textContent.includes('1,980')")
    # Keyboard: arrow keys move through the radio group and select.
    page.get_by_role("radio", name="保証なし").focus()
    page.keyboard.press("ArrowDown")
    standard = page.get_by_role("radio", name=re.compile("延長保証（故障）"))
    assert standard.is_checked()
    plans = page.evaluate("Warranty.plans()")
    assert plans["TV-2"]["plan_code"] == "standard-36" and plans["TV-2"]["plan_price"] == 1980
    assert plans["TV-2"]["placement"] == "product_page"
    shot(page, "product-page")
    assert page.js_errors == []
    page.context.close()
    rows = events_of(database_url, vid, expect=6)
    kinds = [(r.type, r.placement, r.sku, r.plan_price) for r in rows]
    assert ("exposure", "product_page", "TV-1", None) in kinds
    assert ("offer_viewed", "product_page", "TV-1", 6000) in kinds
    assert ("offer_viewed", "product_page", "TV-2", 2980) in kinds
    assert ("offer_selected", "product_page", "TV-2", 1980) in kinds
    assert {r.arm for r in rows} == {"treatment"}
    assert {r.warranty_category for r in rows} == {"electronics"}


def test_add_to_cart_modal_traps_focus_closes_on_esc_and_adds_a_plan(browser, shop):
    page, _ = open_page(browser, shop, "treatment", lang="en")
    page.goto(f"{shop.url}/products/TV-1")
    ready(page)
    page.fill("#qty", "2")
    page.get_by_role("button", name="Add to cart").click()
    dialog = page.get_by_role("dialog", name="Add protection?")
    dialog.wait_for()
    assert dialog.get_attribute("aria-modal") == "true"
    assert "6,000" in dialog.inner_text() and "9,960" in dialog.inner_text()
    shot(page, "add-to-cart-modal")
    for _ in range(6):  # Tab and Shift+Tab never leave the dialog
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.closest('dialog') !== null")
    page.keyboard.press("Shift+Tab")
    assert page.evaluate("document.activeElement.closest('dialog') !== null")
    page.keyboard.press("Escape")  # closes; the product goes to the cart without a plan
    page.wait_for_url(f"{shop.url}/cart")
    ready(page)
    assert page.evaluate("Warranty.cart()") == [
        {"type": "product", "line_id": "p1", "sku": "TV-1", "quantity": 2, "unit_price": 120000,
         "title": "OLED TV"}]  # the title as the shopper reads it, for Stripe's page
    page.goto(f"{shop.url}/products/TV-2")
    ready(page)
    page.get_by_role("button", name="Add to cart").click()
    page.get_by_role("dialog").get_by_role("button", name=re.compile("Accident")).click()
    page.wait_for_url(f"{shop.url}/cart")
    ready(page)
    lines = page.evaluate("Warranty.cart()")
    plan = [line for line in lines if line["type"] == "plan"]
    assert len(plan) == 1 and plan[0]["for_line"] == "p2" and plan[0]["quantity"] == 1
    assert plan[0]["placement"] == "add_to_cart_modal" and plan[0]["offer_token"]
    assert page.js_errors == []
    page.context.close()


def test_cart_offer_keeps_plans_balanced_and_drops_them_with_their_product(browser, shop):
    page, _ = open_page(browser, shop, "treatment", lang="en")
    page.goto(f"{shop.url}/products/TV-1")
    ready(page)
    page.get_by_role("radio", name="No protection").click()  # declined: no modal
    page.fill("#qty", "3")
    page.get_by_role("button", name="Add to cart").click()
    page.wait_for_url(f"{shop.url}/cart")
    ready(page)
    # Rendering is settled: the embed's own changes do not make it render again.
    assert page.evaluate("""() => { const b = document.querySelector('.wty-cart button');
        return new Promise((ok) => setTimeout(() => ok(b.isConnected), 400)); }""")
    item = page.locator("[data-sku='TV-1']")
    item.get_by_role("button", name=re.compile(r"Add Breakdown protection.*6,000")).click()
    page.get_by_role("combobox", name="Plans").wait_for()

    def plan_quantity():
        lines = page.evaluate("Warranty.cart()")
        return [line["quantity"] for line in lines if line["type"] == "plan"]

    assert plan_quantity() == [3]
    assert page.locator("[data-warranty-plans-total]").inner_text() == "¥18,000"
    page.get_by_role("combobox", name="Plans").select_option("2")
    assert plan_quantity() == [2]
    shot(page, "cart")
    # The product quantity drops below the plans: plans follow it down.
    page.fill("#qty-p1", "1")
    page.get_by_role("button", name="Update").click()
    ready(page)
    assert plan_quantity() == [1]
    assert page.get_by_role("combobox", name="Plans").locator("option").count() == 1
    page.get_by_role("button", name="Remove Breakdown protection, 3 years from OLED TV").click()
    assert plan_quantity() == []
    item.get_by_role("button", name=re.compile(r"Add Accident")).click()
    assert plan_quantity() == [1]
    # The product leaves the cart: its plan goes too, and a screen reader hears why.
    page.get_by_role("button", name="Remove from cart").click()
    ready(page)
    assert page.evaluate("Warranty.plans()") == {}
    wait_js(page,
        "document.querySelector('[aria-live]').textContent.includes('no longer in the cart')")
    assert page.js_errors == []
    page.context.close()


def test_holdout_visitor_sees_no_offers_anywhere(browser, shop, database_url):
    page, vid = open_page(browser, shop, "holdout")
    page.goto(f"{shop.url}/products/TV-1")
    ready(page)
    assert page.evaluate("Warranty.arm()") == "holdout"
    assert page.get_by_role("radio").count() == 0
    assert page.locator(".wty-product").is_hidden()
    page.get_by_role("button", name="カートに入れる").click()  # no modal: straight to the cart
    page.wait_for_url(f"{shop.url}/cart")
    ready(page)
    assert page.locator(".wty-cart button").count() == 0
    assert page.get_by_role("dialog").count() == 0
    assert [line["type"] for line in page.evaluate("Warranty.cart()")] == ["product"]
    shot(page, "holdout")
    page.context.close()
    rows = events_of(database_url, vid, expect=2)
    assert {(r.type, r.placement) for r in rows} == {("exposure", "product_page"),
                                                      ("exposure", "cart")}
    assert {r.arm for r in rows} == {"holdout"}


def test_embed_works_under_a_strict_csp_that_blocks_inline_script(browser, shop):
    page, _ = open_page(browser, shop, "treatment", lang="en")
    console: list[str] = []
    page.on("console", lambda msg: console.append(msg.text))
    response = page.goto(f"{shop.url}/demo/csp-test")
    assert response.headers["content-security-policy"] == (
        "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'")
    ready(page)
    assert page.evaluate("window.inlineScriptRan") is None
    assert any("Content Security Policy" in text and "inline script" in text for text in console)
    assert page.get_by_role("radio").count() == 3
    # Styled by the stylesheet the embed loads, not by style attributes.
    assert page.evaluate("document.querySelectorAll('[style]').length") == 0
    assert page.evaluate("getComputedStyle(document.querySelector('.wty-fieldset'))"
                         ".borderTopStyle") == "solid"
    shot(page, "csp-test")
    assert page.js_errors == []
    page.context.close()


@pytest.fixture
def paying_shop(db, stripe_app, stripe_live):
    """The demo store on the Stripe stand-in, with its webhooks delivered to the app.

    The store's pages are the app's own, served on a free port rather than at the settings'
    base URL: that origin is the store's, where Stripe's page may send the shopper back.
    """
    stock(db)
    settings = stripe_app.config["SETTINGS"]
    stripe_app.config["SETTINGS"] = settings.model_copy(
        update={"allowed_origins": f"{settings.allowed_origins},{stripe_live}"})
    return Shop(stripe_live, stripe_app.config["SETTINGS"])


def pay_on_standin(page, card: str = "pm_card_visa") -> None:
    """Pay on the stand-in's hosted page as a shopper would."""
    page.wait_for_url(re.compile(r".*/pay/cs_"))
    page.check(f"#{card}")
    page.locator("form button[type=submit]").click()  # "Pay", or 支払う: the shopper's language


def test_purchase_with_a_plan_through_the_hosted_checkout(browser, paying_shop, database_url):
    shop = paying_shop
    page, vid = open_page(browser, shop, "treatment", lang="en")
    page.goto(f"{shop.url}/products/TV-1")
    ready(page)
    page.fill("#qty", "2")
    page.get_by_role("radio", name=re.compile("Breakdown protection")).check()
    page.get_by_role("button", name="Add to cart").click()
    page.wait_for_url(f"{shop.url}/cart")
    ready(page)
    assert page.locator("[data-warranty-plans-total]").inner_text() == "¥12,000"
    ref = page.get_attribute("#checkout", "data-order-ref")
    page.get_by_role("button", name="Checkout").click()
    pay_on_standin(page)
    page.wait_for_url(f"{shop.url}/orders/{ref}/complete")
    with Session(get_engine(database_url)) as session:
        order = session.exec(select(Order).where(Order.store_order_ref == ref)).one()
    assert order.visitor_id == vid and order.total_amount == 2 * 120000 + 2 * 6000
    order, contracts = wait_paid(database_url, order.public_id, contracts=2)
    assert [c.price for c in contracts] == [6000, 6000]
    assert {c.plan_code for c in contracts} == {"standard-36"}
    ready(page)
    assert page.evaluate("Warranty.plans()") == {}  # the order is placed: selections cleared
    assert page.locator(".wty-after button").count() == 0  # every unit already has a plan
    assert page.js_errors == []
    page.context.close()
    rows = events_of(database_url, vid, expect=1)
    started = [r for r in rows if r.type == "checkout_started"]
    assert [(r.sku, r.order_public_id, r.plan_code, r.placement, r.quantity) for r in started] \
        == [("TV-1", order.public_id, "standard-36", "product_page", 2)]


def test_a_stale_offer_at_checkout_is_fetched_again_and_retried_once(browser, paying_shop,
                                                                    database_url, db):
    shop = paying_shop
    page, _ = open_page(browser, shop, "treatment", lang="en")
    page.goto(f"{shop.url}/products/TV-1")
    ready(page)
    page.get_by_role("radio", name=re.compile("Breakdown protection")).check()
    page.get_by_role("button", name="Add to cart").click()
    page.wait_for_url(f"{shop.url}/cart")
    ready(page)
    assert page.locator("[data-warranty-plans-total]").inner_text() == "¥6,000"
    # The rules change while the shopper looks at the cart: the plan in it is now stale.
    load_rules(db, rules_doc(bands=[{"min": 50000, "max": 300000, "prices": {
        "standard-36": {"fixed": 7000}, "accident-36": {"fixed": 11000}}}]))
    time.sleep(shop.settings.offer_revision_seconds + 0.2)  # every cache has seen it
    answers: list[tuple[int, str]] = []
    page.on("response", lambda res: answers.append((res.status, res.url))
            if "/checkout/sessions" in res.url else None)
    ref = page.get_attribute("#checkout", "data-order-ref")
    page.get_by_role("button", name="Checkout").click()
    page.wait_for_url(re.compile(r".*/pay/cs_"))
    assert [status for status, _ in answers] == [409, 201]  # refused once, then fresh offers
    with Session(get_engine(database_url)) as session:
        order = session.exec(select(Order).where(Order.store_order_ref == ref)).one()
    assert order.total_amount == 120000 + 7000
    assert page.js_errors == []
    page.context.close()


def test_post_purchase_offer_on_the_confirmation_page(browser, paying_shop, database_url):
    shop = paying_shop
    page, vid = open_page(browser, shop, "treatment")
    page.goto(f"{shop.url}/products/TV-2")
    ready(page)
    page.fill("#qty", "2")
    page.get_by_role("button", name="カートに入れる").click()
    page.get_by_role("dialog").get_by_role("button", name="追加しない").click()
    page.wait_for_url(f"{shop.url}/cart")
    ref = page.get_attribute("#checkout", "data-order-ref")
    page.get_by_role("button", name="購入手続きへ").click()
    pay_on_standin(page)
    page.wait_for_url(f"{shop.url}/orders/{ref}/complete")
    # The embed waits for the order to be paid, then offers plans for the two open units.
    accident = re.compile(r"延長保証（破損・故障） 3年を追加.*2,980 × 2")
    offer = page.get_by_role("button", name=accident)
    offer.wait_for(timeout=15000)
    shot(page, "post-purchase")
    offer.click()
    pay_on_standin(page)
    page.wait_for_url(f"{shop.url}/orders/{ref}/complete")
    with Session(get_engine(database_url)) as session:
        parent = session.exec(select(Order).where(Order.store_order_ref == ref,
                                                  Order.parent_order_id.is_(None))).one()
        plan_order = session.exec(select(Order).where(Order.parent_order_id == parent.id)).one()
    assert plan_order.visitor_id == vid and plan_order.total_amount == 2 * 2980
    _, contracts = wait_paid(database_url, plan_order.public_id, contracts=2)
    assert {c.plan_code for c in contracts} == {"accident-36"}
    assert all(c.waiting_until is not None for c in contracts)
    page.reload()
    ready(page)
    assert page.locator(".wty-after button").count() == 0  # fully covered now
    assert page.js_errors == []
    page.context.close()
    rows = events_of(database_url, vid, expect=1)
    assert ("checkout_started", "post_purchase", plan_order.public_id) in {
        (r.type, r.placement, r.order_public_id) for r in rows}


def test_products_outside_the_catalog_get_offers_by_category_and_price(browser, shop, app):
    # A store that sells outside its catalog too (with a catalog loaded, the default refuses).
    app.config["SETTINGS"] = app.config["SETTINGS"].model_copy(update={"catalog_only": False})
    page, _ = open_page(browser, shop, "treatment", lang="en")
    page.goto(f"{shop.url}/demo/csp-test")
    ready(page)
    # A store whose catalog the service lacks: elements added later, then Warranty.refresh().
    page.evaluate("""() => {
        const cart = document.createElement('div');
        cart.setAttribute('data-warranty-cart', '');
        cart.innerHTML = '<div data-warranty-cart-item data-sku="EXT-9" data-category="tv" ' +
            'data-price="5000" data-quantity="2" data-title="Portable TV"></div>';
        document.body.append(cart);
        return Warranty.refresh();
    }""")
    item = page.locator("[data-sku='EXT-9']")
    assert "1,980" in item.get_by_role("button", name=re.compile("Add Breakdown")).inner_text()
    item.get_by_role("button", name=re.compile("Add Breakdown")).click()
    lines = page.evaluate("Warranty.cart()")
    assert lines[0] == {"type": "product", "line_id": "p1", "sku": "EXT-9", "quantity": 2,
                        "unit_price": 5000, "title": "Portable TV", "category": "tv",
                        "manufacturer_warranty_months": 12}
    assert lines[1]["type"] == "plan" and lines[1]["quantity"] == 2
    page.context.close()


@pytest.mark.parametrize("stored", ["v0123456789abcdef0123456789abcdef",  # the old embed's
                                    "forged"])  # signed with another service's key
def test_a_visitor_id_the_service_did_not_sign_is_replaced_by_a_signed_one(
        browser, shop, database_url, stored):
    if stored == "forged":
        stored = arms.sign_visitor_id("another-service-secret", "browser000000000000042")
    context = browser.new_context(locale="en-US")
    context.add_cookies([{"name": "wty_vid", "value": stored, "url": shop.url}])
    context.set_default_timeout(5000)
    page = context.new_page()
    page.goto(f"{shop.url}/products/TV-1")
    ready(page)
    vid = page.evaluate("Warranty.visitorId()")
    assert vid != stored
    assert arms.visitor_id_problem(vid, shop.settings.secret_key) is None
    assert page.evaluate("JSON.parse(localStorage.getItem('warranty.vid'))") == vid
    assert f"wty_vid={vid}" in page.evaluate("document.cookie")
    page.reload()  # kept: the next page sends it and gets it back unchanged
    ready(page)
    assert page.evaluate("Warranty.visitorId()") == vid
    context.close()
    rows = events_of(database_url, vid, expect=1)
    assert rows and {r.type for r in rows} >= {"exposure"}
    assert events_of(database_url, stored, expect=0, deadline=0) == []

