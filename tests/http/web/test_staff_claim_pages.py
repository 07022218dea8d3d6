"""The staff claim pages through HTTP: labels instead of codes (ja and en), photo previews,
"payable now" only until paid, and a staff note that reaches the customer's mail."""

from __future__ import annotations

import io
import re
from datetime import date

from sqlmodel import select

from tests.factories import JPEG, PDF, PNG, add_staff, paid_order
from tests.http.web.pages import PURCHASE, csrf, sign_in_staff
from warranty.claims import attachments as uploads
from warranty.claims import filing
from warranty.http.app import create_app
from warranty.notify.mail import run_mail
from warranty.notify.models import MailMessage


def _claim(db, settings, *, files=(), email="buyer@example.com", lang="ja"):
    """A breakdown claim in review on an accident plan (committed)."""
    _, (contract,) = paid_order(db, purchase_date=PURCHASE, email=email,
                                plan_code="accident-36")
    claim = filing.file_claim(session=db, settings=settings, contract=contract,
                              customer_email=email, incident_date=date(2025, 3, 1),
                              failure_type="breakdown", description="No picture.",
                              estimated_amount=30000,
                              files=[uploads.Upload(filename=n, data=d) for n, d in files],
                              actor=f"customer:{email}", today=date(2026, 1, 1), lang=lang)
    db.commit()
    return claim


def _post(client, claim, action, **form):
    """Post one of the review page's forms."""
    page = f"/staff/claims/{claim.public_id}"
    form["csrf_token"] = csrf(client, page)
    return client.post(f"{page}/{action}", data=form)


def _fetch(client, url: str):
    """GET a file: the response read whole and closed (a file's stream is left open else)."""
    response = client.get(url)
    response.get_data()
    response.close()
    return response


