"""Customer pages (ja/en): find my plans, a plan's page and its cancellation, file a claim.

A plan's contract page (coverage, caps per coverage year, claims, terms) cancels it with the
refund shown first, as far as the store allows; a claim's page follows it and answers
requests for more information (added to it as messages); and the NPS question.

Who sees what is a property of the server-side session (warranty.auth.sessions), checked
on every page and download:

- the mailed link (a GET shows a confirmation page; its POST signs in and spends the link)
  gives the ``full`` scope: every plan of the address, its claims and their files;
- an email and order reference give the ``order`` scope: that one order's plans, read only,
  and a button that mails the link to the address.

A plan or claim belongs to the contract's current owner (a transfer moves it); anyone
else's id is a 404, exactly like a missing one.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from functools import wraps

from flask import Blueprint, g, redirect, render_template, request, url_for
from sqlalchemy.exc import IntegrityError

from warranty.auth import links as magic_links
from warranty.auth import sessions as auth_sessions
from warranty.auth.models import AuthSession
from warranty.changes import cancellation, serials
from warranty.claims import attachments as uploads
from warranty.claims import filing, payouts, queries, rules, transitions
from warranty.claims import nps as claims_nps
from warranty.contracts import notices as notifications
from warranty.contracts import queries as contract_queries
from warranty.contracts.models import Contract
from warranty.core import money, text
from warranty.core.errors import Conflict, DomainError, NotFound
from warranty.core.text import whole_number
from warranty.coverage import dates as coverage_dates
from warranty.customers import lookup
from warranty.http.clients import stripe_client
from warranty.http.errors import status_of
from warranty.http.session import get_session
from warranty.http.web import terms as terms_pages
from warranty.http.web.pages import (
    install,
    page_language,
    protect,
    read_uploads,
    send_certificate,
    send_claim_file,
    settings,
    sign_in,
    sign_out,
    signed_in,
    today,
)
from warranty.payments import refunds as payment_refunds

bp = Blueprint("customer", __name__, url_prefix="/my")
protect(bp)
install(bp)
log = logging.getLogger(__name__)


def signed_in_email() -> str | None:
    """The email of this browser's customer session with the full scope, if any."""
    row = signed_in("customer")
    return row.subject if row is not None and row.scope == auth_sessions.FULL else None


def customer_required(view):
    """Pages that need the proved mailbox: others are sent to the sign-in form, and an
    order-reference session gets a page offering the mailed link."""

    @wraps(view)
    def wrapped(**kwargs):
        row = signed_in("customer")
        if row is None:
            return redirect(url_for("customer.plans"))
        if row.scope != auth_sessions.FULL:
            return render_template("customer/need_link.html", email=row.subject), 403
        return view(email=row.subject, **kwargs)

    return wrapped


def _lifetime() -> timedelta:
    """How long a customer sign-in lasts."""
    return timedelta(hours=settings().customer_session_hours)


def _plans_page(row: AuthSession, *, serial_errors: dict | None = None,
                serial_values: dict | None = None):
    """The plans a session may see: all the address's with their claims, or one order's.

    ``serial_errors`` / ``serial_values``: a refused serial number form, by contract id.
    """
    db = get_session()
    serial = {"serial_errors": serial_errors or {}, "serial_values": serial_values or {},
              "serial_saved": request.args.get("serial_saved") or ""}
    if row.scope == auth_sessions.ORDER:
        contracts = lookup.order_plans(db, row.subject, row.order_ref)
        return render_template("customer/plans.html", email=row.subject, scoped=True,
                               order_ref=row.order_ref, claims_by_contract={},
                               contracts=contracts, serial_editable={},
                               windows={c.id: _claim_window(c) for c in contracts}, **serial)
    by_contract: dict[int, list] = {}
    for claim in lookup.claims_for(db, row.subject):
        by_contract.setdefault(claim.contract_id, []).append(claim)
    contracts = lookup.plans_for(db, row.subject)
    return render_template("customer/plans.html", email=row.subject, scoped=False,
                           contracts=contracts, claims_by_contract=by_contract,
                           serial_editable={c.id: serials.customer_may_change(db, c)
                                            for c in contracts},
                           windows={c.id: _claim_window(c) for c in contracts}, **serial)


