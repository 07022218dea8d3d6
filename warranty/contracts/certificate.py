"""The warranty certificate (保証書) of a contract: a PDF in Japanese or English.

Written with reportlab and its built-in CID font HeiseiKakuGo-W5 (Adobe-Japan1), which PDF
readers supply themselves: no font file is shipped or needed, on any machine, and the same
font carries the Latin text and the store's product titles in either language. Everything
it states comes from the contract as sold (its dates, cap schedule and deductible), the
terms version it was sold under (the cancellation conditions, repair-only, the exclusions
of its rule set) and the store's provider settings.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from decimal import Decimal
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle
from sqlmodel import Session

from warranty.contracts.models import Contract
from warranty.core import i18n, money
from warranty.core.settings import Settings
from warranty.orders.models import Order
from warranty.pricing import rules as pricing_rules
from warranty.pricing import terms

FONT = "HeiseiKakuGo-W5"
NO_SERIAL = "—"


def _font() -> str:
    """Register the CID font once per process (reportlab keeps a registry)."""
    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    return FONT


@dataclass(frozen=True)
class Certificate:
    """What a certificate states, in one language (the PDF lays it out)."""

    lang: str
    title: str
    rows: list[tuple[str, str]]
    caps: list[str]
    sections: list[terms.Section]
    filename: str


def serial_of(contract: Contract) -> str:
    """The product's serial number registered with the contract, or a dash."""
    serial = getattr(contract, "serial_number", None)
    return serial.strip() if isinstance(serial, str) and serial.strip() else NO_SERIAL


def cap_lines(lang: str, contract: Contract) -> list[str]:
    """The cap of every coverage year the term has: amount and percentage of the price."""
    years = -(-contract.term_months // 12)
    schedule = [str(p) for p in contract.liability_schedule] or ["100"]
    lines = []
    for year in range(1, years + 1):
        pct = schedule[min(year, len(schedule)) - 1]
        amount = money.percent_of(contract.product_price, Decimal(pct))
        lines.append(i18n.t(lang, "cert.cap_year", year=year,
                            amount=money.format_amount(amount, contract.currency),
                            percent=terms.percent_text(pct)))
    return lines


def describe(*, session: Session, settings: Settings, contract: Contract,
             lang: str) -> Certificate:
    """The certificate's content for ``contract`` in ``lang``."""
    lang = i18n.pick(lang)
    t = i18n.t
    order = session.get(Order, contract.order_id)
    rule_version, conditions = terms.resolve(session, contract.terms_version, settings)
    rules = pricing_rules.get_version(session, rule_version)
    provider = terms.provider_of(settings)
    dash = "—"
    fmt = money.format_amount
    rows = [
        (t(lang, "cert.contract"), contract.public_id),
        (t(lang, "cert.order"), order.store_order_ref if order else dash),
        (t(lang, "cert.customer"), contract.customer_email),
        (t(lang, "cert.provider"), provider.legal_name or dash),
        (t(lang, "cert.address"), provider.address or dash),
        (t(lang, "cert.contact"), provider.contact or dash),
        (t(lang, "cert.product"), f"{contract.product_title} ({contract.sku})"),
        (t(lang, "cert.serial"), serial_of(contract)),
        (t(lang, "cert.plan"), terms.plan_name(lang, contract.coverage, contract.term_months)),
        (t(lang, "cert.price"), fmt(contract.price, contract.currency)),
        (t(lang, "cert.purchase_date"), contract.purchase_date.isoformat()),
        (t(lang, "cert.term"), f"{contract.purchase_date.isoformat()} – "
                               f"{contract.term_end.isoformat()}"),
        (t(lang, "cert.breakdown_start"), contract.breakdown_start.isoformat()),
    ]
    if contract.accident_start:
        rows.append((t(lang, "cert.accident_start"), contract.accident_start.isoformat()))
    if contract.waiting_until:
        rows.append((t(lang, "cert.waiting_until"), contract.waiting_until.isoformat()))
    rows += [
        (t(lang, "cert.deductible"), fmt(contract.deductible, contract.currency)),
        (t(lang, "cert.status"), t(lang, f"cstatus.{contract.status}")),
        (t(lang, "cert.terms_version"), contract.terms_version),
    ]
    claims_url = settings.base_url.rstrip("/") + "/my/plans"
    sections = [
        terms.Section(t(lang, "terms.h.covers"), terms.covers(lang, contract.coverage)),
        terms.Section(t(lang, "terms.h.settlement"), [terms.settlement_text(lang, conditions)]),
        terms.Section(t(lang, "terms.h.exclusions"),
                      terms.exclusions(lang, rules, contract.warranty_category,
                                       contract.coverage)),
        terms.Section(t(lang, "terms.h.claims"),
                      terms.how_to_claim(lang, conditions, claims_url)),
        terms.Section(t(lang, "terms.h.cancellation"), terms.cancellation_text(lang, conditions)),
        terms.Section(t(lang, "terms.h.version"), [
            t(lang, "terms.version", version=contract.terms_version),
            t(lang, "cert.terms_at", url=terms.url(settings, contract.terms_version,
                                                   contract.warranty_category,
                                                   contract.plan_code))]),
    ]
    return Certificate(lang=lang, title=t(lang, "cert.title"), rows=rows,
                       caps=cap_lines(lang, contract), sections=sections,
                       filename=f"certificate-{contract.public_id}-{lang}.pdf")


def render(certificate: Certificate) -> bytes:
    """The certificate as PDF bytes (A4)."""
    font = _font()
    # Japanese lines may break between any two characters; English ones only at spaces.
    wrap = "CJK" if certificate.lang == "ja" else None
    body = ParagraphStyle("body", fontName=font, fontSize=9.5, leading=14, wordWrap=wrap)
    heading = ParagraphStyle("heading", parent=body, fontSize=11.5, leading=17, spaceBefore=8)
    title = ParagraphStyle("title", parent=body, fontSize=18, leading=24, spaceAfter=6)

    def para(text: str, style=body) -> Paragraph:
        """Storefront text is escaped: it is shown, never read as markup."""
        return Paragraph(escape(text), style)

    table_rows = [[para(name), para(value)] for name, value in certificate.rows]
    table_rows.append([para(i18n.t(certificate.lang, "cert.caps")),
                       [para(line) for line in certificate.caps]])
    table = Table(table_rows, colWidths=[48 * mm, 122 * mm])
    table.setStyle(TableStyle([
        ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
        ("BACKGROUND", (0, 0), (0, -1), colors.whitesmoke),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ]))
    story = [para(certificate.title, title), table]
    for section in certificate.sections:
        story.append(para(section.heading, heading))
        story += [para(f"・{text}" if len(section.paragraphs) > 1 else text)
                  for text in section.paragraphs]
    story.append(Spacer(1, 6 * mm))
    out = io.BytesIO()
    doc = SimpleDocTemplate(out, pagesize=A4, leftMargin=20 * mm, rightMargin=20 * mm,
                            topMargin=18 * mm, bottomMargin=18 * mm,
                            title=certificate.title, author="warranty",
                            subject=certificate.filename)
    doc.build(story)
    return out.getvalue()


def certificate_pdf(*, session: Session, settings: Settings, contract: Contract,
                    lang: str) -> tuple[str, bytes]:
    """(file name, PDF bytes) of ``contract``'s certificate in ``lang``."""
    described = describe(session=session, settings=settings, contract=contract, lang=lang)
    return described.filename, render(described)
