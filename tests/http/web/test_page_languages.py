"""The page language through HTTP: staff pages in Japanese and English, the language switch
that keeps a mailed link's token, error pages in the page's language, and times on the
store's clock."""

from __future__ import annotations

import html as html_lib
import re
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlmodel import select

from tests.factories import add_staff, paid_order
from tests.http.web.pages import PURCHASE, csrf, link_token, sign_in_customer, sign_in_staff
from warranty.auth import links as magic_links
from warranty.claims import filing
from warranty.claims.models import Claim, ClaimEvent
from warranty.http.app import create_app

TEMPLATES = Path(__file__).resolve().parents[3] / "warranty" / "http" / "templates"
SWITCH = re.compile(r'<a class="lang-switch" href="([^"]+)" lang="(\w+)"')
JA, EN = {"Accept-Language": "ja-JP,ja;q=0.9"}, {"Accept-Language": "en-US,en;q=0.9"}


def _switch(html: str) -> tuple[str, str]:
    """The language switch of a page: (href, language it switches to)."""
    match = SWITCH.search(html)
    assert match, "no language switch on the page"
    return html_lib.unescape(match.group(1)), match.group(2)


def _claim(db, settings, **overrides) -> Claim:
    _, (contract,) = paid_order(db, purchase_date=PURCHASE, plan_code="accident-36")
    fields = {"customer_email": "buyer@example.com", "incident_date": date(2025, 3, 1),
              "failure_type": "breakdown", "description": "No picture.",
              "estimated_amount": 30000, "files": [], "actor": "customer:buyer@example.com",
              "today": date(2026, 1, 1)} | overrides
    claim = filing.file_claim(session=db, settings=settings, contract=contract, **fields)
    db.commit()
    return claim


# --- the switch keeps the link's token -------------------------------------------------


@pytest.mark.parametrize(("start", "other"), [("ja", "en"), ("en", "ja")])
def test_the_switch_on_a_mailed_links_page_keeps_its_token(client, db, settings, start, other):
    paid_order(db, purchase_date=PURCHASE)
    link = magic_links.plans_link(settings, "buyer@example.com", lang=start)
    path = link.removeprefix(settings.base_url)
    page = client.get(path)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and f'<html lang="{start}">' in html
    href, lang = _switch(html)
    assert lang == other
    assert href == f"/my/sign-in?token={link_token(link)}&lang={other}"
    switched = client.get(href)
    html = switched.get_data(as_text=True)
    assert switched.status_code == 200, html  # before: the token was dropped, a 403
    assert f'<html lang="{other}">' in html and "buyer@example.com" in html
    # the switched page signs in as the first did
    answer = client.post("/my/sign-in", data={"csrf_token": csrf(client, href),
                                              "token": link_token(link)})
    assert answer.status_code == 303
    plans = client.get("/my/plans").get_data(as_text=True)
    assert f'<html lang="{other}">' in plans and "Test TV" in plans


def test_the_switch_on_a_page_answering_a_form_keeps_the_token_of_the_form(client, db,
                                                                           settings):
    claim = _claim(db, settings, today=date(2026, 6, 1), incident_date=date(2024, 6, 1),
                   lang="en")
    assert claim.status == "denied"
    from warranty.notify.models import MailMessage

    mail = db.exec(select(MailMessage).where(MailMessage.kind == "claim_nps")).one()
    path = re.search(r"(/my/nps\?token=\S+)", mail.body).group(1)
    nps_token = path.split("token=")[1].split("&")[0]
    bad = client.post("/my/nps", data={"csrf_token": csrf(client, path), "token": nps_token,
                                       "score": "11"})
    assert bad.status_code == 422
    href, lang = _switch(bad.get_data(as_text=True))
    assert (href, lang) == (f"/my/nps?token={nps_token}&lang=ja", "ja")
    again = client.get(href)
    assert again.status_code == 200 and '<html lang="ja">' in again.get_data(as_text=True)


