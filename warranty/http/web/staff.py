"""Staff pages (ja/en, chosen like the customer pages; English when the browser states no
language): sign-in, the claim queue, the claim review, a customer's whole history.

Every page and action names the permission it needs (warranty.auth.PERMISSIONS, the same
table as the JSON API): every role reads; support, finance and admin decide on claims;
finance and admin record payouts and mark attention items handled. Sessions are server-side
(the ``wty_staff`` cookie, on /staff only): signing out ends one everywhere it was copied.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from functools import wraps

from flask import Blueprint, g, redirect, render_template, request, url_for
from sqlmodel import select

from warranty.attention import services as attention
from warranty.auth import roles as auth_roles
from warranty.claims import models as claims_models
from warranty.claims import payouts, queries, rules, transitions, workflow
from warranty.contracts import queries as contract_queries
from warranty.contracts.models import Contract
from warranty.core import money, redact
from warranty.core.errors import DomainError, Forbidden, ValidationFailed
from warranty.core.text import whole_number
from warranty.customers import history as customers_history
from warranty.http.babel import error_text, page_language
from warranty.http.errors import status_of
from warranty.http.session import get_session
from warranty.http.web.pages import (
    protect,
    send_certificate,
    send_claim_file,
    settings,
    sign_in,
    sign_out,
    signed_in,
)
from warranty.orders.models import Order
from warranty.staff import accounts as staff_accounts

bp = Blueprint("staff", __name__, url_prefix="/staff")
protect(bp)
log = logging.getLogger(__name__)

# Kept for code that names role sets (the permission table is warranty.auth.PERMISSIONS).
DECIDE = auth_roles.PERMISSIONS["decide_claims"]
PAY = auth_roles.PERMISSIONS["refund"]


@bp.context_processor
def _attention_open() -> dict:
    """Open attention items, for the count in the navigation."""
    if not g.get("staff"):
        return {}
    return {"attention_open": sum(attention.open_counts(get_session()).values())}


def current_staff():
    """The staff account of this browser's live staff session, if any."""
    if "staff" not in g:
        g.staff = staff_accounts.active_staff(
            get_session(), signed_in("staff"),
            timedelta(hours=settings().staff_session_hours))
    return g.staff


def staff_required(view=None, *, permission: str = "read"):
    """Pages for signed-in staff holding ``permission`` (others are sent to the sign-in
    form; a role without it gets 403 before anything is looked up).

    ``@staff_required`` reads; ``@staff_required(permission="refund")`` names another.
    """
    auth_roles.permission_of(permission)  # an unknown permission fails at import

    def decorate(inner):
        @wraps(inner)
        def wrapped(**kwargs):
            if current_staff() is None:
                return redirect(url_for("staff.login", next=request.path))
            auth_roles.require_permission(g.staff.role, permission)
            return inner(**kwargs)

        wrapped.staff_permission = permission
        return wrapped

    return decorate(view) if view is not None else decorate


def can(permission: str) -> bool:
    """Whether the signed-in staff member holds ``permission`` (for templates)."""
    return current_staff() is not None and auth_roles.may(g.staff.role, permission)


@bp.app_context_processor
def _staff_helpers() -> dict:
    """``can('refund')`` in staff templates."""
    return {"can": can}


def _actor() -> str:
    """The audit name of the signed-in staff member."""
    return f"staff:{g.staff.email}"


