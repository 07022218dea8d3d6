"""Customer pages through HTTP: sign-in, language, filing with files, ownership, escaping."""

import io
import re
from datetime import date

import pytest
import requests
from sqlmodel import select

from tests.factories import EXE, JPEG, PDF, PNG, paid_order
from tests.http.web.pages import CSRF, PURCHASE, csrf, link_token, multipart, sign_in_customer
from warranty.auth import links as magic_links
from warranty.auth.models import AuthSession, UsedLink
from warranty.claims import attachments as uploads
from warranty.claims import filing, nps, queries, workflow
from warranty.claims.models import Claim, ClaimFile, NpsAnswer
from warranty.notify.models import MailMessage

SCRIPT = "<script>alert(1)</script>"


def _form(token, **overrides):
    """A valid claim form (breakdown after the manufacturer's warranty)."""
    data = {"csrf_token": token, "incident_date": "2025-03-01", "failure_type": "breakdown",
            "description": "画面が映らなくなりました。", "estimated_amount": ""}
    data.update(overrides)
    return data


def _file_claim(client, contract, **overrides):
    """Post the claim form for ``contract``."""
    path = f"/my/plans/{contract.public_id}/claims/new"
    return client.post(path, **multipart(_form(csrf(client, path), **overrides)))


def test_find_plans_by_email_and_order_reference(client, db):
    paid_order(db, purchase_date=PURCHASE, email="Buyer@Example.com", order_ref="A-1001")
    page = client.get("/my/plans", headers={"Accept-Language": "ja"})
    assert "ご契約の確認" in page.get_data(as_text=True)
    token = csrf(client)
    wrong = client.post("/my/plans", data={"csrf_token": token, "email": "buyer@example.com",
                                           "order_ref": "A-9999"})
    assert wrong.status_code == 422
    assert "ご契約は見つかりませんでした" in wrong.get_data(as_text=True)
    missing = client.post("/my/plans", data={"csrf_token": token, "email": "nope",
                                             "order_ref": ""})
    html = missing.get_data(as_text=True)
    assert 'id="email-error"' in html and 'id="order_ref-error"' in html
    assert 'aria-invalid="true"' in html
    ok = client.post("/my/plans", data={"csrf_token": token, "email": " BUYER@example.com",
                                        "order_ref": "A-1001"})
    assert ok.status_code == 302
    plans = client.get("/my/plans").get_data(as_text=True)
    assert "Test TV" in plans and "buyer@example.com" in plans


def _confirm(client, path: str):
    """Open a mailed link's page and press its button; (page, answer)."""
    page = client.get(path)
    token = CSRF.search(page.get_data(as_text=True))
    answer = client.post("/my/sign-in", data={
        "csrf_token": token.group(1) if token else "", "token": link_token(path)})
    return page, answer


def test_a_magic_link_get_signs_nobody_in_the_post_does_once(client, db, settings):
    paid_order(db, purchase_date=PURCHASE)
    link = magic_links.plans_link(settings, "buyer@example.com")
    path = link.removeprefix(settings.base_url)
    # A mail scanner, a link preview, the customer, and the address links had before:
    # GETs change nothing.
    for url in (f"/my/plans?token={link_token(path)}", path, path):
        page = client.get(url, headers={"Accept-Language": "en"})
        html = page.get_data(as_text=True)
        assert page.status_code == 200 and "Sign in as buyer@example.com" in html
        assert 'action="/my/sign-in"' in html and 'method="post"' in html
    assert "Test TV" not in client.get("/my/plans").get_data(as_text=True)
    assert db.exec(select(AuthSession)).all() == [] and db.exec(select(UsedLink)).all() == []
    db.commit()  # end the read (SQLite keeps its snapshot otherwise)
    _, answer = _confirm(client, path)
    assert answer.status_code == 303 and answer.headers["Location"] == "/my/plans"
    assert "Test TV" in client.get("/my/plans").get_data(as_text=True)
    (row,) = db.exec(select(AuthSession)).all()
    assert (row.kind, row.subject, row.scope, row.created_by) == (
        "customer", "buyer@example.com", "full", "link")
    db.commit()
    # The spent link: a readable page offering a new one, in the page's language.
    other = client.application.test_client()
    again = other.get(path, headers={"Accept-Language": "ja"})
    html = again.get_data(as_text=True)
    assert again.status_code == 410 and "このリンクはすでに使用されています" in html
    assert "新しいリンクを送信" in html and 'action="/my/plans-link"' in html
    assert other.post("/my/sign-in", data={"csrf_token": csrf(other, path),
                                           "token": link_token(path)}).status_code == 410
    assert "Test TV" not in other.get("/my/plans").get_data(as_text=True)
    renew = other.post("/my/plans-link", data={"csrf_token": csrf(other, path),
                                               "token": link_token(path)},
                       headers={"Accept-Language": "en"})
    assert renew.status_code == 200 and "a link to them is on its way" in renew.get_data(
        as_text=True)
    db.commit()
    mail = db.exec(select(MailMessage).where(MailMessage.kind == "plans_link")).one()
    assert mail.to == "buyer@example.com" and link_token(path) not in mail.body