def _text(html: str) -> str:
    """What a reader sees of a page: its text without tags."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_labels_instead_of_codes_in_both_languages(client, db, settings):
    add_staff(db, role="finance")
    claim = _claim(db, settings)
    sign_in_staff(client)
    queue = _text(client.get("/staff/claims").get_data(as_text=True))
    assert "In review" in queue and "Breakdown" in queue and "Electronics" in queue
    assert "in_review" not in queue and "electronics" not in queue
    _post(client, claim, "approve", decision="repair", amount="25000")
    _post(client, claim, "pay", method="repair_vendor", reference="RO-1")
    review = _text(client.get(f"/staff/claims/{claim.public_id}").get_data(as_text=True))
    for shown in ("Breakdown and accident, 36 months", "Repair, ¥25,000",
                  "¥25,000 by Repair vendor RO-1", "Approved", "Paid"):
        assert shown in review, shown
    for code in ("accident-36", "repair_vendor", "in_review", " repair,"):
        assert code not in review, code
    ja = _text(client.get(f"/staff/claims/{claim.public_id}?lang=ja").get_data(as_text=True))
    for shown in ("故障・事故保証 36か月", "修理, ¥25,000", "修理業者", "支払い済み", "審査中"):
        assert shown in ja, shown
    assert "repair_vendor" not in ja and "in_review" not in ja


def test_payable_now_disappears_once_paid(client, db, settings):
    add_staff(db, role="finance")
    claim = _claim(db, settings)
    sign_in_staff(client)
    assert 'id="payable"' not in client.get(f"/staff/claims/{claim.public_id}").get_data(
        as_text=True)
    _post(client, claim, "approve", decision="repair", amount="25000")
    approved = client.get(f"/staff/claims/{claim.public_id}").get_data(as_text=True)
    assert re.search(r'id="payable">¥25,000<', approved)
    _post(client, claim, "pay", method="bank_transfer")
    paid = client.get(f"/staff/claims/{claim.public_id}").get_data(as_text=True)
    assert 'id="payable"' not in paid and "Payable now" not in paid
    assert re.search(r'id="claim-paid">¥25,000 by Bank transfer', paid)


def test_photos_preview_inline_sandboxed_and_pdfs_are_links(client, db, settings):
    add_staff(db)
    claim = _claim(db, settings, files=[("tv.jpg", JPEG), ("back.png", PNG),
                                        ("receipt.pdf", PDF)])
    sign_in_staff(client)
    page = client.get(f"/staff/claims/{claim.public_id}").get_data(as_text=True)
    previews = re.findall(r'<img class="preview" src="([^"]+)" alt="([^"]+)"', page)
    assert [alt for _, alt in previews] == ["tv.jpg", "back.png"]
    for src, _ in previews:
        shown = _fetch(client, src)
        assert shown.status_code == 200 and shown.mimetype in ("image/jpeg", "image/png")
        assert shown.headers["Content-Disposition"].startswith("inline")
        assert shown.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"
        assert shown.headers["X-Content-Type-Options"] == "nosniff"
    pdf_link = re.search(r'<a href="([^"]+)">receipt.pdf</a>', page).group(1)
    pdf = _fetch(client, pdf_link)
    assert pdf.mimetype == "application/pdf"
    assert pdf.headers["Content-Disposition"].startswith("attachment")
    # Asked for as a preview, a PDF is still a download, never drawn by the browser.
    pdf_preview = _fetch(client, pdf_link + "/preview")
    assert pdf_preview.headers["Content-Disposition"].startswith("attachment")
    # The page itself may show only its own images.
    assert "img-src 'self'" in client.get(
        f"/staff/claims/{claim.public_id}").headers["Content-Security-Policy"]


def test_previews_need_a_staff_session(client, db, settings, app):
    claim = _claim(db, settings, files=[("tv.jpg", JPEG)])
    add_staff(db)
    sign_in_staff(client)
    src = re.search(r'<img class="preview" src="([^"]+)"', client.get(
        f"/staff/claims/{claim.public_id}").get_data(as_text=True)).group(1)
    stranger = app.test_client()
    res = _fetch(stranger, src)
    assert res.status_code == 302 and res.headers["Location"].startswith("/staff/login")


def test_a_staff_note_reaches_the_customers_mail(mail_settings, db, smtp_sink):
    app = create_app(mail_settings)
    client = app.test_client()
    add_staff(db)
    claim = _claim(db, mail_settings, email="note@example.com", lang="en")
    sign_in_staff(client)
    note = "We will pick it up on Monday.\nKeep the box, please."
    assert _post(client, claim, "approve", decision="repair", amount="25000",
                 note=note).status_code == 303
    mail = db.exec(select(MailMessage).where(MailMessage.kind == "claim_approved")).one()
    assert "A note from us:\nWe will pick it up on Monday.\nKeep the box, please." in mail.body
    db.commit()
    smtp_sink.clear()
    assert run_mail(settings=mail_settings, limit=20) >= 1
    received = smtp_sink.wait_for(1, to="note@example.com")
    assert any("We will pick it up on Monday." in m.body for m in received)


def test_a_staff_note_in_japanese_mail(client, db, settings):
    add_staff(db)
    claim = _claim(db, settings, email="ja@example.com", lang="ja")
    sign_in_staff(client)
    _post(client, claim, "approve", decision="replace", amount="25000", note="交換品を発送します。")
    mail = db.exec(select(MailMessage).where(MailMessage.kind == "claim_approved")).one()
    assert "担当者からのメッセージ:\n交換品を発送します。" in mail.body
    assert "製品を交換します。" in mail.body


def test_an_approval_without_a_note_mails_no_note(client, db, settings):
    add_staff(db)
    claim = _claim(db, settings, email="quiet@example.com", lang="en")
    sign_in_staff(client)
    _post(client, claim, "approve", decision="repair", amount="25000", note="  ")
    mail = db.exec(select(MailMessage).where(MailMessage.kind == "claim_approved")).one()
    assert "A note from us" not in mail.body


def test_uploaded_bytes_shown_are_the_stored_ones(client, db, settings):
    add_staff(db)
    claim = _claim(db, settings, files=[("tv.png", PNG)])
    sign_in_staff(client)
    src = re.search(r'<img class="preview" src="([^"]+)"', client.get(
        f"/staff/claims/{claim.public_id}").get_data(as_text=True)).group(1)
    assert _fetch(client, src).data == io.BytesIO(PNG).getvalue()
