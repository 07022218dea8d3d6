"""Staff contract pages: search, a contract with everything on it, cancellation from its
quote, transfer, product returns.

The same domain functions as the JSON API (warranty.changes) and the same permissions
(warranty.auth.roles): every role reads and quotes; ``transfer`` gives a plan to a new owner;
``refund`` (finance, admin) confirms a cancellation and records a return. A cancellation is
confirmed with the amount the quote showed: when the refund moved since (a claim was paid, a
day passed), the quote page shows the new figures and a message, and nothing changes.
"""

from __future__ import annotations

from datetime import date

from flask import Blueprint, g, redirect, render_template, request, url_for
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from warranty.auth import roles as auth_roles
from warranty.changes import cancellation, returns
from warranty.changes import transfer as contracts_transfer
from warranty.claims import payouts, rules
from warranty.claims.models import Claim, Payout
from warranty.contracts import queries
from warranty.contracts.models import Contract
from warranty.core import i18n, money
from warranty.core.errors import Conflict, DomainError, ValidationFailed
from warranty.core.text import is_email_address, whole_number
from warranty.http.babel import error_text, page_language
from warranty.http.clients import stripe_client
from warranty.http.errors import status_of
from warranty.http.session import get_session
from warranty.http.web.pages import protect, settings, today
from warranty.http.web.staff import staff_required
from warranty.orders.models import Order, OrderLine
from warranty.payments import refund_events, refunds

bp = Blueprint("staff_contracts", __name__, url_prefix="/staff")
protect(bp)

PER_PAGE = 50
STATUSES = ("active", "cancelled", "expired", "fulfilled")


def _t(key: str, **values) -> str:
    """A text in the page's language."""
    return i18n.t(page_language(), key, **values)


def refusal(exc: DomainError) -> str:
    """A domain refusal in the page's language."""
    return error_text(exc.code, exc.message, status_of(exc))


def _actor() -> str:
    """The audit name of the signed-in staff member."""
    return f"staff:{g.staff.email}"


def _role() -> str:
    """The signed-in staff member's role, as the cancellation rules compare it."""
    return auth_roles.normalize_role(g.staff.role)


def _commit() -> None:
    """Commit once; a concurrent change to the same rows first makes this a 409."""
    db = get_session()
    try:
        db.commit()
    except IntegrityError:
        db.rollback()
        raise Conflict("another request changed this contract at the same time; reload it",
                       code="concurrent_change") from None


def _send_refunds(pending: list[int]) -> None:
    """Try each just-committed refund through Stripe now (the worker retries a failure)."""
    for refund_id in pending:
        refunds.execute_refund(settings=settings(), stripe_client=stripe_client(),
                               refund_id=refund_id)


@bp.get("/contracts")
@staff_required
def search():
    """Contracts by contract number, email, order reference or sku, newest first."""
    q = (request.args.get("q") or "").strip()[:320]
    status = request.args.get("status") or None
    status = status if status in STATUSES else None
    page_no = whole_number(request.args.get("page", "1"))
    if page_no is None or not 0 < page_no < 10000:
        raise ValidationFailed("page must be a whole number from 1 to 9999", code="invalid_page")
    rows, total = queries.search(get_session(), queries.ContractFilter(text=q or None,
                                                                       status=status),
                                 page=page_no, per_page=PER_PAGE)
    return render_template("staff/contracts.html", rows=rows, total=total, q=q, status=status,
                           statuses=STATUSES, page=page_no, per_page=PER_PAGE)


def _facts(contract: Contract) -> dict:
    """Everything the contract page shows besides the forms."""
    db = get_session()
    order = db.get(Order, contract.order_id)
    refund = queries.refund_of(db, contract)
    return {
        "contract": contract, "order": order,
        "line": db.get(OrderLine, contract.product_line_id),
        "caps": payouts.caps_by_year(contract),
        "paid_total": payouts.claims_paid_total(db, contract),
        "claims_until": rules.filing_deadline(contract,
                                              settings().claim_filing_days_after_term),
        "claims": list(db.exec(select(Claim).where(Claim.contract_id == contract.id)
                               .order_by(Claim.id.desc())).all()),
        "payouts": list(db.exec(select(Payout).where(Payout.contract_id == contract.id)
                                .order_by(Payout.id)).all()),
        "refund": refund,
        "events": queries.history(db, contract),
        "cancellable": contract.status == "active",
    }