def _require(roles) -> None:
    """Refuse an action the signed-in role may not take (``roles``: a set of role names or
    a permission name)."""
    if isinstance(roles, str):
        auth_roles.require_permission(g.staff.role, roles)
        return
    allowed = {auth_roles.normalize_role(role) for role in roles}
    if auth_roles.normalize_role(g.staff.role) not in allowed:
        raise Forbidden(f"a {g.staff.role} account cannot do this")


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Email and password sign-in (throttled per account and address: warranty.http.ratelimit)."""
    target = request.values.get("next") or ""
    if not target.startswith("/staff/") or "//" in target:
        target = url_for("staff.queue")
    if request.method == "GET":
        return render_template("staff/login.html", error=None, email="", next=target)
    email = (request.form.get("email") or "")[:320]  # shown again in the form
    try:
        # The whole typed value, read as the throttle reads it (staff_accounts.login_email).
        user = staff_accounts.authenticate(session=get_session(),
                                           email=request.form.get("email") or "",
                                           password=request.form.get("password") or "")
    except DomainError as exc:
        typed = email.strip().lower()
        # Only what looks like an address: a password typed in the wrong field stays out.
        log.info("staff sign-in refused: wrong email or password for %r from %s",
                 typed[:80] if "@" in typed and " " not in typed else "(not an address)",
                 request.remote_addr)
        return render_template("staff/login.html", error=error_text(exc.code, exc.message, 401),
                               email=email,
                               next=target), 401
    row = sign_in("staff", subject=user.email, scope="staff", created_by="password",
                  lifetime=timedelta(hours=settings().staff_session_hours),
                  staff_user_id=user.id)
    get_session().commit()
    log.info("staff sign-in: %s (%s), session %s, from %s", user.email, user.role, row.id,
             request.remote_addr)
    return redirect(target, 303)


@bp.post("/logout")
def logout():
    """Sign out: the session ends on the server."""
    sign_out("staff")
    get_session().commit()
    return redirect(url_for("staff.login"), 303)


def _date_arg(name: str) -> date | None:
    """A YYYY-MM-DD query parameter, ignored when blank or malformed."""
    value = request.args.get(name) or ""
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _page_number() -> int:
    """The ``page`` of a list (1 by default); a 400 for anything but 1 to 9999 in ASCII or
    full-width digits (``str.isdigit`` says yes to "²", which ``int`` then refuses)."""
    page_no = whole_number(request.args.get("page", "1"))
    if page_no is None or not 0 < page_no < 10000:
        raise DomainError("page must be a whole number from 1 to 9999", code="invalid_page")
    return page_no


@bp.get("/")
@bp.get("/claims")
@staff_required
def queue():
    """The claim queue with filters and counts per status."""
    status = request.args.get("status") or None
    status = status if status in claims_models.STATUSES else None
    flt = queries.QueueFilter(status=status, category=(request.args.get("category") or None),
                             date_from=_date_arg("from"), date_to=_date_arg("to"))
    page_no = _page_number()
    rows, counts = queries.queue(get_session(), flt, timezone=settings().timezone, limit=50,
                                offset=(page_no - 1) * 50)
    categories = sorted(get_session().exec(
        select(Contract.warranty_category).distinct()).all())
    return render_template("staff/queue.html", rows=rows, counts=counts, flt=flt,
                           statuses=claims_models.STATUSES, categories=categories, page=page_no,
                           args={k: v for k, v in request.args.items() if k != "page"})


def _render_review(claim, *, errors: dict | None = None, status: int = 200):
    """The review page of one claim."""
    db = get_session()
    contract = db.get(Contract, claim.contract_id)
    order = db.get(Order, contract.order_id)
    g.page_path = url_for("staff.review", claim_id=claim.public_id)  # the language switch
    return render_template(
        "staff/claim.html", claim=claim, contract=contract, order=order,
        events=queries.timeline(db, claim), files=queries.files_of(db, claim),
        quote=payouts.payout_quote(db, contract, claim), payout=queries.payout_of(db, claim),
        paid_total=payouts.claims_paid_total(db, contract),
        claims_until=rules.filing_deadline(contract,
                                            settings().claim_filing_days_after_term),
        deny_text=transitions.deny_text(claim, page_language()),
        transitions=claims_models.TRANSITIONS,
        decisions=workflow.decisions(settings()),
        methods=payouts.payout_methods(settings()), repair_only=settings().repair_only,
        can_decide=can("decide_claims"), can_pay=can("refund"), errors=errors or {},
        form=request.form if request.method == "POST" else {}), status


@bp.get("/claims/<claim_id>")
@staff_required
def review(claim_id: str):
    """One claim with its contract, cap, files and timeline, and the decision forms."""
    return _render_review(queries.get_claim(get_session(), claim_id))


def _act(claim_id: str, form_name: str, action):
    """Run one staff action; on a refusal show the review page with the message."""
    db = get_session()
    claim = queries.get_claim(db, claim_id)
    try:
        action(db, claim)
    except DomainError as exc:
        db.rollback()
        db.refresh(claim)
        status = status_of(exc)
        return _render_review(claim, errors={form_name: error_text(exc.code, exc.message, status)},
                              status=status)
    db.commit()
    return redirect(url_for("staff.review", claim_id=claim.public_id), 303)


@bp.post("/claims/<claim_id>/approve")
@staff_required(permission="decide_claims")
def approve(claim_id: str):
    """Approve as repair, replacement or reimbursement with an amount."""

    def action(db, claim):
        """Parse the amount and approve."""
        contract = db.get(Contract, claim.contract_id)
        amount = payouts.parse_amount(request.form.get("amount") or "", contract.currency)
        if amount is None:
            raise ValidationFailed("enter the approved amount", code="invalid_amount")
        workflow.approve(session=db, settings=settings(), claim=claim,
                       decision=request.form.get("decision") or "", amount=amount,
                       actor=_actor(), note=request.form.get("note") or "")

    return _act(claim_id, "approve", action)


@bp.post("/claims/<claim_id>/deny")
@staff_required(permission="decide_claims")
def deny(claim_id: str):
    """Deny with a reason for the customer."""
    return _act(claim_id, "deny", lambda db, claim: workflow.deny(
        session=db, settings=settings(), claim=claim, reason=request.form.get("reason") or "",
        actor=_actor()))


@bp.post("/claims/<claim_id>/request-info")
@staff_required(permission="decide_claims")
def request_info(claim_id: str):
    """Ask the customer for more information (their form opens again)."""
    return _act(claim_id, "request_info", lambda db, claim: workflow.request_info(
        session=db, settings=settings(), claim=claim,
        message=request.form.get("message") or "", actor=_actor()))


@bp.post("/claims/<claim_id>/close")
@staff_required(permission="decide_claims")
def close(claim_id: str):
    """Close an approved claim without a payout."""
    return _act(claim_id, "close", lambda db, claim: workflow.close(
        session=db, settings=settings(), claim=claim, reason=request.form.get("reason") or "",
        actor=_actor()))


@bp.post("/claims/<claim_id>/pay")
@staff_required(permission="refund")
def pay(claim_id: str):
    """Record the payout of an approved claim."""
    return _act(claim_id, "pay", lambda db, claim: payouts.record_payout(
        session=db, settings=settings(), claim=claim, method=request.form.get("method") or "",
        reference=request.form.get("reference") or "", actor=_actor()))


@bp.get("/claims/<claim_id>/files/<file_id>")
@staff_required
def claim_file(claim_id: str, file_id: str):
    """An attachment, as a download."""
    db = get_session()
    claim = queries.get_claim(db, claim_id)
    return send_claim_file(queries.get_file(db, claim, file_id))


@bp.get("/contracts/<contract_id>/certificate.pdf")
@staff_required
def certificate(contract_id: str):
    """Any contract's certificate (PDF, ``?lang=ja|en``), for answering the customer."""
    db = get_session()
    contract = contract_queries.get_contract(db, contract_id)
    return send_certificate(db, contract, request.args.get("lang") or "ja")


