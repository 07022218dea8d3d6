"""A real browser on the staff attention page, phone and desktop widths: the figures are
readable without scrolling sideways, and finance marks an item handled through its form."""

from pathlib import Path

import pytest

from tests.factories import STAFF_PASSWORD, add_staff
from warranty.attention import services as attention

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"


@pytest.mark.parametrize("width", [390, 1280])
def test_finance_handles_an_item_on_the_attention_page(browser, live_server, db, request,
                                                       width):
    ARTIFACTS.mkdir(exist_ok=True)
    backend = request.node.callspec.id.split("-")[0]
    attention.raise_item(
        session=db, kind="amount_mismatch", key="ord_0123456789abcdef0123:pi_3NsomeVeryLongId",
        summary="Order A-1001 (ord_0123456789abcdef0123): Stripe charged ¥126,000, the order "
                "total is ¥125,000; no contracts made",
        data={"order": "ord_0123456789abcdef0123", "expected_amount": 125000,
              "expected_currency": "jpy", "charged_amount": 126000, "charged_currency": "jpy",
              "stripe_payment_intent_id": "pi_3NsomeVeryLongIdThatMustWrapOnAPhone0123456789",
              "charged_at": "2026-12-01T01:02:03+00:00"})
    attention.raise_item(session=db, kind="external_refund", key="re_1",
                         summary="¥3,000 was refunded in Stripe's dashboard on order A-1002",
                         data={"amount": 3000, "currency": "jpy", "stripe_refund_id": "re_1"})
    db.commit()
    add_staff(db, email="fin@store.example", role="finance")
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.goto(live_server + "/staff/attention")
    page.get_by_label("Email").fill("fin@store.example")
    page.get_by_label("Password").fill(STAFF_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/staff/attention")
    assert page.locator("#nav-attention").inner_text() == "Attention 2"
    assert page.locator("#open-amount_mismatch").inner_text() == "1"
    mismatch = page.locator(".attention-item").filter(has_text="amount_mismatch")
    assert "¥126,000" in mismatch.inner_text() and "¥125,000" in mismatch.inner_text()
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px at {width}px"
    page.screenshot(path=str(ARTIFACTS / f"attention-{width}-{backend}.png"), full_page=True)
    mismatch.get_by_label("What was done").fill("Refunded ¥1,000 in the dashboard.")
    mismatch.get_by_role("button", name="Mark handled").click()
    page.wait_for_load_state()
    assert page.locator("#nav-attention").inner_text() == "Attention 1"
    assert page.locator(".attention-item").count() == 1
    page.get_by_label("Status").select_option("handled")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_load_state()
    handled = page.locator(".attention-item")
    assert handled.count() == 1
    assert "staff:fin@store.example" in handled.inner_text()
    assert "Refunded ¥1,000 in the dashboard." in handled.inner_text()
    context.close()
