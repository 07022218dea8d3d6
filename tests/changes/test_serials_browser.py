"""The customer's serial number form in a real browser: ja and en, 390 px and 1280 px."""

from __future__ import annotations

import pytest
from sqlmodel import select

from tests.factories import paid_order
from tests.http.web.pages import PURCHASE
from warranty.auth import links as magic_links
from warranty.contracts.models import Contract


@pytest.mark.parametrize(("lang", "width"), [("ja", 390), ("ja", 1280), ("en", 390),
                                             ("en", 1280)])
def test_the_customer_registers_a_serial_in_the_browser(browser, db, settings, live_server,
                                                        lang, width):
    _, (contract,) = paid_order(db, purchase_date=PURCHASE)
    context = browser.new_context(locale="ja-JP" if lang == "ja" else "en-US",
                                  viewport={"width": width, "height": 900})
    context.set_default_timeout(5000)
    page = context.new_page()
    link = magic_links.plans_link(settings, "buyer@example.com")
    page.goto(live_server + link.removeprefix(settings.base_url))
    page.locator("form.card button[type=submit]").click()
    page.wait_for_url("**/my/plans*")
    label = "製造番号(シリアル番号)" if lang == "ja" else "Serial number"
    field = page.get_by_label(label)
    # A line break cannot be typed into a one-line field; a 65-character serial can.
    field.fill("X" * 65)
    page.get_by_role("button", name="製造番号を登録" if lang == "ja" else "Save serial number"
                     ).click()
    error = page.locator(f"#serial_number-{contract.public_id}-error")
    assert ("1〜64文字" if lang == "ja" else "1 to 64 characters") in error.inner_text()
    assert page.get_by_label(label).get_attribute("aria-invalid") == "true"
    page.get_by_label(label).fill(" ＳＮ－１２３ ")
    page.get_by_role("button", name="製造番号を登録" if lang == "ja" else "Save serial number"
                     ).click()
    page.wait_for_url(f"**#plan-{contract.public_id}")
    assert page.get_by_label(label).input_value() == "SN-123"
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    context.close()
    db.rollback()
    stored = db.exec(select(Contract).where(Contract.id == contract.id)
                     .execution_options(populate_existing=True)).one()
    assert stored.serial_number == "SN-123"