@bp.get("/plans")
def plans():
    """The customer's plans and claims; the sign-in form when nobody is signed in."""
    if request.args.get("token"):  # a link mailed before links moved to /my/sign-in
        return confirm_page()
    row = signed_in("customer")
    if row is None:
        return render_template("customer/find.html", values={}, errors={})
    return _plans_page(row)


def _claim_window(contract: Contract) -> dict:
    """Whether the plan takes a claim today, and until when claims can be filed."""
    days = settings().claim_filing_days_after_term
    return {"open": rules.takes_claims(contract, today=today(), days_after_term=days),
            "deadline": rules.filing_deadline(contract, days)}


@bp.post("/plans")
def find_plans():
    """An email and order reference: that order's plans only (the order scope)."""
    email = (request.form.get("email") or "").strip()
    order_ref = (request.form.get("order_ref") or "").strip()
    errors = {}
    if "@" not in email or len(email) > 320:
        errors["email"] = "problem.invalid_email"
    if not order_ref or len(order_ref) > 200:
        errors["order_ref"] = "problem.required"
    if not errors and not lookup.order_plans(get_session(), email, order_ref):
        errors["form"] = "find.no_match"
    if errors:
        return render_template("customer/find.html", values={"email": email,
                                                             "order_ref": order_ref},
                               errors=errors), 422
    row = sign_in("customer", subject=text.normalize_email(email), scope=auth_sessions.ORDER,
                  lifetime=_lifetime(), created_by="order_ref", order_ref=order_ref)
    get_session().commit()
    log.info("customer order view: session %s for one order, from %s", row.id,
             request.remote_addr)
    return redirect(url_for("customer.plans"))


def _link_state(token: str) -> tuple[str, magic_links.PlansLink | None]:
    """What a sign-in link can do now: ``confirm``, ``spent``, ``invalid`` (with a new
    link offered when the link was ours: ``renew``)."""
    try:
        link = magic_links.read_plans_link(settings(), token)
    except magic_links.InvalidLink:
        return ("renew" if magic_links.email_of_link(settings(), token) else "invalid"), None
    if auth_sessions.link_voided(get_session(), link):
        return "renew", None  # mailed before the customer's sign-ins were revoked
    if auth_sessions.link_spent(get_session(), link.jti):
        return "spent", link
    return "confirm", link


@bp.get("/sign-in")
def confirm_page():
    """The page a mailed link opens: it signs nobody in, its button does (a POST).

    Mail scanners, link previews and a hostile page linking to someone's link all make
    GETs; only the person who presses the button is signed in.
    """
    token = request.args.get("token") or ""
    state, link = _link_state(token)
    current = signed_in("customer")
    if (link is not None and current is not None and current.scope == auth_sessions.FULL
            and current.subject == link.email):
        return redirect(link.next or url_for("customer.plans"))  # signed in already
    if state == "confirm":
        return render_template("customer/sign_in.html", state="confirm", token=token,
                               email=link.email)
    return render_template("customer/sign_in.html", state=state, token=token,
                           email=None), 403 if state in ("invalid", "renew") else 410


@bp.post("/sign-in")
def confirm_sign_in():
    """Sign in with a mailed link: the link is spent, a new session starts."""
    token = request.form.get("token") or ""
    state, link = _link_state(token)
    db = get_session()
    if state == "confirm" and not auth_sessions.spend_link(session=db, link=link):
        state = "spent"  # used at the same moment by another request
    if state != "confirm":
        db.rollback()
        return render_template("customer/sign_in.html", state=state, token=token,
                               email=None), 403 if state in ("invalid", "renew") else 410
    row = sign_in("customer", subject=link.email, scope=auth_sessions.FULL,
                  lifetime=_lifetime(), created_by="link")
    db.commit()
    log.info("customer sign-in by mailed link: session %s, from %s", row.id,
             request.remote_addr)
    return redirect(link.next or url_for("customer.plans"), 303)


