"""A real browser opens a mailed link: the confirmation page, then the plans; the same link
again offers a new one; an order reference shows one order. Phone and desktop widths, in
Japanese and English. Screenshots go to artifacts/."""

from pathlib import Path

import pytest
from sqlmodel import select

from tests.factories import paid_order
from tests.http.web.pages import PURCHASE
from warranty.auth import links as magic_links
from warranty.notify.models import MailMessage

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
TEXT = {
    "ja": {"sign_in": "ログインする", "plans": "ご契約一覧",
           "as": "hanako@example.jp としてログイン",
           "spent": "このリンクはすでに使用されています", "renew": "新しいリンクを送信",
           "sent": "メールをご確認ください", "find": "契約を表示",
           "scoped": "ご注文 A-1001 のプラン", "link": "リンクを送信"},
    "en": {"sign_in": "Sign in", "plans": "My plans", "as": "Sign in as hanako@example.jp",
           "spent": "This link has already been used", "renew": "Mail me a new link",
           "sent": "Check your mail", "find": "Show my plans",
           "scoped": "Plans of order A-1001", "link": "Mail me my link"},
}


def _fits(page) -> bool:
    """No sideways scrolling at this width."""
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


@pytest.mark.parametrize(("lang", "width"), [("ja", 390), ("en", 1280), ("ja", 1280),
                                             ("en", 390)])
def test_a_mailed_link_confirm_page_then_a_spent_link(browser, live_server, db, settings,
                                                      request, lang, width):
    ARTIFACTS.mkdir(exist_ok=True)
    backend = request.node.callspec.id.split("-")[0]
    text = TEXT[lang]
    paid_order(db, purchase_date=PURCHASE, email="hanako@example.jp")
    link = magic_links.plans_link(settings, "hanako@example.jp", lang=lang)
    path = link.removeprefix(settings.base_url)

    def context():
        return browser.new_context(viewport={"width": width, "height": 900},
                                   locale="ja-JP" if lang == "ja" else "en-US")

    first = context()
    page = first.new_page()
    page.goto(live_server + path)
    assert page.locator("html").get_attribute("lang") == lang
    assert text["as"] in page.locator("#sign-in-as").inner_text()
    assert page.get_by_role("button", name=text["sign_in"]).is_visible() and _fits(page)
    page.screenshot(path=str(ARTIFACTS / f"sign-in-confirm-{lang}-{width}-{backend}.png"),
                    full_page=True)
    page.get_by_role("button", name=text["sign_in"]).click()
    page.wait_for_url("**/my/plans")
    assert page.locator("h1").inner_text() == text["plans"] and _fits(page)
    assert page.get_by_text("Test TV").count() == 1

    second = context()  # the same link, again (another browser, or later)
    again = second.new_page()
    again.goto(live_server + path)
    assert text["spent"] in again.locator("#link-problem").inner_text() and _fits(again)
    again.screenshot(path=str(ARTIFACTS / f"sign-in-spent-{lang}-{width}-{backend}.png"),
                     full_page=True)
    again.get_by_role("button", name=text["renew"]).click()
    again.wait_for_load_state()
    assert again.locator("h1").inner_text() == text["sent"] and _fits(again)
    db.commit()
    mail = db.exec(select(MailMessage).where(MailMessage.kind == "plans_link")).one()
    assert mail.to == "hanako@example.jp"
    first.close()
    second.close()


@pytest.mark.parametrize(("lang", "width"), [("ja", 390), ("en", 1280)])
def test_an_order_reference_shows_one_order_and_offers_the_link(browser, live_server, db,
                                                                request, lang, width):
    ARTIFACTS.mkdir(exist_ok=True)
    backend = request.node.callspec.id.split("-")[0]
    text = TEXT[lang]
    paid_order(db, purchase_date=PURCHASE, email="hanako@example.jp", order_ref="A-1001")
    paid_order(db, purchase_date=PURCHASE, email="hanako@example.jp", order_ref="B-2002",
               sku="TV-2")
    context = browser.new_context(viewport={"width": width, "height": 900},
                                  locale="ja-JP" if lang == "ja" else "en-US")
    page = context.new_page()
    page.goto(f"{live_server}/my/plans?lang={lang}")
    page.locator("#email").fill("hanako@example.jp")
    page.locator("#order_ref").fill("A-1001")
    page.get_by_role("button", name=text["find"]).click()
    page.wait_for_url("**/my/plans")
    assert page.locator("h1").inner_text() == text["scoped"] and _fits(page)
    assert page.locator("section.card h2").count() == 1  # one order's one plan
    page.screenshot(path=str(ARTIFACTS / f"order-view-{lang}-{width}-{backend}.png"),
                    full_page=True)
    page.get_by_role("button", name=text["link"]).click()
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == text["sent"]
    context.close()
