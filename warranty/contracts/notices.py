"""What customers and the store are told about contracts: mails and outbound webhooks.

Every function only *queues* rows in the caller's transaction (MailMessage,
OutboundWebhook); the worker sends them. So a notice exists exactly when the change it
reports was committed, and nothing is lost while SMTP or the store is down.
"""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import Session, select

from warranty.auth.links import MAX_AGE_SECONDS, plans_link
from warranty.contracts import payloads
from warranty.contracts.models import Contract
from warranty.core.dates import utcnow
from warranty.core.money import format_amount, percent_of
from warranty.core.settings import Settings
from warranty.coverage.dates import coverage_years
from warranty.db.engine import advisory_lock, write_transaction
from warranty.notify.mail import queue_mail
from warranty.notify.models import MailMessage
from warranty.notify.webhooks import queue_event
from warranty.orders.models import Order, OrderLine, Refund

COVERAGE_NAMES = {
    "standard": ("スタンダード（故障）", "Standard (mechanical and electrical breakdown)"),
    "accident": ("アクシデント（故障＋事故による破損）",
                 "Accident (breakdown plus accidental damage)"),
}
PLANS_LINK_COOLDOWN_SECONDS = 120  # one plans-link mail per address per two minutes
_PLANS_LINK_LOCKS = 0x706C  # advisory lock namespace: one plans-link decision per address


def plan_name(contract: Contract) -> str:
    """``Standard (...) / スタンダード（故障）, 36 months / 36か月``."""
    ja, en = COVERAGE_NAMES.get(contract.coverage, (contract.coverage, contract.coverage))
    return f"{en} / {ja}, {contract.term_months} months / {contract.term_months}か月"


def _plan_block(contract: Contract) -> str:
    """The mail paragraph describing one contract: plan, dates, terms."""
    # Only the coverage years the term has (the schedule may be longer than the plan).
    caps = [f"    year {y.year} / {y.year}年目 ({y.first_day.isoformat()} – "
            f"{y.last_day.isoformat()}): {y.percent}% = "
            f"{format_amount(percent_of(contract.product_price, y.percent), contract.currency)}"
            for y in coverage_years(purchase_date=contract.purchase_date,
                                    term_end=contract.term_end,
                                    schedule=contract.liability_schedule)]
    lines = [
        f"■ {contract.product_title} ({contract.sku})",
        f"  Contract / 契約番号: {contract.public_id}",
        f"  Plan / プラン: {plan_name(contract)}",
        f"  Price / 価格: {format_amount(contract.price, contract.currency)}",
        f"  Term / 保証期間: {contract.purchase_date.isoformat()} – "
        f"{contract.term_end.isoformat()}",
        f"  Breakdown cover from / 故障の補償開始: {contract.breakdown_start.isoformat()} "
        "(after the manufacturer's warranty / メーカー保証の終了後)",
    ]
    if contract.accident_start:
        lines.append(f"  Accidental damage cover from / 事故の補償開始: "
                     f"{contract.accident_start.isoformat()}")
    if contract.waiting_until:
        lines.append(f"  Waiting period / 待機期間: no claims for incidents before "
                     f"{contract.waiting_until.isoformat()} / この日より前の事故・故障は対象外")
    lines += [
        f"  Deductible per claim / 免責金額: "
        f"{format_amount(contract.deductible, contract.currency)}",
        "  Liability cap per coverage year, % of the product price / "
        "保証年度ごとの補償上限（購入価格に対する割合）:",
        *caps,
    ]
    return "\n".join(lines)


def _terms(settings: Settings, currency: str) -> str:
    """The cancellation terms every purchase mail repeats."""
    fee = format_amount(settings.cancellation_fee, currency)
    days, window = settings.free_look_days, settings.claim_filing_days_after_term
    return (
        "Terms / ご契約条件:\n"
        f"- Cancel within {days} days of purchase, with no claim paid, for a full refund. "
        f"Later, we refund the unused days pro rata (over the days from the plan's purchase "
        f"to the end of its term), less a cancellation fee of {fee} and any claims paid.\n"
        f"- 購入日から{days}日以内で補償のお支払いがない場合は全額返金します。それ以降は残存日数に"
        f"応じて日割りで返金します（プランの購入日から保証期間の終了日までの日数で按分し、"
        f"解約手数料{fee}と、それまでにお支払いした補償額を差し引きます）。\n"
        f"- Incidents during the term can be claimed up to {window} days after the term ends. / "
        f"保証期間中の事故・故障は、保証期間の終了後{window}日まで申請できます。\n"
        "- A refunded or returned product cancels its plans with a full refund. / "
        "商品が返品・返金された場合、そのプランは全額返金で解約されます。\n"
        "- Plans can be transferred to a new owner. / プランは新しい所有者に譲渡できます。"
    )


