"""A real browser, phone and desktop widths, Japanese and English: the language switch on a
mailed link's page keeps its token (it used to drop it: a 403), error pages come in the
page's language, staff pages are in both languages with times on the store's clock.
Screenshots go to artifacts/."""

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlmodel import select

from tests.factories import STAFF_PASSWORD, add_staff, paid_order
from tests.http.web.pages import PURCHASE
from warranty.auth import links as magic_links
from warranty.claims import filing
from warranty.claims.models import Claim, ClaimEvent

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
OTHER = {"ja": "en", "en": "ja"}
TEXT = {
    "ja": {"sign_in": "ログインする", "plans": "ご契約一覧", "not_found": "ページが見つかりません",
           "switch": "日本語", "staff_login": "スタッフログイン", "email": "メールアドレス",
           "password": "パスワード", "staff_sign_in": "ログイン", "queue": "申請",
           "approve": "承認する", "timeline": "経過", "filed": "申請日時",
           "staff_back": "申請一覧へ戻る"},
    "en": {"sign_in": "Sign in", "plans": "My plans", "not_found": "Page not found",
           "switch": "English", "staff_login": "Staff sign-in", "email": "Email",
           "password": "Password", "staff_sign_in": "Sign in", "queue": "Claims",
           "approve": "Approve", "timeline": "Timeline", "filed": "Filed",
           "staff_back": "Back to the claims"},
}
CASES = [("ja", 390), ("en", 1280), ("ja", 1280), ("en", 390)]


def _fits(page) -> bool:
    """No sideways scrolling at this width."""
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def _context(browser, lang: str, width: int):
    accept = "ja-JP,ja;q=0.9" if lang == "ja" else "en-US,en;q=0.9"
    return browser.new_context(viewport={"width": width, "height": 900},
                               locale="ja-JP" if lang == "ja" else "en-US",
                               extra_http_headers={"Accept-Language": accept})


@pytest.mark.parametrize(("lang", "width"), CASES)
def test_the_switch_keeps_a_mailed_links_token_and_errors_follow_the_language(
        browser, live_server, db, settings, request, lang, width):
    ARTIFACTS.mkdir(exist_ok=True)
    backend = request.node.callspec.id.split("-")[0]
    other = OTHER[lang]
    paid_order(db, purchase_date=PURCHASE, email="hanako@example.jp")
    link = magic_links.plans_link(settings, "hanako@example.jp", lang=lang)
    context = _context(browser, lang, width)
    page = context.new_page()
    page.goto(live_server + link.removeprefix(settings.base_url))
    assert page.locator("html").get_attribute("lang") == lang
    page.get_by_role("link", name=TEXT[other]["switch"]).click()
    page.wait_for_load_state()
    assert "token=" in page.url and f"lang={other}" in page.url
    assert page.locator("html").get_attribute("lang") == other
    button = page.get_by_role("button", name=TEXT[other]["sign_in"])
    assert button.is_visible() and _fits(page)
    page.screenshot(path=str(ARTIFACTS / f"switch-sign-in-{lang}-to-{other}-{width}-"
                                         f"{backend}.png"), full_page=True)
    button.click()
    page.wait_for_url("**/my/plans")
    assert page.locator("h1").inner_text() == TEXT[other]["plans"]

    response = page.goto(live_server + "/my/claims/clm_nope")
    assert response.status == 404
    assert page.locator("html").get_attribute("lang") == other
    assert page.locator("h1").inner_text() == TEXT[other]["not_found"]
    assert page.locator("code").first.inner_text() == "unknown_claim" and _fits(page)
    page.screenshot(path=str(ARTIFACTS / f"error-404-{other}-{width}-{backend}.png"),
                    full_page=True)
    context.close()


def _claim(db, settings) -> Claim:
    _, (contract,) = paid_order(db, purchase_date=PURCHASE, email="hanako@example.jp",
                                plan_code="accident-36")
    claim = filing.file_claim(session=db, settings=settings, contract=contract,
                              customer_email="hanako@example.jp",
                              incident_date=date(2025, 3, 1), failure_type="breakdown",
                              description="電源が入りません。", estimated_amount=30000,
                              files=[], actor="customer:hanako@example.jp",
                              today=date(2026, 1, 1))
    db.commit()
    when = datetime(2026, 1, 1, 23, 30, tzinfo=UTC)  # 08:30 on 2 January in Tokyo
    db.get(Claim, claim.id).created_at = when
    for event in db.exec(select(ClaimEvent).where(ClaimEvent.claim_id == claim.id)).all():
        event.created_at = when
    db.commit()
    return claim


@pytest.mark.parametrize(("lang", "width"), CASES)
def test_staff_pages_in_the_browsers_language_and_switched(browser, live_server, db, settings,
                                                           request, lang, width):
    ARTIFACTS.mkdir(exist_ok=True)
    backend = request.node.callspec.id.split("-")[0]
    text, other = TEXT[lang], OTHER[lang]
    add_staff(db, email="alice@store.example", role="admin")
    claim = _claim(db, settings)
    context = _context(browser, lang, width)
    page = context.new_page()
    page.goto(live_server + "/staff/claims")
    assert page.locator("html").get_attribute("lang") == lang
    assert page.locator("h1").inner_text() == text["staff_login"] and _fits(page)
    page.screenshot(path=str(ARTIFACTS / f"staff-login-{lang}-{width}-{backend}.png"),
                    full_page=True)
    page.get_by_label(text["email"]).fill("alice@store.example")
    page.get_by_label(text["password"]).fill(STAFF_PASSWORD)
    page.get_by_role("button", name=text["staff_sign_in"], exact=True).click()
    page.wait_for_url("**/staff/claims")
    assert page.locator("h1").inner_text() == text["queue"]
    page.screenshot(path=str(ARTIFACTS / f"staff-queue-{lang}-{width}-{backend}.png"),
                    full_page=True)
    page.get_by_role("link", name=claim.public_id).click()
    page.wait_for_url(f"**/staff/claims/{claim.public_id}")
    assert page.get_by_role("button", name=text["approve"], exact=True).is_visible()
    assert page.get_by_role("heading", name=text["timeline"]).is_visible()
    assert page.get_by_text("2026-01-02 08:30 JST").count() == 1  # filed, on Tokyo's clock
    assert page.get_by_text("2026-01-02 08:30:00 JST").count() >= 1  # the timeline
    page.screenshot(path=str(ARTIFACTS / f"staff-claim-{lang}-{width}-{backend}.png"),
                    full_page=True)

    page.get_by_role("link", name=TEXT[other]["switch"]).click()
    page.wait_for_url(f"**/staff/claims/{claim.public_id}?lang={other}")
    assert page.locator("html").get_attribute("lang") == other
    assert page.get_by_role("button", name=TEXT[other]["approve"], exact=True).is_visible()
    page.goto(live_server + "/staff/claims")  # remembered without ?lang=
    assert page.locator("h1").inner_text() == TEXT[other]["queue"]

    response = page.goto(live_server + "/staff/claims/clm_nope")
    assert response.status == 404 and page.locator("html").get_attribute("lang") == other
    assert page.get_by_role("link", name=TEXT[other]["staff_back"]).is_visible()
    assert _fits(page)
    page.screenshot(path=str(ARTIFACTS / f"staff-error-404-{other}-{width}-{backend}.png"),
                    full_page=True)
    context.close()
