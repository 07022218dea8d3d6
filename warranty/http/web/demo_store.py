"""A small demo storefront (demo and test only): it uses the embed as any store would.

Product list, product pages with variants, a cart kept in the Flask session, checkout through
``Warranty.checkout`` (the hosted page of the local Stripe stand-in), and an order page with the
post-purchase offer. Every page is served under a strict Content-Security-Policy, like a careful
store's, so the embed is shown to work there. ``/demo/csp-test`` adds an inline script that the
policy must block.
"""

from __future__ import annotations

import secrets
from functools import partial

from flask import (
    Blueprint,
    abort,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from sqlmodel import select

from warranty.catalog.models import Product
from warranty.core import i18n
from warranty.core.money import format_amount
from warranty.core.text import whole_number
from warranty.http.session import get_session
from warranty.http.web.pages import POLL_SECONDS, POLL_TIMES, order_state, protect
from warranty.orders.models import Order

bp = Blueprint("demo_store", __name__)
protect(bp)  # CSRF on the cart forms, like every page
CSP = "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'"
MAX_QUANTITY = 10
LANGS = ("ja", "en")


@bp.after_request
def _strict_policy(response):
    """The policy a careful store sends: no inline script or style, nothing from elsewhere."""
    response.headers["Content-Security-Policy"] = CSP
    return response


@bp.app_template_filter("money")
def _money(amount: int) -> str:
    """Display an amount of the store currency."""
    return format_amount(amount, current_app.config["SETTINGS"].currency)


@bp.context_processor
def _store_context():
    """Language, public key and cart size for every demo page (this blueprint's only)."""
    lang = session.get("lang", "ja")
    return {"lang": lang, "t": partial(i18n.t, lang),
            "public_key": current_app.config["SETTINGS"].public_key,
            "cart_count": sum(session.get("cart", {}).values())}


def _title(product: Product, lang: str) -> str:
    """The demo catalog's titles read "日本語 / English"; show one side."""
    ja, sep, en = product.title.partition(" / ")
    return (en if lang == "en" else ja) if sep else product.title


def _products(skus=None) -> list[Product]:
    """Catalog products, all or by sku, in a stable order."""
    query = select(Product).order_by(Product.store_category, Product.unit_price.desc())
    if skus is not None:
        query = query.where(Product.sku.in_(list(skus)))
    return list(get_session().exec(query))


def _cart() -> dict[str, int]:
    """The session's cart: sku -> quantity."""
    return dict(session.get("cart", {}))


def _quantity(raw: str | None) -> int:
    """A quantity from a form, within 1..MAX_QUANTITY."""
    return max(1, min(MAX_QUANTITY, whole_number(raw) or 1))


@bp.get("/")
def index():
    """Every product."""
    lang = session.get("lang", "ja")
    items = [(p, _title(p, lang)) for p in _products()]
    return render_template("demo/index.html", items=items)


@bp.get("/lang/<code>")
def set_lang(code: str):
    """Switch the demo's language (the embed follows <html lang>)."""
    if code in LANGS:
        session["lang"] = code
    return redirect(request.referrer or url_for("demo_store.index"))


@bp.get("/products/<sku>")
def product(sku: str):
    """A product page; products of the same store category are offered as variants."""
    lang = session.get("lang", "ja")
    found = get_session().exec(select(Product).where(Product.sku == sku)).first()
    if found is None:
        abort(404)
    variants = [p for p in _products() if p.store_category == found.store_category]
    return render_template("demo/product.html", product=found, title=_title(found, lang),
                           variants=[(p, _title(p, lang)) for p in variants])


@bp.post("/cart/add")
def cart_add():
    """Add a product to the cart."""
    sku = request.form.get("sku", "")
    if not _products([sku]):
        abort(404)
    cart = _cart()
    cart[sku] = min(MAX_QUANTITY, cart.get(sku, 0) + _quantity(request.form.get("quantity")))
    session["cart"] = cart
    return redirect(url_for("demo_store.cart"))


@bp.post("/cart/update")
def cart_update():
    """Change a line's quantity, or remove it."""
    cart = _cart()
    sku = request.form.get("sku", "")
    if sku in cart:
        if request.form.get("remove"):
            del cart[sku]
        else:
            cart[sku] = _quantity(request.form.get("quantity"))
    session["cart"] = cart
    return redirect(url_for("demo_store.cart"))


@bp.get("/cart")
def cart():
    """The cart: the embed adds plan offers to its items and sends it to checkout."""
    lang = session.get("lang", "ja")
    cart = _cart()
    products = {p.sku: p for p in _products(cart)}
    lines = [(f"p{n}", products[sku], _title(products[sku], lang), qty)
             for n, (sku, qty) in enumerate(cart.items(), start=1) if sku in products]
    subtotal = sum(p.unit_price * qty for _, p, _, qty in lines)
    return render_template("demo/cart.html", lines=lines, subtotal=subtotal,
                           order_ref=f"DEMO-{secrets.token_hex(4).upper()}",
                           max_quantity=MAX_QUANTITY)


def _order(ref: str) -> Order:
    """The store order (not a post-purchase plan order) with this reference, newest."""
    order = get_session().exec(select(Order).where(Order.store_order_ref == ref,
                                                   Order.parent_order_id.is_(None))
                               .order_by(Order.id.desc())).first()
    if order is None:
        abort(404)
    return order


def _state_texts(state: str) -> dict:
    """The order page's status line and hint for a state, in the demo's language."""
    lang = session.get("lang", "ja")
    hint = {"waiting": "order.state.waiting_hint", "slow": "order.state.slow",
            "paid": "order.state.paid_hint", "expired": "order.state.expired_hint"}.get(state)
    return {"state": state,
            "text": i18n.t(lang, "order.state." + ("waiting" if state == "slow" else state)),
            "hint": i18n.t(lang, hint) if hint else ""}


@bp.get("/orders/<ref>/complete")
def order_complete(ref: str):
    """Order confirmation: the payment's state, then the post-purchase placement offers plans
    for uncovered units.

    A real store knows its order id from the checkout response; the demo looks it up. While
    the payment is not confirmed, the page's script asks ``order_state_json`` again (without
    script, the page reloads itself), for a minute at most.
    """
    order = _order(ref)
    session.pop("cart", None)
    state = order_state(order)
    polls = whole_number(request.args.get("poll")) or 0
    refresh = None
    if state == "waiting" and polls < POLL_TIMES:
        refresh = url_for("demo_store.order_complete", ref=ref, poll=polls + 1)
    elif state == "waiting":
        state = "slow"
    return render_template("demo/complete.html", order=order, ref=ref, texts=_state_texts(state),
                           refresh=refresh, poll_seconds=POLL_SECONDS,
                           poll_times=max(POLL_TIMES - polls, 1),
                           slow_text=_state_texts("slow")["hint"])


@bp.get("/orders/<ref>/state")
def order_state_json(ref: str):
    """The order page's status as JSON, for its script to ask while it waits."""
    return jsonify(_state_texts(order_state(_order(ref))))


@bp.get("/demo/csp-test")
def csp_test():
    """A product page with an inline script the strict policy must block."""
    found = _products()
    if not found:
        abort(404)
    return render_template("demo/csp_test.html", product=found[0],
                           title=_title(found[0], session.get("lang", "ja")))