def _link_paragraph(settings: Settings, email: str, lang: str | None = None) -> str:
    """The sign-in link to the customer's plans page, how long it works, and that it works
    once."""
    days = MAX_AGE_SECONDS // 86400
    return ("See your plans and file a claim / プランの確認と保証の申請:\n"
            f"{plans_link(settings, email, lang=lang)}\n"
            f"(This link works once, for {days} days; ask for a new one on the page any time. / "
            f"このリンクは{days}日間、1回だけ有効です。新しいリンクはいつでもページからお申し込み"
            "いただけます。)")


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
    lines = [f"Plans / 保証プラン合計: {format_amount(gross, order.currency)} "
             f"(tax included / 税込)",
             f"Consumption tax {policy.percent} / 消費税 {policy.percent}対象: "
             f"{format_amount(gross, order.currency)}, tax / 消費税額: "
             f"{format_amount(tax, order.currency)}"]
    if policy.registration_number:
        lines.append(f"Registration number / 登録番号: {policy.registration_number}")
    return "\n".join(lines)


def notify_contracts_created(*, session: Session, settings: Settings, order: Order,
                             contracts: list[Contract]) -> None:
    """Queue the purchase mail and one ``contract.created`` event per new contract.

    Called with the contracts ``create_contracts`` just inserted; a repeated Stripe delivery
    inserts none, so nothing is sent twice.
    """
    if not contracts:
        return
    blocks = "\n\n".join(_plan_block(contract) for contract in contracts)
    body = (
        "Thank you for protecting your purchase. / 保証プランをご購入いただきありがとうございます。"
        f"\n\nOrder / ご注文: {order.store_order_ref}\n\n{blocks}\n\n"
        f"{tax_block(session, settings, order)}\n\n"
        f"{_terms(settings, order.currency)}\n\n{_link_paragraph(settings, order.customer_email)}\n"
    )
    queue_mail(session=session, to=order.customer_email, kind="purchase",
               subject=f"Your protection plans / 保証プランのご案内 ({order.store_order_ref})",
               body=body)
    for contract in contracts:
        _event(session, "contract.created", contract, order)


def notify_cancelled(*, session: Session, settings: Settings, contract: Contract,
                     order: Order, refund: Refund) -> None:
    """Queue the cancellation mail (with the refund amount) and ``contract.cancelled``."""
    amount = format_amount(refund.amount, refund.currency)
    if refund.amount:
        refund_line = (f"Refund / 返金額: {amount} to your original payment method / "
                       "お支払いに使われた方法へ返金します。")
    else:
        refund_line = f"Refund / 返金額: {amount} (nothing is left to refund / 返金はありません)"
    body = (
        f"Your plan has been cancelled. / 保証プランを解約しました。\n\n"
        f"{_plan_block(contract)}\n\n"
        f"Cancelled on / 解約日: {refund.cancel_date.isoformat()}\n{refund_line}\n"
    )
    queue_mail(session=session, to=contract.customer_email, kind="cancellation",
               subject=f"Plan cancelled, refund {amount} / 保証プラン解約のお知らせ", body=body)
    _event(session, "contract.cancelled", contract, order,
           refund=payloads.refund_dict(refund, contract))


def notify_transferred(*, session: Session, settings: Settings, contract: Contract,
                       order: Order, previous_email: str) -> None:
    """Tell the new owner (with their plans link), the previous one, and the store."""
    block = _plan_block(contract)
    queue_mail(session=session, to=contract.customer_email, kind="transfer_in",
               subject="A protection plan is now yours / 保証プランが譲渡されました",
               body=(f"This plan has been transferred to you. / この保証プランがあなたに譲渡され"
                     f"ました。\n\n{block}\n\n{_link_paragraph(settings, contract.customer_email)}"
                     "\n"))
    queue_mail(session=session, to=previous_email, kind="transfer_out",
               subject="Your protection plan was transferred / 保証プラン譲渡のお知らせ",
               body=(f"This plan now belongs to its new owner. / この保証プランは新しい所有者に"
                     f"譲渡されました。\n\n{block}\n"))
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
        "We could not add the protection plan you paid for. / お支払いいただいた保証プランを"
        "追加できませんでした。\n\n"
        f"Order / ご注文: {order.store_order_ref}\n"
        f"Plan / プラン: {plan_line.title} × {units}\n\n"
        "Every unit of this product already had a plan when your payment arrived (another "
        "checkout for the same item was paid first). / お支払いの時点で、この商品のすべての"
        "台数にすでに保証プランが付いていました（同じ商品への別のお手続きが先に完了しました）。\n\n"
        f"Refund / 返金額: {amount} to your original payment method, in full. / "
        "お支払いに使われた方法へ全額返金します。\n"
    )
    queue_mail(session=session, to=order.customer_email, kind="plan_refunded",
               subject=f"Plan not added, refund {amount} / 保証プランを追加できませんでした",
               body=body)


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
               subject="Your protection plans / ご契約中の保証プラン",
               body=("Here is the link to your plans. / ご契約中の保証プランはこちらからご確認"
                     f"いただけます。\n\n{_link_paragraph(settings, address, lang)}\n\n"
                     "If you did not ask for this mail, you can ignore it. / "
                     "お心当たりのない場合はこのメールを破棄してください。\n"))
    return True
