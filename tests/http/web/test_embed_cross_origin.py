"""The embed on a store served from another origin than the service (another 127.0.0.1
port), in a real browser: offers show and a purchase starts, through CORS."""

from __future__ import annotations

import contextlib
import re

from flask import Flask, Response
from sqlmodel import select

from tests.conftest import PUBLIC_KEY, serve
from tests.factories import add_product, load_rules
from tests.http.web.test_embed_browser import ready, shot, visitor_in
from warranty.http.app import create_app
from warranty.orders.models import Order, OrderLine

# The store's own script: its Buy button starts the hosted checkout through the embed.
SHOP_JS = """
document.querySelector('#buy').addEventListener('submit', async (e) => {
  e.preventDefault();
  try {
    await window.Warranty.ready;
    await window.Warranty.checkout({
      order_ref: 'XO-1', customer_email: document.querySelector('#email').value,
      success_url: location.origin + '/thanks', cancel_url: location.href,
      items: [{ line_id: 'p1', sku: 'TV-1', quantity: 1, unit_price: 120000 }],
    });
  } catch (err) {
    document.querySelector('#error').textContent = err.message;
  }
});
"""


def store_app(where: dict) -> Flask:
    """Another shop: its own page and script, the embed from the service's origin
    (``where["service"]``), and a CSP that lets in only itself and the service, as the README
    tells stores to write it."""
    store = Flask("another_store")

    @store.get("/")
    def product_page():
        service = where["service"]
        html = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Another shop</title>
<script src="{service}/embed.js" data-key="{PUBLIC_KEY}" defer></script>
<script src="/shop.js" defer></script></head>
<body><h1>OLED TV</h1>
<div data-warranty-product data-sku="TV-1" data-price="120000" data-title="OLED TV"></div>
<form id="buy"><label>Email <input id="email" value="far@example.com"></label>
<button>Buy now</button></form><p id="error"></p></body></html>"""
        response = Response(html, mimetype="text/html")
        response.headers["Content-Security-Policy"] = (
            f"default-src 'self'; script-src 'self' {service}; style-src 'self' {service}; "
            f"connect-src {service}")
        return response

    @store.get("/shop.js")
    def shop_js():
        return Response(SHOP_JS, mimetype="text/javascript")

    return store


@contextlib.contextmanager
def two_origins(stripe_settings, stripe_standin, db, allow: bool):
    """The store on one port, the service on another (allowing the store's origin or not);
    yields (service URL, store URL, the service's settings)."""
    load_rules(db)
    add_product(db, title="OLED TV")
    stripe_standin.reset()
    where: dict[str, str] = {}
    with serve(store_app(where)) as store:
        settings = stripe_settings.model_copy(update={"allowed_origins": store if allow
                                                      else ""})
        with serve(create_app(settings)) as service:
            where["service"] = service
            yield service, store, settings
    stripe_standin.reset()


def open_store(browser, store: str, settings):
    """A visitor of the treatment arm on the store's page; returns (page, visitor id)."""
    vid = visitor_in("treatment", settings)
    context = browser.new_context(locale="en-US")
    context.add_cookies([{"name": "wty_vid", "value": vid, "url": store}])
    context.set_default_timeout(8000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.js_errors = errors
    page.goto(store + "/")
    return page, vid


def test_offers_show_and_a_purchase_starts_on_a_store_of_another_origin(
        browser, stripe_settings, stripe_standin, db):
    with two_origins(stripe_settings, stripe_standin, db, allow=True) as (
            service, store, settings):
        assert service.split(":")[-1] != store.split(":")[-1]  # two origins
        page, vid = open_store(browser, store, settings)
        ready(page)
        group = page.get_by_role("group", name="Protect your purchase")
        assert group.get_by_role("radio").count() == 3
        assert "¥6,000" in group.inner_text() and "¥9,960" in group.inner_text()
        page.get_by_role("radio", name=re.compile("^Breakdown protection")).check()
        shot(page, "cross-origin")
        page.get_by_role("button", name="Buy now").click()
        page.wait_for_url(f"{stripe_standin.url}/**")  # the stand-in's hosted payment page
        assert "Pay" in page.content() and page.js_errors == []
        page.context.close()
    db.expire_all()
    order = db.exec(select(Order).where(Order.store_order_ref == "XO-1")).one()
    lines = db.exec(select(OrderLine).where(OrderLine.order_id == order.id)
                    .order_by(OrderLine.line_no)).all()
    assert order.status == "pending" and order.visitor_id == vid
    assert order.stripe_checkout_session_id and order.customer_email == "far@example.com"
    assert [(line.kind, line.sku, line.unit_price) for line in lines] == [
        ("product", "TV-1", 120000), ("plan", "TV-1", 6000)]
    assert lines[1].placement == "product_page"


def test_a_store_origin_not_allowed_gets_no_offers_and_still_works(
        browser, stripe_settings, stripe_standin, db):
    with two_origins(stripe_settings, stripe_standin, db, allow=False) as (
            _service, store, settings):
        page, _ = open_store(browser, store, settings)
        ready(page)  # the embed gives up quietly: the browser would not let it read answers
        assert page.evaluate("Warranty.arm()") is None
        assert page.locator("[data-warranty-product]").inner_text() == ""
        assert page.evaluate("Warranty.cart([{sku: 'TV-1', quantity: 1, unit_price: 120000}])"
                             ) == [{"type": "product", "line_id": "p1", "sku": "TV-1",
                                    "quantity": 1, "unit_price": 120000}]
        assert page.js_errors == []
        page.context.close()
