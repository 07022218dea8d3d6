"""Staff pages: sign-in, the claim queue, the claim review, a customer's whole history.

Roles: every staff role reads; ``staff`` and ``admin`` decide on claims; ``finance`` and
``admin`` record payouts (the same split as the JSON API's bearer tokens).
"""

from __future__ import annotations

import time
from datetime import date
from functools import wraps

from flask import Blueprint, g, redirect, render_template, request, session, url_for
from sqlmodel import select

from warranty import claims, staff_accounts
from warranty.db import get_session
from warranty.errors import DomainError, Forbidden
from warranty.models import Contract, Order
from warranty.text import whole_number
from warranty.web import protect, send_claim_file, settings

bp = Blueprint("staff", __name__, url_prefix="/staff")
protect(bp)

DECIDE = {"staff", "admin"}
PAY = {"finance", "admin"}


@bp.before_request
def _english() -> None:
    """Staff pages are in English."""
    g.lang = "en"


def staff_required(view):
    """Pages for signed-in staff: others are sent to the sign-in form."""

    @wraps(view)
    def wrapped(**kwargs):
        user = staff_accounts.active_staff(
            get_session(), session.get("staff_id"), session.get("staff_at"),
            settings().staff_session_hours * 3600)
        if user is None:
            return redirect(url_for("staff.login", next=request.path))
        g.staff = user
        return view(**kwargs)

    return wrapped


def _actor() -> str:
    """The audit name of the signed-in staff member."""
    return f"staff:{g.staff.email}"


