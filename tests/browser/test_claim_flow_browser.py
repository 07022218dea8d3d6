"""A real browser: a customer files a claim with a photo on the Japanese page, staff approve
it, the customer sees the new status. Screenshots go to artifacts/."""

from pathlib import Path

from tests.factories import PNG, STAFF_PASSWORD, add_staff, paid_order
from tests.http.web.pages import PURCHASE
from warranty.auth import links as magic_links

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"


def test_customer_files_staff_approve_customer_sees_it(browser, live_server, db, settings,
                                                       tmp_path, request):
    ARTIFACTS.mkdir(exist_ok=True)
    backend = request.node.callspec.id
    paid_order(db, purchase_date=PURCHASE, email="hanako@example.jp")
    add_staff(db, email="alice@store.example", role="admin")
    photo = tmp_path / "壊れたテレビ.png"
    photo.write_bytes(PNG)

    customer = browser.new_context(locale="ja-JP", extra_http_headers={
        "Accept-Language": "ja-JP,ja;q=0.9"})
    page = customer.new_page()
    link = magic_links.plans_link(settings, "hanako@example.jp").removeprefix(settings.base_url)
    page.goto(live_server + link)  # the mailed link's confirmation page
    page.get_by_role("button", name="ログインする").click()
    page.wait_for_url("**/my/plans")
    assert page.locator("h1").inner_text() == "ご契約一覧"
    page.get_by_role("link", name="修理・保証を申請する").click()
    page.get_by_label("故障・事故の発生日").fill("2025-03-01")
    page.get_by_label("故障(機械的・電気的な不具合)").check()
    page.get_by_label("状況の説明").fill("電源が入らなくなりました。<script>alert(1)</script>")
    page.get_by_label("写真・書類").set_input_files(str(photo))
    page.screenshot(path=str(ARTIFACTS / f"claim-form-ja-{backend}.png"), full_page=True)
    page.get_by_role("button", name="申請する").click()
    page.wait_for_url("**/my/claims/*")
    assert page.locator("#claim-status").inner_text() == "審査中"
    assert "<script>alert(1)</script>" in page.locator("#claim-description").inner_text()
    assert page.get_by_role("link", name="壊れたテレビ.png").count() == 1
    page.screenshot(path=str(ARTIFACTS / f"claim-filed-ja-{backend}.png"), full_page=True)
    claim_url = page.url

    staff = browser.new_context(locale="en-US")
    desk = staff.new_page()
    desk.goto(live_server + "/staff/claims")
    desk.get_by_label("Email").fill("alice@store.example")
    desk.get_by_label("Password").fill(STAFF_PASSWORD)
    desk.get_by_role("button", name="Sign in").click()
    desk.wait_for_url("**/staff/claims")
    assert desk.locator("#count-in_review").inner_text() == "1"
    desk.get_by_role("link", name=claim_url.rsplit("/", 1)[1]).click()
    desk.get_by_label("Decision").select_option("repair")
    desk.get_by_label("Approved cost").fill("25000")
    desk.get_by_label("Note to the customer").fill("提携修理店で修理します。")
    desk.get_by_role("button", name="Approve").click()
    desk.wait_for_load_state()
    assert desk.locator("#claim-status").inner_text() == "Approved"  # a label, not the code
    desk.screenshot(path=str(ARTIFACTS / f"claim-approved-staff-{backend}.png"), full_page=True)

    page.reload()
    assert page.locator("#claim-status").inner_text() == "承認"
    assert page.get_by_text("修理で対応します。").count() == 1
    assert page.get_by_text("提携修理店で修理します。").count() == 1
    page.screenshot(path=str(ARTIFACTS / f"claim-approved-ja-{backend}.png"), full_page=True)
    customer.close()
    staff.close()
