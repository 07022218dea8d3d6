"""What customers and the store are told about contracts: mails and outbound webhooks.

Every function only *queues* rows in the caller's transaction (MailMessage,
OutboundWebhook); the worker sends them. So a notice exists exactly when the change it
reports was committed, and nothing is lost while SMTP or the store is down.
"""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import Session, select

from warranty.auth.links import MAX_AGE_SECONDS, plans_link
from warranty.contracts import certificate, payloads
from warranty.contracts.models import Contract
from warranty.core import i18n
from warranty.core.dates import utcnow
from warranty.core.i18n import t
from warranty.core.money import format_amount
from warranty.core.settings import Settings
from warranty.db.engine import advisory_lock, write_transaction
from warranty.notify.mail import Attachment, queue_mail
from warranty.notify.models import MailMessage
from warranty.notify.webhooks import queue_event
from warranty.orders.models import Order, OrderLine, Refund
from warranty.pricing import terms

# The purchase mail carries the certificates (ja and en) of its first few plans; the rest
# are on the customer's plans page (a 100-unit order makes no 200-file mail).
MAX_ATTACHED_CERTIFICATES = 5
PLANS_LINK_COOLDOWN_SECONDS = 120  # one plans-link mail per address per two minutes
_PLANS_LINK_LOCKS = 0x706C  # advisory lock namespace: one plans-link decision per address


# The contract mails are in English and Japanese at once (an order has no language of its
# own): each text is the catalog's (warranty/core/locales), joined "English / 日本語".


def both(key: str, **values: object) -> str:
    """``English / 日本語`` of one catalog text."""
    return f"{t('en', key, **values)} / {t('ja', key, **values)}"


def plan_name(contract: Contract) -> str:
    """``Standard (...) / スタンダード（故障）, 36 months / 36か月``."""
    coverage = f"mail.coverage.{contract.coverage}"
    return f"{both(coverage)}, {both('plans.months', months=contract.term_months)}"


def _plan_block(contract: Contract, settings: Settings) -> str:
    """The mail paragraph describing one contract: plan, dates, terms."""
    terms_url = terms.url(settings, contract.terms_version, contract.warranty_category,
                          contract.plan_code)
    caps = ", ".join(t("en", "mail.contract.cap_year", year=year, percent=pct)
                     for year, pct in enumerate(contract.liability_schedule, start=1))
    lines = [
        f"■ {contract.product_title} ({contract.sku})",
        f"  {both('mail.contract.contract')}: {contract.public_id}",
        f"  {both('mail.contract.plan')}: {plan_name(contract)}",
        f"  {both('mail.contract.price')}: {format_amount(contract.price, contract.currency)}",
        f"  {both('mail.contract.term')}: {contract.purchase_date.isoformat()} – "
        f"{contract.term_end.isoformat()}",
        f"  {both('mail.contract.breakdown_from')}: {contract.breakdown_start.isoformat()} "
        f"({both('mail.contract.after_maker')})",
    ]
    if contract.accident_start:
        lines.append(f"  {both('mail.contract.accident_from')}: "
                     f"{contract.accident_start.isoformat()}")
    if contract.waiting_until:
        until = contract.waiting_until.isoformat()
        lines.append(f"  {both('mail.contract.waiting')}: "
                     f"{both('mail.contract.waiting_text', date=until)}")
    lines += [
        f"  {both('mail.contract.deductible')}: "
        f"{format_amount(contract.deductible, contract.currency)}",
        f"  {both('mail.contract.caps')}: {caps}",
        f"  {both('terms.this_version', version=contract.terms_version)}: {terms_url}",
    ]
    return "\n".join(lines)


def _terms(conditions: terms.Conditions, currency: str) -> str:
    """The cancellation terms every purchase mail repeats, as the plans' terms version
    states them."""
    fee = format_amount(conditions.cancellation_fee, currency)
    days, window = conditions.free_look_days, conditions.claim_filing_days
    settle = (f"- {terms.settlement_text('en', conditions)} / "
              f"{terms.settlement_text('ja', conditions)}\n")
    return (
        f"{both('mail.terms.title')}:\n"
        f"- {t('en', 'mail.terms.cancel', days=days, fee=fee)}\n"
        f"- {t('ja', 'mail.terms.cancel', days=days, fee=fee)}\n"
        f"- {both('mail.terms.window', window=window)}\n"
        f"- {both('mail.terms.returns')}\n"
        f"{settle}"
        f"- {both('mail.terms.transfer')}"
    )


