"""A real browser: the customer of an expired plan sees the filing deadline and files a claim
for an incident inside the term (phone width in English, desktop width in Japanese)."""

from datetime import date
from pathlib import Path

import pytest

from tests.factories import paid_order
from warranty.auth import links as magic_links
from warranty.claims import rules
from warranty.contracts import lifecycle as contracts
from warranty.core.dates import store_today

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"


@pytest.mark.parametrize(("lang", "width", "texts"), [
    ("en", 390, {"sign_in": "Sign in", "status": "Expired", "file": "File a claim",
                 "date": "Date of the incident",
                 "breakdown": "Breakdown (mechanical or electrical failure)",
                 "describe": "Describe what happened", "send": "Send claim",
                 "review": "In review",
                 "until": "Incidents up to 2026-05-31 can be claimed until {deadline}."}),
    ("ja", 1280, {"sign_in": "ログインする", "status": "期間満了", "file": "修理・保証を申請する",
                  "date": "故障・事故の発生日",
                  "breakdown": "故障(機械的・電気的な不具合)", "describe": "状況の説明",
                  "send": "申請する", "review": "審査中",
                  "until": "保証期間内(2026-05-31まで)に起きた故障・事故は{deadline}まで"
                           "申請できます。"}),
])
def test_expired_plan_files_a_claim_within_the_window(browser, live_server, db, settings,
                                                      request, lang, width, texts):
    ARTIFACTS.mkdir(exist_ok=True)
    backend = request.node.callspec.id
    _, (contract,) = paid_order(db, purchase_date=date(2023, 6, 1), email="hanako@example.jp")
    contracts.expire_ended(session=db, today=store_today(settings.timezone), limit=10)
    db.commit()
    deadline = rules.filing_deadline(contract, settings.claim_filing_days_after_term)
    context = browser.new_context(locale="ja-JP" if lang == "ja" else "en-US",
                                  viewport={"width": width, "height": 900},
                                  extra_http_headers={"Accept-Language": lang})
    page = context.new_page()
    link = magic_links.plans_link(settings, "hanako@example.jp").removeprefix(settings.base_url)
    page.goto(live_server + link)
    page.get_by_role("button", name=texts["sign_in"]).click()  # the link's confirmation page
    page.wait_for_url("**/my/plans")
    assert page.locator(".status").first.inner_text() == texts["status"]
    until = texts["until"].format(deadline=deadline.isoformat())
    assert page.get_by_text(until).count() == 1
    assert page.evaluate("document.documentElement.scrollWidth") <= width  # no sideways scroll
    page.screenshot(path=str(ARTIFACTS / f"expired-plan-{lang}-{width}-{backend}.png"),
                    full_page=True)
    page.get_by_role("link", name=texts["file"]).click()
    page.get_by_label(texts["date"]).fill("2026-05-20")
    page.get_by_label(texts["breakdown"]).check()
    page.get_by_label(texts["describe"]).fill("No picture since May.")
    page.get_by_role("button", name=texts["send"]).click()
    page.wait_for_url("**/my/claims/*")
    assert page.locator("#claim-status").inner_text() == texts["review"]
    context.close()