def test_the_switch_keeps_the_rest_of_the_query(client, db):
    add_staff(db)
    sign_in_staff(client)
    page = client.get("/staff/claims?status=in_review&page=1", headers=EN)
    href, lang = _switch(page.get_data(as_text=True))
    assert (href, lang) == ("/staff/claims?status=in_review&page=1&lang=ja", "ja")


# --- staff pages in Japanese and English ---------------------------------------------------


def test_staff_pages_in_japanese_and_english(client, db, settings):
    add_staff(db)
    claim = _claim(db, settings)
    login = client.get("/staff/login", headers=JA).get_data(as_text=True)
    assert '<html lang="ja">' in login and "スタッフログイン" in login and "パスワード" in login
    login = client.get("/staff/login", headers=EN).get_data(as_text=True)
    assert '<html lang="en">' in login and "Staff sign-in" in login and "Password" in login
    # a browser that states no language: English, as the staff pages were before
    assert "Staff sign-in" in client.get("/staff/login").get_data(as_text=True)
    sign_in_staff(client)
    queue = client.get("/staff/claims?lang=ja").get_data(as_text=True)
    assert '<html lang="ja">' in queue and "<h1>申請</h1>" in queue and claim.public_id in queue
    assert "ログアウト" in queue and "顧客" in queue
    # remembered for the next pages, whatever the browser says
    review = client.get(f"/staff/claims/{claim.public_id}", headers=EN).get_data(as_text=True)
    assert '<html lang="ja">' in review and "承認する" in review and "否認する" in review
    assert "上限の残り" in review and "Approve" not in review
    history = client.get("/staff/customers?email=buyer@example.com").get_data(as_text=True)
    assert "顧客の履歴" in history and "注文(1)" in history
    attention = client.get("/staff/attention").get_data(as_text=True)
    assert "対応が必要な項目" in attention
    review = client.get(f"/staff/claims/{claim.public_id}?lang=en").get_data(as_text=True)
    assert '<html lang="en">' in review and "Approve" in review and "承認する" not in review


def test_a_staff_action_refused_is_told_in_the_pages_language(client, db, settings):
    add_staff(db)
    claim = _claim(db, settings)
    sign_in_staff(client)
    page = f"/staff/claims/{claim.public_id}"
    client.get(f"{page}?lang=ja")
    refused = client.post(f"{page}/deny", data={"csrf_token": csrf(client, page),
                                                "reason": "  "})
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422
    assert "否認の理由を入力してください" in html and '<html lang="ja">' in html
    # the page answers a POST: its switch leads to the claim's own page
    assert _switch(html) == (f"{page}?lang=en", "en")
    client.get(f"{page}?lang=en")
    refused = client.post(f"{page}/deny", data={"csrf_token": csrf(client, page),
                                                "reason": "  "})
    assert "give the customer a reason for the denial" in refused.get_data(as_text=True)


def test_a_wrong_staff_password_in_japanese(client, db):
    add_staff(db)
    token = csrf(client, "/staff/login?lang=ja")
    wrong = client.post("/staff/login", data={"email": "alice@store.example",
                                              "password": "nope", "csrf_token": token})
    html = wrong.get_data(as_text=True)
    assert wrong.status_code == 401
    assert "メールアドレスまたはパスワードが正しくありません。" in html


# --- error pages in the page's language ----------------------------------------------------


@pytest.mark.parametrize(("headers", "lang", "title", "text"), [
    (JA, "ja", "ページが見つかりません", "お探しのページは見つかりませんでした"),
    (EN, "en", "Page not found", "The requested URL was not found"),
])
def test_a_404_page_in_the_pages_language(client, headers, lang, title, text):
    page = client.get("/my/no-such-page", headers=headers)
    html = page.get_data(as_text=True)
    assert page.status_code == 404 and page.mimetype == "text/html"
    assert f'<html lang="{lang}">' in html and f"<h1>{title}</h1>" in html and text in html
    assert "<code>not_found</code>" in html