def _require(roles: set[str]) -> None:
    """Refuse an action the signed-in role may not take."""
    if g.staff.role not in roles:
        raise Forbidden(f"a {g.staff.role} account cannot do this")


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Email and password sign-in."""
    target = request.values.get("next") or ""
    if not target.startswith("/staff/") or "//" in target:
        target = url_for("staff.queue")
    if request.method == "GET":
        return render_template("staff/login.html", error=None, email="", next=target)
    email = (request.form.get("email") or "")[:320]
    try:
        user = staff_accounts.authenticate(session=get_session(), email=email,
                                           password=request.form.get("password") or "")
    except DomainError as exc:
        return render_template("staff/login.html", error=exc.message, email=email,
                               next=target), 401
    get_session().commit()
    lang = session.get("lang")
    session.clear()  # a fresh session (and CSRF token) after signing in
    session["staff_id"] = user.id
    session["staff_at"] = time.time()  # sessions expire and can be revoked from here on
    if lang:
        session["lang"] = lang
    return redirect(target, 303)


@bp.post("/logout")
def logout():
    """Sign out."""
    session.pop("staff_id", None)
    session.pop("staff_at", None)
    return redirect(url_for("staff.login"), 303)


def _date_arg(name: str) -> date | None:
    """A YYYY-MM-DD query parameter, ignored when blank or malformed."""
    value = request.args.get(name) or ""
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


@bp.get("/")
@bp.get("/claims")
@staff_required
def queue():
    """The claim queue with filters and counts per status."""
    status = request.args.get("status") or None
    status = status if status in claims.STATUSES else None
    flt = claims.QueueFilter(status=status, category=(request.args.get("category") or None),
                             date_from=_date_arg("from"), date_to=_date_arg("to"))
    page_no = whole_number(request.args.get("page", "1"))
    if page_no is None or not 0 < page_no < 10000:
        raise DomainError("page must be a whole number from 1 to 9999", code="invalid_page",
                          status=400)
    rows, counts = claims.queue(get_session(), flt, timezone=settings().timezone, limit=50,
                                offset=(page_no - 1) * 50)
    categories = sorted(get_session().exec(
        select(Contract.warranty_category).distinct()).all())
    return render_template("staff/queue.html", rows=rows, counts=counts, flt=flt,
                           statuses=claims.STATUSES, categories=categories, page=page_no,
                           args={k: v for k, v in request.args.items() if k != "page"})


def _render_review(claim, *, errors: dict | None = None, status: int = 200):
    """The review page of one claim."""
    db = get_session()
    contract = db.get(Contract, claim.contract_id)
    order = db.get(Order, contract.order_id)
    return render_template(
        "staff/claim.html", claim=claim, contract=contract, order=order,
        events=claims.timeline(db, claim), files=claims.files_of(db, claim),
        quote=claims.payout_quote(db, contract, claim), payout=claims.payout_of(db, claim),
        paid_total=claims.claims_paid_total(db, contract),
        deny_text=claims.deny_text(claim, "en"), transitions=claims.TRANSITIONS,
        decisions=claims.DECISIONS, methods=claims.PAYOUT_METHODS, can_decide=g.staff.role
        in DECIDE, can_pay=g.staff.role in PAY, errors=errors or {},
        form=request.form if request.method == "POST" else {}), status


@bp.get("/claims/<claim_id>")
@staff_required
def review(claim_id: str):
    """One claim with its contract, cap, files and timeline, and the decision forms."""
    return _render_review(claims.get_claim(get_session(), claim_id))


def _act(claim_id: str, form_name: str, roles: set[str], action):
    """Run one staff action; on a refusal show the review page with the message."""
    db = get_session()
    claim = claims.get_claim(db, claim_id)
    _require(roles)
    try:
        action(db, claim)
    except DomainError as exc:
        db.rollback()
        db.refresh(claim)
        return _render_review(claim, errors={form_name: exc.message}, status=exc.status)
    db.commit()
    return redirect(url_for("staff.review", claim_id=claim.public_id), 303)


@bp.post("/claims/<claim_id>/approve")
@staff_required
def approve(claim_id: str):
    """Approve as repair, replacement or reimbursement with an amount."""

    def action(db, claim):
        """Parse the amount and approve."""
        contract = db.get(Contract, claim.contract_id)
        amount = claims.parse_amount(request.form.get("amount") or "", contract.currency)
        if amount is None:
            raise DomainError("enter the approved amount", code="invalid_amount", status=422)
        claims.approve(session=db, settings=settings(), claim=claim,
                       decision=request.form.get("decision") or "", amount=amount,
                       actor=_actor(), note=request.form.get("note") or "")

    return _act(claim_id, "approve", DECIDE, action)


@bp.post("/claims/<claim_id>/deny")
@staff_required
def deny(claim_id: str):
    """Deny with a reason for the customer."""
    return _act(claim_id, "deny", DECIDE, lambda db, claim: claims.deny(
        session=db, settings=settings(), claim=claim, reason=request.form.get("reason") or "",
        actor=_actor()))


@bp.post("/claims/<claim_id>/request-info")
@staff_required
def request_info(claim_id: str):
    """Ask the customer for more information (their form opens again)."""
    return _act(claim_id, "request_info", DECIDE, lambda db, claim: claims.request_info(
        session=db, settings=settings(), claim=claim,
        message=request.form.get("message") or "", actor=_actor()))


@bp.post("/claims/<claim_id>/close")
@staff_required
def close(claim_id: str):
    """Close an approved claim without a payout."""
    return _act(claim_id, "close", DECIDE, lambda db, claim: claims.close(
        session=db, settings=settings(), claim=claim, reason=request.form.get("reason") or "",
        actor=_actor()))


@bp.post("/claims/<claim_id>/pay")
@staff_required
def pay(claim_id: str):
    """Record the payout of an approved claim."""
    return _act(claim_id, "pay", PAY, lambda db, claim: claims.record_payout(
        session=db, settings=settings(), claim=claim, method=request.form.get("method") or "",
        reference=request.form.get("reference") or "", actor=_actor()))


@bp.get("/claims/<claim_id>/files/<file_id>")
@staff_required
def claim_file(claim_id: str, file_id: str):
    """An attachment, as a download."""
    db = get_session()
    claim = claims.get_claim(db, claim_id)
    return send_claim_file(claims.get_file(db, claim, file_id))


@bp.get("/customers")
@staff_required
def customer():
    """A customer's orders, plans, claims, payouts and mails, for answering a support chat."""
    email = (request.args.get("email") or "").strip()[:320]
    history = claims.customer_history(get_session(), email) if "@" in email else None
    return render_template("staff/customer.html", email=email, history=history)
