"""The certificate PDF (ja/en): its text, read back with pypdf, states the contract's figures;
it goes with the purchase mail and only its owner and staff may download it."""

from __future__ import annotations

import io
import re
from datetime import date

import pypdf
from sqlmodel import select

from tests.factories import add_staff, paid_order
from tests.http.web.pages import sign_in_customer, sign_in_staff
from warranty.contracts import certificate
from warranty.contracts import notices as notifications
from warranty.contracts.models import Contract
from warranty.notify.mail import run_mail
from warranty.notify.models import MailAttachment, MailMessage

PROVIDER = {"store_legal_name": "株式会社ミライ電機", "store_address": "東京都港区芝公園4-2-8",
            "store_contact": "support@mirai.example / 03-1234-5678"}


def text_of(data: bytes) -> str:
    """All the text of a PDF, its lines joined by spaces (the reader breaks lines anywhere)."""
    reader = pypdf.PdfReader(io.BytesIO(data))
    return " ".join(" ".join((page.extract_text() or "").split()) for page in reader.pages)


def _sold(db, **kwargs):
    """One accident plan on a ¥120,000 TV bought 2026-01-10 (the factory's 100/100/80 caps)."""
    _order, (contract,) = paid_order(db, plan_code="accident-36", purchase_date=date(2026, 1, 10),
                                     order_ref="A-3001", **kwargs)
    return contract


def test_the_english_certificate_states_the_contracts_figures(db, settings):
    contract = _sold(db)
    store = settings.model_copy(update=PROVIDER)
    name, data = certificate.certificate_pdf(session=db, settings=store, contract=contract,
                                             lang="en")
    assert name == f"certificate-{contract.public_id}-en.pdf" and data.startswith(b"%PDF-")
    text = text_of(data)
    for expected in (
            "Warranty certificate", contract.public_id, "A-3001", "buyer@example.com",
            "株式会社ミライ電機", "東京都港区芝公園4-2-8", "support@mirai.example / 03-1234-5678",
            "Test TV (TV-1)", "Serial number —",
            "Breakdown and accidental damage, 36 months",
            f"¥{contract.price:,}", "2026-01-10 – 2029-01-09",
            "Breakdown cover from 2027-01-10", "Accidental damage cover from 2026-01-10",
            "Deductible per claim ¥0",
            # The cap of each coverage year: 100%, 100%, 80% of ¥120,000.
            "Year 1: ¥120,000 (100%)", "Year 2: ¥120,000 (100%)", "Year 3: ¥96,000 (80%)",
            contract.terms_version, "Exclusions", "How to claim", "/my/plans",
            "Cancel within 30 days", "a cancellation fee of ¥0",
            f"/terms/{contract.terms_version}/electronics/accident-36"):
        assert expected in text, expected
    assert "Year 4" not in text


def test_the_japanese_certificate_renders_japanese_text(db, settings):
    contract = _sold(db, product_price=59800)
    store = settings.model_copy(update=PROVIDER)
    _name, data = certificate.certificate_pdf(session=db, settings=store, contract=contract,
                                              lang="ja")
    # Japanese lines break between any two characters: compare without the white space.
    text = re.sub(r"\s+", "", text_of(data))
    for expected in ("保証書", "契約番号", contract.public_id, "株式会社ミライ電機", "製造番号 —",
                     "故障・事故保証 36か月", "保証期間 2026-01-10 – 2029-01-09",
                     "故障の補償開始 2027-01-10", "免責金額(1回あたり) ¥0",
                     "1年目: ¥59,800(100%)", "3年目: ¥47,840(80%)", "補償の対象外",
                     "保証の申請方法", "解約と返金", "30日以内", contract.terms_version):
        assert expected.replace(" ", "") in text, expected
    # The font is reportlab's built-in CID font: named, not embedded (no font file needed).
    fonts = pypdf.PdfReader(io.BytesIO(data)).pages[0]["/Resources"]["/Font"]
    names = {str(font.get_object()["/BaseFont"]) for font in fonts.values()}
    assert any("HeiseiKakuGo-W5" in n for n in names)


def test_a_serial_number_is_shown_when_the_contract_has_one(db, settings):
    contract = _sold(db)
    assert certificate.serial_of(contract) == "—"
    if "serial_number" in Contract.model_fields:  # the field the serials work adds
        contract.serial_number = "SN-0042-XYZ"
    else:  # until it is merged: the attribute the certificate reads, set on this object
        object.__setattr__(contract, "serial_number", "SN-0042-XYZ")
    _name, data = certificate.certificate_pdf(session=db, settings=settings, contract=contract,
                                              lang="en")
    assert "Serial number SN-0042-XYZ" in text_of(data)