def _render_contract(contract: Contract, *, errors: dict | None = None, status: int = 200):
    """The contract page, with a form's refusal beside it."""
    return render_template("staff/contract.html", **_facts(contract), errors=errors or {},
                           form=request.form if request.method == "POST" else {},
                           done=request.args.get("done") or "",
                           today=today()), status


@bp.get("/contracts/<contract_id>")
@staff_required
def contract(contract_id: str):
    """A contract: order, product, coverage dates, caps, claims, payouts, refund, audit."""
    return _render_contract(queries.get_contract(get_session(), contract_id))


def _date_field(value: str | None, default: date) -> date:
    """A YYYY-MM-DD date typed by staff (``default`` when blank)."""
    value = (value or "").strip()
    if not value:
        return default
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValidationFailed(f"{value[:40]!r} is not a date (YYYY-MM-DD)",
                               code="invalid_cancel_date") from None


def _quote_context(contract: Contract, cancel_date: date, adjustment: bool) -> dict:
    """The quote of cancelling on ``cancel_date`` with every figure, or why there is none."""
    db = get_session()
    result: dict = {"quote": None, "dating": None, "quote_error": None, "open_claims": [],
                    "external": []}
    try:
        dating = cancellation.check_cancel_date(
            session=db, settings=settings(), cancel_date=cancel_date, today=today(),
            role=_role(), book_as_adjustment=adjustment, quote_only=True)
        quote = cancellation.quote_cancellation(session=db, settings=settings(),
                                                contract=contract, cancel_date=cancel_date)
    except DomainError as exc:
        result["quote_error"] = refusal(exc)
        result["status"] = status_of(exc)
        return result
    result.update(
        quote=quote, dating=dating,
        open_claims=cancellation.open_claims_dict(db, contract),
        external=[(row, left) for row, left in refund_events.external_refunds(
            db, db.get(Order, contract.order_id)) if left > 0])
    return result


def _render_quote(contract: Contract, *, cancel_date: date, adjustment: bool,
                  message: str | None = None, status: int = 200):
    """The cancellation page: the quote and, for finance and admin, its confirmation."""
    context = _quote_context(contract, cancel_date, adjustment)
    status = context.pop("status", status)
    return render_template("staff/cancel.html", contract=contract, cancel_date=cancel_date,
                           adjustment=adjustment, message=message,
                           window=settings().cancel_backdate_days, today=today(),
                           is_admin=_role() == "admin",
                           form=request.form if request.method == "POST" else {},
                           **context), status if message is None else max(status, 400)


@bp.get("/contracts/<contract_id>/cancel")
@staff_required
def cancel_quote(contract_id: str):
    """What cancelling on a date gives back (today by default); changes nothing."""
    contract = queries.get_contract(get_session(), contract_id)
    try:
        cancel_date = _date_field(request.args.get("cancel_date"), today())
    except DomainError as exc:
        return _render_quote(contract, cancel_date=today(), adjustment=False,
                             message=refusal(exc), status=status_of(exc))
    return _render_quote(contract, cancel_date=cancel_date,
                         adjustment=request.args.get("book_as_adjustment") == "1")