def _link_paragraph(settings: Settings, email: str, lang: str | None = None) -> str:
    """The sign-in link to the customer's plans page, how long it works, and that it works
    once."""
    days = MAX_AGE_SECONDS // 86400
    return (f"{both('mail.link.title')}:\n"
            f"{plans_link(settings, email, lang=lang)}\n"
            f"({both('mail.link.once', days=days)})")


def _event(session: Session, type: str, contract: Contract, order: Order, **extra) -> None:
    """Queue one contract event for the store."""
    queue_event(session=session, type=type,
                data={"contract": payloads.public_dict(contract, order), **extra})


def notify_fulfilled(*, session: Session, contract: Contract, reason: str,
                     claim: str, coverage_year: int) -> None:
    """Queue ``contract.fulfilled``: the plan has given what it covers (a replacement, or the
    coverage year's liability cap used up) and takes no more claims."""
    order = session.get(Order, contract.order_id)
    _event(session, "contract.fulfilled", contract, order, reason=reason, claim=claim,
           coverage_year=coverage_year)


def tax_block(session: Session, settings: Settings, order: Order) -> str:
    """The qualified invoice's lines of an order's plans: the rate, the plans' total and the
    tax at that rate (rounded once per order), and the store's registration number when it
    is registered."""
    plans = session.exec(select(OrderLine).where(OrderLine.order_id == order.id,
                                                 OrderLine.kind == "plan")).all()
    policy = settings.tax
    gross, tax = sum(p.gross for p in plans), sum(p.tax for p in plans)
    lines = [f"{both('mail.tax.plans')}: {format_amount(gross, order.currency)} "
             f"({both('mail.tax.included')})",
             f"{both('mail.tax.rate', percent=policy.percent)}: "
             f"{format_amount(gross, order.currency)}, {both('mail.tax.amount')}: "
             f"{format_amount(tax, order.currency)}"]
    if policy.registration_number:
        lines.append(f"{both('mail.tax.registration')}: {policy.registration_number}")
    return "\n".join(lines)


def notify_contracts_created(*, session: Session, settings: Settings, order: Order,
                             contracts: list[Contract]) -> None:
    """Queue the purchase mail and one ``contract.created`` event per new contract.

    Called with the contracts ``create_contracts`` just inserted; a repeated Stripe delivery
    inserts none, so nothing is sent twice.
    """
    if not contracts:
        return
    blocks = "\n\n".join(_plan_block(contract, settings) for contract in contracts)
    _rules, conditions = terms.resolve(session, contracts[0].terms_version, settings)
    attachments = tuple(
        Attachment(filename, "application/pdf", data)
        for contract in contracts[:MAX_ATTACHED_CERTIFICATES] for lang in i18n.LANGUAGES
        for filename, data in [certificate.certificate_pdf(
            session=session, settings=settings, contract=contract, lang=lang)])
    body = (
        f"{both('mail.purchase.thanks')}"
        f"\n\n{both('mail.purchase.order')}: {order.store_order_ref}\n\n{blocks}\n\n"
        f"{tax_block(session, settings, order)}\n\n"
        f"{_terms(conditions, order.currency)}\n\n"
        f"{both('cert.mail_attached')}\n\n"
        f"{_link_paragraph(settings, order.customer_email)}\n"
    )
    queue_mail(session=session, to=order.customer_email, kind="purchase",
               subject=f"{both('mail.purchase.subject')} ({order.store_order_ref})",
               body=body, attachments=attachments)
    for contract in contracts:
        _event(session, "contract.created", contract, order)