@bp.get("/customers")
@staff_required
def customer():
    """A customer's orders, plans, claims, payouts and mails, for answering a support chat."""
    email = (request.args.get("email") or "").strip()[:320]
    history = customers_history.customer_history(get_session(), email) if "@" in email else None
    # Mail bodies hold the customer's sign-in links: shown with every link removed.
    return render_template("staff/customer.html", email=email, history=history,
                           redact=lambda body: redact.redact_links(body, settings().base_url))


# Figures whose value is an amount, and the figure naming its currency.
_MONEY_FIGURES = {"amount": "currency", "order_total": "currency", "unit_price": "currency",
                  "expected_amount": "expected_currency", "charged_amount": "charged_currency"}


def _figures(item) -> list[tuple[str, str]]:
    """An item's figures as (label, text), amounts formatted in their currency."""
    rows = []
    for key, value in item.data.items():
        if value is None or value == "":
            continue
        currency = item.data.get(_MONEY_FIGURES.get(key, ""))
        if isinstance(value, int) and currency:
            value = money.format_amount(value, currency)
        rows.append((key.replace("_", " "), str(value)))
    return rows


def _render_attention(*, errors: dict | None = None, status: int = 200):
    """The attention queue page."""
    wanted = request.args.get("status") or "open"
    wanted = wanted if wanted in (*attention.STATUSES, "all") else "open"
    kind = request.args.get("kind") or None
    kind = kind if kind in attention.KINDS else None
    page_no = _page_number()
    found = attention.search(get_session(), status=None if wanted == "all" else wanted,
                             kind=kind, page=page_no, per_page=50)
    return render_template("staff/attention.html", found=found, wanted=wanted, kind=kind,
                           kinds=attention.KINDS, figures=_figures, page=page_no,
                           can_handle=auth_roles.may(g.staff.role, "refund"), errors=errors or {},
                           form=request.form if request.method == "POST" else {}), status


@bp.get("/attention")
@staff_required
def attention_queue():
    """Payments, refunds and Stripe events that need a person, with their figures."""
    return _render_attention()


@bp.post("/attention/<item_id>/handle")
@staff_required(permission="refund")
def handle_attention(item_id: str):
    """Mark one item handled with a note (finance and admin)."""
    db = get_session()
    try:
        attention.handle(session=db, public_id=item_id, actor=_actor(),
                         note=(request.form.get("note") or "")[:2000])
    except DomainError as exc:
        db.rollback()
        status = status_of(exc)
        return _render_attention(errors={item_id: error_text(exc.code, exc.message, status)},
                                 status=status)
    db.commit()
    return redirect(url_for("staff.attention_queue"), 303)