@bp.post("/contracts/<contract_id>/cancel")
@staff_required(permission="refund")
def cancel(contract_id: str):
    """Confirm the quoted refund; a refund that moved since shows the new quote instead."""
    db = get_session()
    contract = queries.get_contract(db, contract_id)
    adjustment = request.form.get("book_as_adjustment") == "1"
    cancel_date, amount = today(), None
    try:
        cancel_date = _date_field(request.form.get("cancel_date"), today())
        amount = whole_number(request.form.get("amount") or "")
        if amount is None:
            raise ValidationFailed("the quoted amount is missing; ask for a new quote",
                                   code="invalid_amount")
        reason = (request.form.get("reason") or "").strip()
        if not reason:
            raise ValidationFailed("give a reason for the cancellation",
                                   code="cancel_reason_required")
        refund = cancellation.cancel_contract(
            session=db, settings=settings(), contract_id=contract.public_id,
            cancel_date=cancel_date, today=today(), actor=_actor(), reason=reason[:1000],
            role=_role(), backdate_reason=(request.form.get("backdate_reason") or "")[:1000],
            book_as_adjustment=adjustment, expected_amount=amount,
            covered_by=(request.form.get("covered_by") or "").strip()[:100] or None)
        pending = [refund.id] if refund.status == "pending" else []
        _commit()
    except DomainError as exc:
        db.rollback()
        message = refusal(exc)
        if exc.code == "quote_changed":
            new = (exc.details or {}).get("quote", {}).get("amount")
            message = _t("staff.cancel.quote_changed",
                         old=money.format_amount(amount, contract.currency),
                         new=money.format_amount(new, contract.currency)
                         if new is not None else "—")
        return _render_quote(contract, cancel_date=cancel_date, adjustment=adjustment,
                             message=message, status=status_of(exc))
    _send_refunds(pending)
    return redirect(url_for("staff_contracts.contract", contract_id=contract.public_id,
                            done="cancelled"), 303)


@bp.post("/contracts/<contract_id>/transfer")
@staff_required(permission="transfer")
def transfer(contract_id: str):
    """Give an active plan to a new owner (both owners and the store are told)."""
    db = get_session()
    contract = queries.get_contract(db, contract_id)
    email = (request.form.get("email") or "").strip()
    if not is_email_address(email):
        return _render_contract(contract, errors={"transfer": _t("staff.transfer.bad_email")},
                                status=422)
    try:
        contracts_transfer.transfer_contract(
            session=db, settings=settings(), contract_id=contract.public_id,
            new_email=email.lower(), actor=_actor(),
            reason=(request.form.get("reason") or "").strip()[:1000])
        _commit()
    except DomainError as exc:
        db.rollback()
        return _render_contract(contract, errors={"transfer": refusal(exc)},
                                status=status_of(exc))
    return redirect(url_for("staff_contracts.contract", contract_id=contract.public_id,
                            done="transferred"), 303)


@bp.post("/orders/<order_id>/lines/<int:line_no>/returns")
@staff_required(permission="refund")
def product_return(order_id: str, line_no: int):
    """Units of a product line returned or refunded: plans beyond the units kept are
    cancelled with a full refund each; back to the contract the form was on."""
    db = get_session()
    back = db.exec(select(Contract).join(Order, Order.id == Contract.order_id)
                   .where(Contract.public_id == (request.form.get("contract") or ""),
                          Order.public_id == order_id)).first()
    quantity = whole_number(request.form.get("quantity") or "")
    try:
        if quantity is None or not 0 < quantity <= 100_000:
            raise ValidationFailed(_t("staff.return.bad_quantity"), code="invalid_quantity")
        _, cancelled = returns.return_product_units(
            session=db, settings=settings(), order_id=order_id, line_no=line_no,
            quantity=quantity, today=today(), actor=_actor(),
            reason=(request.form.get("reason") or "").strip()[:1000])
        pending = [r.id for r in cancelled if r.status == "pending"]
        _commit()
    except DomainError as exc:
        db.rollback()
        if back is None:
            raise
        return _render_contract(back, errors={"return": refusal(exc)}, status=status_of(exc))
    _send_refunds(pending)
    if back is None:
        return redirect(url_for("staff_contracts.search", q=order_id), 303)
    return redirect(url_for("staff_contracts.contract", contract_id=back.public_id,
                            done="returned"), 303)
