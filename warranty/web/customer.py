"""Customer pages (ja/en): find my plans, file a claim, follow it, answer the NPS question.

Every page that shows a plan or a claim checks that it belongs to the signed-in email
(kept in the session cookie); anyone else's id is a 404, exactly like a missing one.
"""

from __future__ import annotations

from datetime import date
from functools import wraps

from flask import Blueprint, redirect, render_template, request, session, url_for

from warranty import claims, i18n, magic_links, money, uploads
from warranty.db import get_session
from warranty.errors import DomainError
from warranty.models import Contract
from warranty.text import whole_number
from warranty.web import (
    install,
    page_language,
    protect,
    read_uploads,
    send_claim_file,
    settings,
    today,
)

bp = Blueprint("customer", __name__, url_prefix="/my")
protect(bp)
install(bp)


def signed_in_email() -> str | None:
    """The verified email of this browser session, if any."""
    email = session.get("customer_email")
    return email if isinstance(email, str) and "@" in email else None


def customer_required(view):
    """Pages for a signed-in customer: others are sent to the sign-in form."""

    @wraps(view)
    def wrapped(**kwargs):
        email = signed_in_email()
        if email is None:
            return redirect(url_for("customer.plans"))
        return view(email=email, **kwargs)

    return wrapped


def _sign_in(email: str) -> None:
    """Remember the verified email, starting a fresh session (no fixation)."""
    lang = session.get("lang")
    session.clear()
    session["customer_email"] = claims.normalize_email(email)
    if lang in i18n.LANGUAGES:
        session["lang"] = lang


def _safe_next(target: str | None) -> str | None:
    """Only our own claim pages are followed after a link sign-in (no open redirect)."""
    if target and target.startswith("/my/claims/") and "//" not in target and "\\" not in target:
        return target
    return None


@bp.get("/plans")
def plans():
    """The customer's plans and claims; the sign-in form when nobody is signed in."""
    token = request.args.get("token")
    if token:
        _sign_in(magic_links.email_from_plans_token(settings(), token))
        # Drop the token from the address bar (and from history) at once.
        return redirect(_safe_next(request.args.get("next")) or url_for("customer.plans"))
    email = signed_in_email()
    if email is None:
        return render_template("customer/find.html", values={}, errors={})
    db = get_session()
    contracts = claims.plans_for(db, email)
    by_contract: dict[int, list] = {}
    for claim in claims.claims_for(db, email):
        by_contract.setdefault(claim.contract_id, []).append(claim)
    return render_template("customer/plans.html", email=email, contracts=contracts,
                           claims_by_contract=by_contract)


@bp.post("/plans")
def find_plans():
    """Sign in with the email and order reference of a purchase."""
    email = (request.form.get("email") or "").strip()
    order_ref = (request.form.get("order_ref") or "").strip()
    errors = {}
    if "@" not in email or len(email) > 320:
        errors["email"] = "problem.invalid_email"
    if not order_ref or len(order_ref) > 200:
        errors["order_ref"] = "problem.required"
    if not errors and not claims.email_owns_order(get_session(), email, order_ref):
        errors["form"] = "find.no_match"
    if errors:
        return render_template("customer/find.html", values={"email": email,
                                                             "order_ref": order_ref},
                               errors=errors), 422
    _sign_in(email)
    return redirect(url_for("customer.plans"))


@bp.post("/logout")
def logout():
    """Forget the customer (the language choice stays)."""
    session.pop("customer_email", None)
    return redirect(url_for("customer.plans"))


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
        parsed["estimated_amount"] = claims.parse_amount(values["estimated_amount"], currency)
    except DomainError:
        errors["estimated_amount"] = "problem.invalid_amount"
    return parsed, errors


def _submit_claim(action, values: dict, currency: str) -> tuple[object, dict]:
    """Run a filing or a resubmission; returns (result, field errors as message keys)."""
    parsed, errors = _parse_claim_form(values, currency)
    for field, code in claims.input_problems(today=today(), **parsed):
        errors.setdefault(field, f"problem.{code}")
    files = read_uploads()
    if errors:
        return None, errors
    try:
        return action(files=files, **parsed), {}
    except uploads.UploadRefused as exc:
        name = (exc.details or {}).get("name", "")
        return None, {"files": ("upload." + exc.code, {"name": name})}