def test_revoking_a_customer_voids_the_links_mailed_before(client, db, settings, monkeypatch):
    """``warranty revoke-customer-sessions`` is what a store runs when someone else read the
    customer's mail: the links in the mails sent until then (a week's worth, each still
    unused) sign nobody in afterwards; a link mailed later does."""
    import time

    from click.testing import CliRunner

    from warranty.cli import main

    paid_order(db, purchase_date=PURCHASE)
    mailed = magic_links.plans_link(settings, "buyer@example.com").removeprefix(
        settings.base_url)
    for name, value in {"WARRANTY_ENV": "test", "WARRANTY_DATABASE_URL": settings.database_url,
                        "WARRANTY_SECRET_KEY": settings.secret_key}.items():
        monkeypatch.setenv(name, value)
    done = CliRunner().invoke(main, ["revoke-customer-sessions", "Buyer@example.com"])
    assert done.exit_code == 0 and "links mailed until now" in done.output, done.output
    page, answer = _confirm(client, mailed)
    assert page.status_code == 403 and "Sign in as" not in page.get_data(as_text=True)
    assert answer.status_code == 403 and "Test TV" not in client.get("/my/plans").get_data(
        as_text=True)
    db.commit()  # end the read (SQLite)
    assert db.exec(select(AuthSession)).all() == []
    time.sleep(1.1)  # links carry their time in whole seconds
    _, later = _confirm(client, magic_links.plans_link(settings, "buyer@example.com")
                        .removeprefix(settings.base_url))
    assert later.status_code == 303 and "Test TV" in client.get("/my/plans").get_data(
        as_text=True)


def test_a_claim_mail_leads_through_the_confirm_page_to_the_claim(client, db, settings):
    _, (contract,) = paid_order(db, purchase_date=PURCHASE)
    claim = filing.file_claim(session=db, settings=settings, contract=contract,
                              customer_email="buyer@example.com",
                              incident_date=date(2025, 3, 1), failure_type="breakdown",
                              description="x", estimated_amount=None, files=[],
                              actor="customer:x", today=date(2026, 1, 1), lang="en")
    db.commit()
    mail = db.exec(select(MailMessage).where(MailMessage.kind == "claim_in_review")).one()
    path = re.search(r"(/my/sign-in\?token=\S+)", mail.body).group(1)
    assert "lang=en" in path and "next=" not in path  # where it leads is signed inside
    page, answer = _confirm(client, path)
    assert '<html lang="en">' in page.get_data(as_text=True)
    assert answer.status_code == 303
    assert answer.headers["Location"] == f"/my/claims/{claim.public_id}"
    # Opening it again while signed in as that customer just goes there.
    assert client.get(path).headers["Location"] == f"/my/claims/{claim.public_id}"


def test_a_forged_or_outdated_link_gets_a_readable_page(client, settings):
    response = client.get("/my/sign-in?token=forged.token", headers={"Accept": "text/html"})
    assert response.status_code == 403
    html = response.get_data(as_text=True)
    assert "invalid_link" in html and 'href="/static/style.css"' in html
    assert 'name="email"' in html  # ask for a new link by address
    old = magic_links.make_token(settings, "plans", {"email": "a@example.com"})
    for path in (f"/my/sign-in?token={old}", f"/my/plans?token={old}"):  # old mails
        page = client.get(path, headers={"Accept-Language": "en"})
        html = page.get_data(as_text=True)
        assert page.status_code == 403 and "Mail me a new link" in html
        assert 'name="email"' not in html  # the address comes from the old link itself