@bp.post("/plans-link")
def mail_link():
    """Mail the plans link to an address: typed in, the one of an old or spent link, or
    the one of this order-reference session. The answer never says whether it has plans."""
    email = (request.form.get("email") or "").strip()
    token = request.form.get("token") or ""
    current = signed_in("customer")
    if not email and token:
        email = magic_links.email_of_link(settings(), token) or ""
    if not email and current is not None:
        email = current.subject
    if "@" not in email or len(email) > 320:
        return render_template("customer/find.html", values={"email": email}, errors={
            "link_email": "problem.invalid_email"}), 422
    db = get_session()
    notifications.send_plans_link(session=db, settings=settings(), email=email,
                                  lang=page_language())
    db.commit()
    return render_template("customer/sign_in.html", state="sent", token="", email=None)


@bp.post("/logout")
def logout():
    """End the customer's session on the server (the language choice stays)."""
    sign_out("customer")
    get_session().commit()
    return redirect(url_for("customer.plans"))


@bp.post("/plans/<contract_id>/serial-number")
@customer_required
def save_serial(email: str, contract_id: str):
    """The plan's owner registers or corrects its product's serial number (audited); a
    refusal shows the plans page again with the message beside the field."""
    db = get_session()
    value = (request.form.get("serial_number") or "")[:1000]
    try:
        serials.set_by_customer(session=db, contract_id=contract_id, email=email, value=value)
    except (serials.SerialRefused, Conflict) as exc:
        db.rollback()
        field = f"serial_number-{contract_id}"
        return _plans_page(signed_in("customer"), serial_errors={field: f"problem.{exc.code}"},
                           serial_values={contract_id: value}), status_of(exc)
    db.commit()
    return redirect(url_for("customer.plans", serial_saved=contract_id)
                    + f"#plan-{contract_id}", 303)


def _form_values() -> dict:
    """The claim form's fields as typed (for re-rendering)."""
    return {name: (request.form.get(name) or "")[:10000]
            for name in ("incident_date", "failure_type", "description", "estimated_amount")}


def _parse_claim_form(values: dict, currency: str) -> tuple[dict, dict]:
    """Typed claim fields and the field errors the form can find by itself."""
    errors: dict[str, str] = {}
    parsed: dict = {"failure_type": values["failure_type"] or None,
                    "description": values["description"], "incident_date": None,
                    "estimated_amount": None}
    raw_date = values["incident_date"].strip()
    if raw_date:
        try:
            parsed["incident_date"] = date.fromisoformat(raw_date[:10])
        except ValueError:
            errors["incident_date"] = "problem.invalid_date"
    try:
        parsed["estimated_amount"] = payouts.parse_amount(values["estimated_amount"], currency)
    except DomainError:
        errors["estimated_amount"] = "problem.invalid_amount"
    return parsed, errors


def _submit_claim(action, values: dict, currency: str) -> tuple[object, dict]:
    """Run a filing or a resubmission; returns (result, field errors as message keys)."""
    parsed, errors = _parse_claim_form(values, currency)
    for field, code in rules.input_problems(today=today(), **parsed):
        errors.setdefault(field, f"problem.{code}")
    files = read_uploads()
    if errors:
        return None, errors
    try:
        return action(files=files, **parsed), {}
    except uploads.UploadRefused as exc:
        name = (exc.details or {}).get("name", "")
        return None, {"files": ("upload." + exc.code, {"name": name})}


def _year_caps(contract: Contract) -> list[dict]:
    """Each coverage year the plan has, with its cap as a percentage and an amount."""
    return [{"year": y.year, "first": y.first_day, "last": y.last_day, "percent": y.percent,
             "amount": money.percent_of(contract.product_price, y.percent)}
            for y in coverage_dates.coverage_years(purchase_date=contract.purchase_date,
                                                   term_end=contract.term_end,
                                                   schedule=contract.liability_schedule)]