def test_error_pages_of_staff_and_customers_in_japanese(client, db, settings):
    add_staff(db)
    sign_in_staff(client)
    client.get("/staff/claims?lang=ja")
    missing = client.get("/staff/claims/clm_nope").get_data(as_text=True)
    assert "この申請は見つかりませんでした。" in missing and "申請一覧へ戻る" in missing
    bad_page = client.get("/staff/claims?page=x")
    assert bad_page.status_code == 400
    assert "ページ番号は1〜9999の整数で指定してください。" in bad_page.get_data(as_text=True)
    refused = client.post("/staff/claims/clm_nope/deny", data={"reason": "x"})  # no CSRF
    assert refused.status_code == 400
    assert "フォームの有効期限が切れました" in refused.get_data(as_text=True)
    # a customer's page that needs the mailed link: 403 in the customer's language
    paid_order(db, purchase_date=PURCHASE, order_ref="A-7")
    customer = create_app(settings).test_client()
    token = csrf(customer)
    customer.post("/my/plans", headers=EN, data={"csrf_token": token, "order_ref": "A-7",
                                                 "email": "buyer@example.com"})
    claim = _claim(db, settings)
    forbidden = customer.get(f"/my/claims/{claim.public_id}", headers=EN)
    assert forbidden.status_code == 403
    assert '<html lang="en">' in forbidden.get_data(as_text=True)


@pytest.mark.parametrize(("headers", "title", "text"), [
    (JA, "システムエラー", "システムで問題が発生しました。変更は行われていません。"),
    (EN, "Something went wrong", "something went wrong on our side; nothing was changed"),
])
def test_a_500_page_in_the_pages_language(settings, headers, title, text):
    app = create_app(settings)

    def boom():
        raise RuntimeError("a bug")

    app.add_url_rule("/my/boom", "boom", boom)  # an unhandled error inside a page
    page = app.test_client().get("/my/boom", headers=headers)
    html = page.get_data(as_text=True)
    assert page.status_code == 500 and f"<h1>{title}</h1>" in html and text in html
    assert "a bug" not in html and "<code>internal_error</code>" in html


def test_json_errors_are_unchanged(client):
    answer = client.get("/api/v1/claims/clm_nope", headers={"Accept": "application/json",
                                                            **JA})
    assert answer.status_code in (401, 404) and answer.json["error"]["code"]


# --- times in the store's time zone ------------------------------------------------------------


def _stamp(db, claim: Claim, when: datetime) -> None:
    db.get(Claim, claim.id).created_at = when
    for event in db.exec(select(ClaimEvent).where(ClaimEvent.claim_id == claim.id)).all():
        event.created_at = when
    db.commit()


def test_times_on_pages_are_on_the_stores_clock(client, db, settings):
    add_staff(db)
    claim = _claim(db, settings)
    _stamp(db, claim, datetime(2026, 1, 1, 23, 30, tzinfo=UTC))  # 08:30 on the 2nd in Tokyo
    sign_in_staff(client)
    review = client.get(f"/staff/claims/{claim.public_id}").get_data(as_text=True)
    assert "2026-01-02 08:30 JST" in review and "UTC" not in review
    assert "2026-01-02 08:30:00 JST" in review  # the timeline, to the second
    queue = client.get("/staff/claims").get_data(as_text=True)
    assert "<td>2026-01-02</td>" in queue
    sign_in_customer(client, settings)
    page = client.get(f"/my/claims/{claim.public_id}").get_data(as_text=True)
    assert "2026-01-02 08:30 JST" in page
    assert 'datetime="2026-01-01T23:30:00Z"' in page


def test_another_store_time_zone(settings, db):
    app = create_app(settings.model_copy(update={"timezone": "America/New_York"}))
    client = app.test_client()
    add_staff(db)
    claim = _claim(db, settings)
    _stamp(db, claim, datetime(2026, 1, 1, 23, 30, tzinfo=UTC))
    sign_in_staff(client)
    review = client.get(f"/staff/claims/{claim.public_id}").get_data(as_text=True)
    assert "2026-01-01 18:30 EST" in review


def test_no_template_formats_a_time_itself():
    offenders = [str(path.relative_to(TEMPLATES)) for path in TEMPLATES.rglob("*.html")
                 if "strftime" in path.read_text(encoding="utf-8")]
    assert offenders == []