@bp.route("/plans/<contract_id>/claims/new", methods=["GET", "POST"])
@customer_required
def new_claim(email: str, contract_id: str):
    """The claim form for one of the customer's plans."""
    db = get_session()
    contract = claims.get_contract_for(db, contract_id, email)
    values = _form_values() if request.method == "POST" else {}
    errors: dict = {}
    if request.method == "POST":
        actor = f"customer:{email}"

        def action(**fields):
            """File the claim for the signed-in customer."""
            return claims.file_claim(session=db, settings=settings(), contract=contract,
                                     customer_email=email, actor=actor, today=today(),
                                     lang=page_language(), source="web", **fields)

        claim, errors = _submit_claim(action, values, contract.currency)
        if not errors:
            db.commit()
            return redirect(url_for("customer.claim_page", claim_id=claim.public_id), 303)
    return render_template("customer/claim_form.html", contract=contract, claim=None,
                           values=values, errors=errors), 422 if errors else 200


@bp.get("/claims/<claim_id>")
@customer_required
def claim_page(email: str, claim_id: str):
    """A claim's status, decision and timeline; the reopened form when info is requested."""
    db = get_session()
    claim = claims.get_claim_for(db, claim_id, email)
    return _render_claim(claim, values=None, errors={})


def _render_claim(claim, *, values: dict | None, errors: dict, status: int = 200):
    """The claim page (with the resubmission form's values and errors, if any)."""
    db = get_session()
    contract = db.get(Contract, claim.contract_id)
    if values is None:
        values = {"incident_date": claim.incident_date.isoformat(),
                  "failure_type": claim.failure_type, "description": claim.description,
                  "estimated_amount": "" if claim.estimated_amount is None else
                  str(money.to_major(claim.estimated_amount, contract.currency))}
    return render_template("customer/claim.html", claim=claim, contract=contract,
                           events=claims.timeline(db, claim), files=claims.files_of(db, claim),
                           payout=claims.payout_of(db, claim),
                           deny_text=claims.deny_text(claim, page_language()),
                           deny_codes=claims.DENY_CODES, values=values,
                           errors=errors), status


@bp.post("/claims/<claim_id>/resubmit")
@customer_required
def resubmit(email: str, claim_id: str):
    """The customer's answer to a request for more information."""
    db = get_session()
    claim = claims.get_claim_for(db, claim_id, email)
    contract = db.get(Contract, claim.contract_id)
    values = _form_values()

    def action(**fields):
        """Resubmit the claim with the new fields and files."""
        return claims.resubmit(session=db, settings=settings(), claim=claim,
                               actor=f"customer:{email}", today=today(), **fields)

    _, errors = _submit_claim(action, values, contract.currency)
    if errors:
        return _render_claim(claim, values=values, errors=errors, status=422)
    db.commit()
    return redirect(url_for("customer.claim_page", claim_id=claim.public_id), 303)


@bp.get("/claims/<claim_id>/files/<file_id>")
@customer_required
def claim_file(email: str, claim_id: str, file_id: str):
    """One of the customer's own attachments, as a download."""
    db = get_session()
    claim = claims.get_claim_for(db, claim_id, email)
    return send_claim_file(claims.get_file(db, claim, file_id))


@bp.route("/nps", methods=["GET", "POST"])
def nps():
    """The 0-10 question after a claim closed, reached through its signed link."""
    token = request.values.get("token") or ""
    db = get_session()
    claim = claims.claim_from_nps_token(db, settings(), token)
    if claims.nps_answer(db, claim) is not None:
        return render_template("customer/nps.html", token=token, state="already", errors={})
    if request.method == "GET":
        return render_template("customer/nps.html", token=token, state="ask", errors={})
    score = whole_number(request.form.get("score"))
    if score is None or not 0 <= score <= 10:
        return render_template("customer/nps.html", token=token, state="ask",
                               errors={"score": "nps.choose"}), 422
    claims.record_nps(session=db, claim=claim, score=score,
                      comment=request.form.get("comment") or "")
    db.commit()
    return render_template("customer/nps.html", token=token, state="thanks", errors={})