def _contract_page(email: str, contract: Contract, *, errors: dict | None = None,
                   status: int = 200):
    """The contract page: everything about one of the customer's plans."""
    db = get_session()
    claims = [c for c in lookup.claims_for(db, email) if c.contract_id == contract.id]
    refund = contract_queries.refund_of(db, contract) if contract.status == "cancelled" else None
    return render_template(
        "customer/contract.html", contract=contract, claims=claims, caps=_year_caps(contract),
        window=_claim_window(contract), refund=refund,
        offer=cancellation.self_cancel_quote(session=db, settings=settings(),
                                             contract=contract, today=today()),
        settings=settings(), errors=errors or {},
        serial_editable=serials.customer_may_change(db, contract),
        plan_terms=_terms_of(contract)), status


def _terms_of(contract: Contract):
    """The terms the plan was sold under (its own version), or None for a plan whose
    version the service cannot show (the page then shows the store's terms as they are)."""
    if not contract.terms_version:
        return None
    try:
        return terms_pages.plan_text(contract.terms_version, contract.warranty_category,
                                     contract.plan_code)
    except NotFound:
        return None


@bp.get("/plans/<contract_id>")
@customer_required
def contract_page(email: str, contract_id: str):
    """One plan: coverage dates, caps per coverage year, claims, terms, cancellation."""
    contract = lookup.get_contract_for(get_session(), contract_id, email)
    return _contract_page(email, contract)


@bp.get("/plans/<contract_id>/cancel")
@customer_required
def cancel_page(email: str, contract_id: str):
    """The refund cancelling today gives, shown before anything happens."""
    db = get_session()
    contract = lookup.get_contract_for(db, contract_id, email)
    offer = cancellation.self_cancel_quote(session=db, settings=settings(), contract=contract,
                                           today=today())
    if offer.refused is not None:
        return _contract_page(email, contract, status=409)
    return render_template("customer/cancel.html", contract=contract, quote=offer.quote,
                           moved=False, free_look_days=settings().free_look_days)


@bp.post("/plans/<contract_id>/cancel")
@customer_required
def cancel(email: str, contract_id: str):
    """Cancel with the refund the page showed; a refund that moved is shown again."""
    db = get_session()
    contract = lookup.get_contract_for(db, contract_id, email)
    expected = whole_number(request.form.get("amount"))
    try:
        if expected is None:
            raise Conflict("the refund shown is missing", code="quote_changed")
        refund = cancellation.cancel_by_customer(session=db, settings=settings(),
                                                 contract=contract, email=email,
                                                 today=today(), expected_amount=expected)
        try:
            db.commit()
        except IntegrityError:
            raise Conflict("another request changed this plan at the same time",
                           code="concurrent_change") from None
    except Conflict as exc:
        db.rollback()
        contract = lookup.get_contract_for(db, contract_id, email)
        offer = cancellation.self_cancel_quote(session=db, settings=settings(),
                                               contract=contract, today=today())
        if exc.code == "quote_changed" and offer.refused is None:
            return render_template("customer/cancel.html", contract=contract,
                                   quote=offer.quote, moved=True,
                                   free_look_days=settings().free_look_days), 409
        return _contract_page(email, contract, errors={"cancel": exc.code}, status=409)
    if refund.status == "pending":
        # After the commit: Stripe is asked now; the worker retries a failed call.
        payment_refunds.execute_refund(settings=settings(), stripe_client=stripe_client(),
                                       refund_id=refund.id)
    return redirect(url_for("customer.contract_page", contract_id=contract.public_id,
                            cancelled=1), 303)


@bp.get("/terms")
def terms():
    """What the plans cover and the cancellation terms, as the store sets them (public)."""
    return render_template("customer/terms.html", settings=settings())


@bp.route("/plans/<contract_id>/claims/new", methods=["GET", "POST"])
@customer_required
def new_claim(email: str, contract_id: str):
    """The claim form for one of the customer's plans."""
    db = get_session()
    contract = lookup.get_contract_for(db, contract_id, email)
    values = _form_values() if request.method == "POST" else {}
    errors: dict = {}
    if request.method == "POST":
        actor = f"customer:{email}"

        def action(**fields):
            """File the claim for the signed-in customer."""
            return filing.file_claim(session=db, settings=settings(), contract=contract,
                                     customer_email=email, actor=actor, today=today(),
                                     lang=page_language(), source="web", **fields)

        claim, errors = _submit_claim(action, values, contract.currency)
        if not errors:
            db.commit()
            return redirect(url_for("customer.claim_page", claim_id=claim.public_id), 303)
    return render_template("customer/claim_form.html", contract=contract, claim=None,
                           values=values, errors=errors,
                           window=_claim_window(contract)), 422 if errors else 200