def notify_cancelled(*, session: Session, settings: Settings, contract: Contract,
                     order: Order, refund: Refund) -> None:
    """Queue the cancellation mail (with the refund amount) and ``contract.cancelled``."""
    amount = format_amount(refund.amount, refund.currency)
    if refund.amount:
        refund_line = (f"{both('mail.cancel.refund')}: {amount} "
                       f"{both('mail.cancel.refund_to')}")
    else:
        refund_line = f"{both('mail.cancel.refund')}: {amount} ({both('mail.cancel.nothing')})"
    body = (
        f"{both('mail.cancel.done')}\n\n"
        f"{_plan_block(contract, settings)}\n\n"
        f"{both('mail.cancel.date')}: {refund.cancel_date.isoformat()}\n{refund_line}\n"
    )
    queue_mail(session=session, to=contract.customer_email, kind="cancellation",
               subject=both("mail.cancel.subject", amount=amount), body=body)
    _event(session, "contract.cancelled", contract, order,
           refund=payloads.refund_dict(refund, contract))


def notify_transferred(*, session: Session, settings: Settings, contract: Contract,
                       order: Order, previous_email: str) -> None:
    """Tell the new owner (with their plans link), the previous one, and the store."""
    block = _plan_block(contract, settings)
    queue_mail(session=session, to=contract.customer_email, kind="transfer_in",
               subject=both("mail.transfer_in.subject"),
               body=(f"{both('mail.transfer_in.text')}\n\n{block}\n\n"
                     f"{_link_paragraph(settings, contract.customer_email)}\n"))
    queue_mail(session=session, to=previous_email, kind="transfer_out",
               subject=both("mail.transfer_out.subject"),
               body=f"{both('mail.transfer_out.text')}\n\n{block}\n")
    _event(session, "contract.transferred", contract, order, previous_email=previous_email)


def notify_refund_succeeded(*, session: Session, contract: Contract, order: Order,
                            refund: Refund) -> None:
    """Queue ``refund.succeeded`` for the store."""
    queue_event(session=session, type="refund.succeeded",
                data={"refund": payloads.refund_dict(refund, contract),
                      "order": order.public_id, "store_order_ref": order.store_order_ref})


def notify_refund_failed(*, session: Session, contract: Contract, order: Order,
                         refund: Refund) -> None:
    """Queue ``refund.failed`` for the store: Stripe could not give the money back."""
    queue_event(session=session, type="refund.failed",
                data={"refund": payloads.refund_dict(refund, contract),
                      "order": order.public_id, "store_order_ref": order.store_order_ref})


def notify_excess_plan_refunded(*, session: Session, order: Order, plan_line,
                                units: int, refund: Refund) -> None:
    """Tell the customer a plan they paid for could not be added, and that it is refunded."""
    amount = format_amount(refund.amount, refund.currency)
    body = (
        f"{both('mail.excess.text')}\n\n"
        f"{both('mail.purchase.order')}: {order.store_order_ref}\n"
        f"{both('mail.contract.plan')}: {plan_line.title} × {units}\n\n"
        f"{both('mail.excess.why')}\n\n"
        f"{both('mail.cancel.refund')}: {amount} {both('mail.excess.refund_to')}\n"
    )
    queue_mail(session=session, to=order.customer_email, kind="plan_refunded",
               subject=both("mail.excess.subject", amount=amount), body=body)


def send_plans_link(*, session: Session, settings: Settings, email: str,
                    lang: str | None = None) -> bool:
    """Queue the plans-link mail if ``email`` has plans; True when one was queued.

    The caller answers the same either way, so the answer never reveals who has plans.
    A mail sent to the address in the last two minutes stops another (no mail bombing).
    """
    write_transaction(session)
    address = email.strip().lower()
    # Requests for one address wait for each other, so the cooldown below sees the mail an
    # earlier one just queued (without it, requests at once all passed and all mailed).
    advisory_lock(session, _PLANS_LINK_LOCKS, address)
    has_plans = session.exec(select(Contract.id).where(
        func.lower(Contract.customer_email) == address).limit(1)).first()
    if has_plans is None:
        return False
    since = utcnow().timestamp() - PLANS_LINK_COOLDOWN_SECONDS
    recent = session.exec(select(MailMessage.created_at).where(
        MailMessage.to == address, MailMessage.kind == "plans_link")
        .order_by(MailMessage.id.desc()).limit(1)).first()
    if recent is not None and recent.timestamp() > since:
        return False
    queue_mail(session=session, to=address, kind="plans_link",
               subject=both("mail.plans_link.subject"),
               body=(f"{both('mail.plans_link.text')}\n\n"
                     f"{_link_paragraph(settings, address, lang)}\n\n"
                     f"{both('mail.plans_link.ignore')}\n"))
    return True