def test_storefront_text_is_shown_as_text(db, settings):
    contract = _sold(db)
    contract.product_title = "<b>TV</b> & <font size=40>big</font>"
    _name, data = certificate.certificate_pdf(session=db, settings=settings, contract=contract,
                                              lang="en")
    assert "<b>TV</b> & <font size=40>big</font>" in text_of(data)


def test_the_purchase_mail_carries_both_certificates_of_each_plan(db, mail_settings,
                                                                    smtp_sink):
    order, created = paid_order(db, quantity=2, plan_quantity=2,
                                purchase_date=date(2026, 1, 10), order_ref="A-3002")
    notifications.notify_contracts_created(session=db, settings=mail_settings, order=order,
                                           contracts=created)
    db.commit()
    stored = db.exec(select(MailAttachment).order_by(MailAttachment.id)).all()
    assert [a.filename for a in stored] == [
        f"certificate-{c.public_id}-{lang}.pdf" for c in created for lang in ("ja", "en")]
    assert run_mail(settings=mail_settings, limit=10) == 1
    (mail,) = smtp_sink.wait_for(1, to="buyer@example.com")
    assert "Your certificates (PDF) are attached." in mail.body
    version = created[0].terms_version
    assert (f"Terms (version {version}) / 保証規約(バージョン {version}): "
            f"{mail_settings.base_url}/terms/{version}/electronics/standard-36") in mail.body
    files = {part.get_filename(): part.get_content() for part in mail.message.iter_attachments()}
    assert sorted(files) == sorted(a.filename for a in stored)
    for contract in created:
        english = text_of(files[f"certificate-{contract.public_id}-en.pdf"])
        assert contract.public_id in english and "2026-01-10 – 2029-01-09" in english
        assert "保証書" in text_of(files[f"certificate-{contract.public_id}-ja.pdf"])
    db.rollback()  # a fresh read: the worker recorded the sending in its own transaction
    assert db.exec(select(MailMessage.status)).one() == "sent"


def test_the_customer_downloads_their_own_certificates_only(app, client, db, settings):
    mine = _sold(db)
    _other_order, (theirs,) = paid_order(db, email="other@example.com", order_ref="B-1")
    assert client.get(f"/my/contracts/{mine.public_id}/certificate.pdf").status_code == 302
    sign_in_customer(client, settings)
    plans = client.get("/my/plans?lang=en").get_data(as_text=True)
    assert f"/my/contracts/{mine.public_id}/certificate.pdf?lang=ja" in plans
    assert f"/terms/{mine.terms_version}/electronics/accident-36" in plans
    got = client.get(f"/my/contracts/{mine.public_id}/certificate.pdf?lang=en")
    assert got.status_code == 200 and got.mimetype == "application/pdf"
    assert got.headers["Cache-Control"] == "private, no-store"
    assert "attachment" in got.headers["Content-Disposition"]
    assert mine.public_id in text_of(got.data)
    assert "保証書" in text_of(client.get(
        f"/my/contracts/{mine.public_id}/certificate.pdf?lang=ja").data)
    # Someone else's plan is a 404, exactly like one that does not exist.
    for missing in (theirs.public_id, "ct_nope"):
        refused = client.get(f"/my/contracts/{missing}/certificate.pdf",
                             headers={"Accept": "text/html"})
        assert refused.status_code == 404 and refused.mimetype == "text/html"


def test_an_order_reference_shows_the_terms_and_offers_the_link_for_certificates(client, db):
    mine = _sold(db)
    page = client.get("/my/plans")
    token = page.get_data(as_text=True).split('name="csrf_token" value="')[1].split('"')[0]
    assert client.post("/my/plans", data={"csrf_token": token, "email": "buyer@example.com",
                                          "order_ref": "A-3001"}).status_code == 302
    plans = client.get("/my/plans").get_data(as_text=True)
    assert f"/terms/{mine.terms_version}/electronics/accident-36" in plans
    assert "certificate.pdf" not in plans
    # Like claims and files, a certificate needs the mailed link: the page offering it.
    refused = client.get(f"/my/contracts/{mine.public_id}/certificate.pdf")
    assert refused.status_code == 403 and refused.mimetype == "text/html"


def test_staff_download_any_certificate_from_the_customer_history(client, db):
    contract = _sold(db)
    assert client.get(f"/staff/contracts/{contract.public_id}/certificate.pdf"
                      ).status_code == 302  # to the sign-in form
    add_staff(db, role="support")
    sign_in_staff(client)
    history = client.get("/staff/customers?email=buyer@example.com").get_data(as_text=True)
    assert f"/staff/contracts/{contract.public_id}/certificate.pdf?lang=en" in history
    got = client.get(f"/staff/contracts/{contract.public_id}/certificate.pdf?lang=en")
    assert got.status_code == 200 and contract.public_id in text_of(got.data)
    assert client.get("/staff/contracts/ct_nope/certificate.pdf").status_code == 404