@bp.get("/claims/<claim_id>")
@customer_required
def claim_page(email: str, claim_id: str):
    """A claim's status, decision and timeline; the reopened form when info is requested."""
    db = get_session()
    claim = queries.get_claim_for(db, claim_id, email)
    return _render_claim(claim, values=None, errors={})


def _render_claim(claim, *, values: dict | None, errors: dict, status: int = 200):
    """The claim page (with the answer form's text and errors, if any)."""
    db = get_session()
    contract = db.get(Contract, claim.contract_id)
    g.page_path = url_for("customer.claim_page", claim_id=claim.public_id)  # language switch
    return render_template("customer/claim.html", claim=claim, contract=contract,
                           events=queries.timeline(db, claim), files=queries.files_of(db, claim),
                           messages=queries.messages(db, claim),
                           payout=queries.payout_of(db, claim),
                           deny_text=transitions.deny_text(claim, page_language()),
                           deny_codes=transitions.DENY_CODES, values=values or {},
                           errors=errors), status


@bp.post("/claims/<claim_id>/resubmit")
@customer_required
def resubmit(email: str, claim_id: str):
    """The customer's answer to a request for more information: added to the claim's
    messages, never written over what was filed first."""
    db = get_session()
    claim = queries.get_claim_for(db, claim_id, email)
    message = (request.form.get("message") or "")[:10000]
    errors: dict = {field: f"problem.{code}" for field, code in rules.answer_problems(message)}
    files = read_uploads()
    if not errors:
        try:
            filing.resubmit(session=db, settings=settings(), claim=claim, message=message,
                            files=files, actor=f"customer:{email}", today=today())
        except uploads.UploadRefused as exc:
            db.rollback()
            name = (exc.details or {}).get("name", "")
            errors = {"files": ("upload." + exc.code, {"name": name})}
    if errors:
        return _render_claim(claim, values={"message": message}, errors=errors, status=422)
    db.commit()
    return redirect(url_for("customer.claim_page", claim_id=claim.public_id), 303)


@bp.get("/claims/<claim_id>/files/<file_id>")
@customer_required
def claim_file(email: str, claim_id: str, file_id: str):
    """One of the customer's own attachments, as a download."""
    db = get_session()
    claim = queries.get_claim_for(db, claim_id, email)
    return send_claim_file(queries.get_file(db, claim, file_id))


@bp.get("/contracts/<contract_id>/certificate.pdf")
@customer_required
def certificate(email: str, contract_id: str):
    """The certificate (PDF, ``?lang=ja|en``) of one of the customer's own plans. It names
    the customer and the product: like claims and files, it needs the mailed link's sign-in
    (an order reference gets the page offering the link)."""
    db = get_session()
    contract = lookup.get_contract_for(db, contract_id, email)
    return send_certificate(db, contract, request.args.get("lang") or page_language())


@bp.route("/nps", methods=["GET", "POST"])
def nps():
    """The 0-10 question after a claim closed, reached through its signed link."""
    token = request.values.get("token") or ""
    db = get_session()
    claim = claims_nps.claim_from_nps_token(db, settings(), token)
    if claims_nps.nps_answer(db, claim) is not None:
        return render_template("customer/nps.html", token=token, state="already", errors={})
    if request.method == "GET":
        return render_template("customer/nps.html", token=token, state="ask", errors={})
    score = whole_number(request.form.get("score"))
    if score is None or not 0 <= score <= 10:
        return render_template("customer/nps.html", token=token, state="ask",
                               errors={"score": "nps.choose"}), 422
    claims_nps.record_nps(session=db, claim=claim, score=score,
                      comment=request.form.get("comment") or "")
    db.commit()
    return render_template("customer/nps.html", token=token, state="thanks", errors={})