def test_an_email_and_order_reference_show_that_one_order_read_only(client, db, settings):
    _, (mine,) = paid_order(db, purchase_date=PURCHASE, order_ref="A-1001")
    _, (other_order,) = paid_order(db, purchase_date=PURCHASE, order_ref="A-2002",
                                   sku="TV-2")
    claim = filing.file_claim(session=db, settings=settings, contract=mine,
                              customer_email="buyer@example.com",
                              incident_date=date(2025, 3, 1), failure_type="breakdown",
                              description="private words", estimated_amount=None,
                              files=[uploads.Upload("r.pdf", PDF)], actor="customer:x",
                              today=date(2026, 1, 1))
    db.commit()
    (row,) = queries.files_of(db, claim)
    db.commit()
    ok = client.post("/my/plans", data={"csrf_token": csrf(client), "email": "Buyer@Example.com",
                                        "order_ref": "A-1001"})
    assert ok.status_code == 302
    page = client.get("/my/plans", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Plans of order A-1001" in page and mine.public_id in page
    assert other_order.public_id not in page and claim.public_id not in page
    assert "/claims/new" not in page and "private words" not in page
    assert "Mail me my link" in page and 'name="email"' not in page
    html = {"Accept": "text/html", "Accept-Language": "en"}
    for path in (f"/my/claims/{claim.public_id}",
                 f"/my/claims/{claim.public_id}/files/{row.public_id}",
                 f"/my/plans/{mine.public_id}/claims/new",
                 f"/my/plans/{other_order.public_id}/claims/new"):
        refused = client.get(path, headers=html)
        text = refused.get_data(as_text=True)
        assert refused.status_code == 403 and "This page needs the link we mail you" in text
        assert "private words" not in text and refused.data != PDF
    filed = client.post(f"/my/plans/{mine.public_id}/claims/new", data=_form(csrf(client)),
                        headers=html)
    assert filed.status_code == 403 and len(db.exec(select(Claim)).all()) == 1
    db.commit()
    # The button mails the sign-in link to the address, which then shows everything.
    sent = client.post("/my/plans-link", data={"csrf_token": csrf(client)}, headers=html)
    assert sent.status_code == 200 and "on its way" in sent.get_data(as_text=True)
    db.commit()
    mail = db.exec(select(MailMessage).where(MailMessage.kind == "plans_link")).one()
    assert mail.to == "buyer@example.com"
    path = re.search(r"(/my/sign-in\?token=\S+)", mail.body).group(1)
    assert _confirm(client, path)[1].status_code == 303
    full = client.get("/my/plans").get_data(as_text=True)
    assert other_order.public_id in full and claim.public_id in full


def test_the_find_form_mails_the_link_and_never_says_who_has_plans(client, db):
    paid_order(db, purchase_date=PURCHASE, email="buyer@example.com")
    form = client.get("/my/plans", headers={"Accept-Language": "ja"}).get_data(as_text=True)
    assert "リンクをメールで受け取る" in form and 'action="/my/plans-link"' in form
    answers = [client.post("/my/plans-link", data={"csrf_token": csrf(client), "email": email},
                           headers={"Accept-Language": "ja"})
               for email in ("buyer@example.com", "nobody@example.com")]
    assert [a.status_code for a in answers] == [200, 200]
    assert answers[0].get_data(as_text=True) == answers[1].get_data(as_text=True)
    assert [m.to for m in db.exec(select(MailMessage)).all()] == ["buyer@example.com"]
    bad = client.post("/my/plans-link", data={"csrf_token": csrf(client), "email": "nope"})
    assert bad.status_code == 422 and 'id="link_email-error"' in bad.get_data(as_text=True)


def test_logout_ends_the_customer_session_on_the_server(live_server, db):
    paid_order(db, purchase_date=PURCHASE)
    browser, thief = requests.Session(), requests.Session()
    browser.get(f"{live_server}/my/plans?lang=en", timeout=10)
    form = CSRF.search(browser.get(f"{live_server}/my/plans", timeout=10).text).group(1)
    found = browser.post(f"{live_server}/my/plans", timeout=10, data={
        "csrf_token": form, "email": "buyer@example.com", "order_ref": "A-1001"})
    assert "Test TV" in found.text and '<html lang="en">' in found.text
    thief.cookies.update(browser.cookies)  # every cookie the browser holds, copied
    assert "Test TV" in thief.get(f"{live_server}/my/plans", timeout=10).text
    page = browser.get(f"{live_server}/my/plans", timeout=10).text
    browser.post(f"{live_server}/my/logout", timeout=10,
                 data={"csrf_token": CSRF.search(page).group(1)})
    assert "Test TV" not in thief.get(f"{live_server}/my/plans", timeout=10).text
    after = browser.get(f"{live_server}/my/plans", timeout=10).text
    assert "Test TV" not in after and '<html lang="en">' in after  # the language stays
    db.commit()
    assert db.exec(select(AuthSession)).one().revoked_at is not None


def test_language_from_accept_language_and_a_remembered_switch(client, db, settings):
    paid_order(db, purchase_date=PURCHASE)
    sign_in_customer(client, settings)
    english = client.get("/my/plans", headers={"Accept-Language": "en-US,en;q=0.9"})
    html = english.get_data(as_text=True)
    assert '<html lang="en">' in html and "My plans" in html
    assert 'href="/my/plans?lang=ja"' in html  # the visible switch
    assert '<html lang="ja">' in client.get("/my/plans").get_data(as_text=True)
    client.get("/my/plans?lang=en")
    remembered = client.get("/my/plans", headers={"Accept-Language": "ja"})
    assert '<html lang="en">' in remembered.get_data(as_text=True)


def test_filing_a_claim_with_a_photo_in_japanese(client, db, settings):
    _, (contract,) = paid_order(db, purchase_date=PURCHASE)
    sign_in_customer(client, settings)
    path = f"/my/plans/{contract.public_id}/claims/new"
    form = client.get(path).get_data(as_text=True)
    assert '<label for="incident_date">故障・事故の発生日</label>' in form
    response = client.post(path, **multipart(_form(csrf(client, path),
                                                   files=[(io.BytesIO(JPEG), "テレビ.jpg")])))
    assert response.status_code == 303
    claim = db.exec(select(Claim)).one()
    assert response.headers["Location"] == f"/my/claims/{claim.public_id}"
    assert (claim.status, claim.lang, claim.customer_email) == ("in_review", "ja",
                                                                 "buyer@example.com")
    stored = db.exec(select(ClaimFile)).one()
    assert stored.original_name == "テレビ.jpg" and stored.content_type == "image/jpeg"
    assert re.fullmatch(r"[0-9a-f]{32}\.jpg", stored.stored_name)
    assert uploads.path_of(settings.upload_dir, stored.stored_name).read_bytes() == JPEG
    db.commit()  # end the read so the app may write (SQLite); nothing is expired
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "審査中" in page and "テレビ.jpg" in page and "申請を受け付けました" in page


def test_the_rules_reason_is_shown_to_the_customer(client, db, settings):
    _, (contract,) = paid_order(db, purchase_date=PURCHASE)
    sign_in_customer(client, settings)
    response = _file_claim(client, contract, incident_date="2024-06-01")
    page = client.get(response.headers["Location"],
                      headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Denied" in page and "Covered by the manufacturer" in page


def test_field_errors_are_shown_next_to_the_fields(client, db, settings):
    _, (contract,) = paid_order(db, purchase_date=PURCHASE)
    sign_in_customer(client, settings)
    future = _file_claim(client, contract, incident_date="2099-01-01", description="",
                         failure_type="flood", estimated_amount="12,3a")
    assert future.status_code == 422
    html = future.get_data(as_text=True)
    assert '<p class="error" id="incident_date-error">未来の日付は入力できません。</p>' in html
    assert 'id="description-error"' in html and 'id="failure_type-error"' in html
    assert 'id="estimated_amount-error"' in html
    assert 'aria-describedby="incident_date-hint incident_date-error"' in html
    bad_date = _file_claim(client, contract, incident_date="2027-02-30")
    assert "YYYY-MM-DD" in bad_date.get_data(as_text=True)
    assert db.exec(select(Claim)).all() == []


@pytest.mark.parametrize(("files", "message"), [
    ([(EXE, "photo.jpg")], "photo.jpg はJPEG・PNG・WebP・HEICの写真または"),
    ([(JPEG + b"\0" * uploads.MAX_FILE_BYTES, "huge.jpg")], "huge.jpg は10MBを超えています"),
    ([(PNG, f"{i}.png") for i in range(6)], "ファイルは最大5点"),
])
def test_upload_limits_on_the_form(client, db, settings, files, message):
    _, (contract,) = paid_order(db, purchase_date=PURCHASE)
    sign_in_customer(client, settings)
    response = _file_claim(client, contract,
                           files=[(io.BytesIO(data), name) for data, name in files])
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert 'id="files-error"' in html and message in html
    assert db.exec(select(Claim)).all() == [] and db.exec(select(ClaimFile)).all() == []
    folder = uploads.path_of(settings.upload_dir, "x").parent
    assert not folder.exists() or list(folder.iterdir()) == []


def test_csrf_is_required_on_every_form(client, db, settings):
    _, (contract,) = paid_order(db, purchase_date=PURCHASE)
    sign_in_customer(client, settings)
    response = client.post(f"/my/plans/{contract.public_id}/claims/new",
                           data=_form("wrong-token"), content_type="multipart/form-data",
                           headers={"Accept": "text/html"})
    assert response.status_code == 400 and "csrf_failed" in response.get_data(as_text=True)
    assert client.post("/my/logout").status_code == 400
    assert db.exec(select(Claim)).all() == []


def test_another_customers_plans_and_claims_are_404_on_every_route(client, db, settings):
    _, (theirs,) = paid_order(db, purchase_date=PURCHASE, email="other@example.com",
                              order_ref="B-1")
    _, (mine,) = paid_order(db, purchase_date=PURCHASE, email="buyer@example.com",
                            order_ref="A-1")
    claim = filing.file_claim(session=db, settings=settings, contract=theirs,
                              customer_email="other@example.com",
                              incident_date=date(2025, 3, 1), failure_type="breakdown",
                              description="theirs", estimated_amount=None,
                              files=[uploads.Upload("r.pdf", PDF)], actor="customer:other",
                              today=date(2026, 6, 1))
    workflow.request_info(session=db, settings=settings, claim=claim, message="more?",
                        actor="staff:x")
    db.commit()
    (row,) = queries.files_of(db, claim)
    db.commit()
    sign_in_customer(client, settings, "buyer@example.com")
    token = csrf(client)
    html = {"Accept": "text/html"}
    responses = [
        client.get(f"/my/plans/{theirs.public_id}/claims/new", headers=html),
        client.post(f"/my/plans/{theirs.public_id}/claims/new", data=_form(token),
                    headers=html),
        client.get(f"/my/claims/{claim.public_id}", headers=html),
        client.post(f"/my/claims/{claim.public_id}/resubmit", data=_form(token), headers=html),
        client.get(f"/my/claims/{claim.public_id}/files/{row.public_id}", headers=html),
        client.get(f"/my/plans/{theirs.public_id}", headers=html),
        client.get(f"/my/plans/{theirs.public_id}/cancel", headers=html),
        client.post(f"/my/plans/{theirs.public_id}/cancel",
                    data={"csrf_token": token, "amount": str(theirs.price)}, headers=html),
    ]
    assert [r.status_code for r in responses] == [404] * 8
    assert all("theirs" not in r.get_data(as_text=True) for r in responses)
    assert theirs.public_id not in client.get("/my/plans").get_data(as_text=True)
    assert mine.public_id in client.get("/my/plans").get_data(as_text=True)
    db.refresh(claim)
    assert claim.status == "info_requested"


def test_signed_out_visitors_are_sent_to_sign_in(client, db):
    _, (contract,) = paid_order(db, purchase_date=PURCHASE)
    for path in (f"/my/plans/{contract.public_id}/claims/new", "/my/claims/cl_x",
                 "/my/claims/cl_x/files/fl_y"):
        response = client.get(path)
        assert response.status_code == 302 and response.headers["Location"] == "/my/plans"


def test_user_text_is_escaped_on_customer_pages(client, db, settings):
    _, (contract,) = paid_order(db, purchase_date=PURCHASE)
    sign_in_customer(client, settings)
    response = _file_claim(client, contract, description=SCRIPT,
                           files=[(io.BytesIO(PNG), '<img src=x onerror=alert(1)>.png')])
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert SCRIPT not in page and "<img src=x" not in page
    rerender = _file_claim(client, contract, description=SCRIPT, incident_date="")
    assert SCRIPT not in rerender.get_data(as_text=True)


def test_pages_send_a_strict_content_security_policy(client):
    response = client.get("/my/plans")
    assert "script-src" not in response.headers["Content-Security-Policy"]
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    html = response.get_data(as_text=True)
    assert "<script" not in html and 'style="' not in html  # nothing the CSP would block


def test_the_owner_downloads_an_attachment_safely(client, db, settings):
    _, (contract,) = paid_order(db, purchase_date=PURCHASE)
    sign_in_customer(client, settings)
    response = _file_claim(client, contract, files=[(io.BytesIO(PDF), "quote.pdf")])
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    link = re.search(r'href="(/my/claims/[^"]+/files/[^"]+)"', page).group(1)
    with client.get(link) as download:
        assert download.status_code == 200 and download.data == PDF
        assert download.headers["Content-Type"] == "application/pdf"
        assert download.headers["Content-Disposition"].startswith("attachment;")
        assert download.headers["X-Content-Type-Options"] == "nosniff"


def test_an_answer_to_more_information_adds_to_the_claim(client, db, settings):
    _, (contract,) = paid_order(db, purchase_date=PURCHASE)
    sign_in_customer(client, settings)
    response = _file_claim(client, contract)
    claim = db.exec(select(Claim)).one()
    filed = (claim.description, claim.incident_date, claim.failure_type)
    workflow.request_info(session=db, settings=settings, claim=claim,
                        message="Please add a photo of the label.", actor="staff:x")
    db.commit()
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Please add a photo of the label." in page and 'name="message"' in page
    assert 'name="incident_date"' not in page  # what was filed is not offered for rewriting
    path = f"/my/claims/{claim.public_id}/resubmit"
    token = csrf(client, response.headers["Location"])
    empty = client.post(path, **multipart({"csrf_token": token, "message": " "}))
    assert empty.status_code == 422 and "入力してください。" in empty.get_data(as_text=True)
    again = client.post(path, **multipart({"csrf_token": token,
                                           "message": "Label photo attached. <b>x</b>",
                                           "files": [(io.BytesIO(JPEG), "label.jpg")]}))
    assert again.status_code == 303
    db.refresh(claim)
    assert claim.status == "in_review"
    assert (claim.description, claim.incident_date, claim.failure_type) == filed
    assert [f.original_name for f in queries.files_of(db, claim)] == ["label.jpg"]
    assert [(m.author, m.body) for m in queries.messages(db, claim)] == [
        ("staff", "Please add a photo of the label."),
        ("customer", "Label photo attached. <b>x</b>")]
    shown = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Label photo attached. &lt;b&gt;x&lt;/b&gt;" in shown  # the history, escaped
    assert "Please add a photo of the label." in shown


def test_nps_question_once_per_closed_claim(client, db, settings):
    _, (contract,) = paid_order(db, purchase_date=PURCHASE)
    claim = filing.file_claim(session=db, settings=settings, contract=contract,
                              customer_email="buyer@example.com",
                              incident_date=date(2024, 6, 1), failure_type="breakdown",
                              description="x", estimated_amount=None, files=[],
                              actor="customer:x", today=date(2026, 6, 1), lang="en")
    db.commit()
    assert claim.status == "denied"
    mail = db.exec(select(MailMessage).where(MailMessage.kind == "claim_nps")).one()
    db.commit()
    path = re.search(r"(/my/nps\?token=\S+)", mail.body).group(1)
    page = client.get(path).get_data(as_text=True)
    assert "How likely are you to recommend us" in page and 'value="10"' in page
    token = csrf(client, path)
    nps_token = path.split("token=")[1].split("&")[0]
    bad = client.post("/my/nps", data={"csrf_token": token, "token": nps_token, "score": "11"})
    assert bad.status_code == 422 and 'id="score-error"' in bad.get_data(as_text=True)
    ok = client.post("/my/nps", data={"csrf_token": token, "token": nps_token, "score": "9",
                                      "comment": SCRIPT})
    assert "Thank you" in ok.get_data(as_text=True)
    again = client.post("/my/nps", data={"csrf_token": token, "token": nps_token, "score": "0"})
    assert "already answered" in again.get_data(as_text=True)
    (answer,) = db.exec(select(NpsAnswer)).all()
    assert (answer.score, answer.comment, answer.claim_id) == (9, SCRIPT, claim.id)


def test_nps_link_only_for_closed_claims(client, db, settings):
    _, (contract,) = paid_order(db, purchase_date=PURCHASE)
    claim = filing.file_claim(session=db, settings=settings, contract=contract,
                              customer_email="buyer@example.com",
                              incident_date=date(2025, 6, 1), failure_type="breakdown",
                              description="x", estimated_amount=None, files=[],
                              actor="customer:x", today=date(2026, 6, 1))
    db.commit()
    link = nps.nps_link(settings, claim).removeprefix(settings.base_url)
    assert client.get(link, headers={"Accept": "text/html"}).status_code == 403
