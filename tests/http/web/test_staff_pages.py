"""Staff pages through HTTP: sign-in, queue, review decisions, payouts, customer history."""

import re
from datetime import date

import pytest
from sqlmodel import select

from tests.factories import JPEG, STAFF_PASSWORD, add_staff, paid_order
from tests.http.web.pages import PURCHASE, csrf, sign_in_staff
from warranty.claims import attachments as uploads
from warranty.claims import filing, queries
from warranty.claims.models import Claim, Payout
from warranty.contracts.models import Contract, ContractEvent
from warranty.notify.models import MailMessage

SCRIPT = "<script>alert(1)</script>"


def _claim(db, settings, *, email="buyer@example.com", description="No picture.",
           incident=date(2025, 3, 1), order_ref="A-1001", files=()):
    """A claim in review on a fresh plan (committed)."""
    _, (contract,) = paid_order(db, purchase_date=PURCHASE, email=email, order_ref=order_ref,
                                plan_code="accident-36")
    claim = filing.file_claim(session=db, settings=settings, contract=contract,
                              customer_email=email, incident_date=incident,
                              failure_type="breakdown", description=description,
                              estimated_amount=30000, files=list(files),
                              actor=f"customer:{email}", today=date(2026, 1, 1))
    db.commit()
    return claim


def _post(client, claim, action, **form):
    """Post one of the review page's forms."""
    page = f"/staff/claims/{claim.public_id}"
    form["csrf_token"] = csrf(client, page)
    return client.post(f"{page}/{action}", data=form)


def test_login_logout_and_wrong_passwords(client, db):
    add_staff(db)
    assert client.get("/staff/claims").headers["Location"].startswith("/staff/login")
    token = csrf(client, "/staff/login")
    wrong = client.post("/staff/login", data={"email": "alice@store.example",
                                              "password": "nope", "csrf_token": token})
    assert wrong.status_code == 401 and "wrong email or password" in wrong.get_data(as_text=True)
    unknown = client.post("/staff/login", data={"email": "mallory@store.example",
                                                "password": STAFF_PASSWORD, "csrf_token": token})
    assert unknown.status_code == 401
    no_csrf = client.post("/staff/login", data={"email": "alice@store.example",
                                                "password": STAFF_PASSWORD})
    assert no_csrf.status_code == 400
    sign_in_staff(client)
    assert client.get("/staff/claims").status_code == 200
    client.post("/staff/logout", data={"csrf_token": csrf(client, "/staff/claims")})
    assert client.get("/staff/claims").status_code == 302


def test_a_customer_session_is_not_a_staff_session(client, db, settings):
    from tests.http.web.pages import sign_in_customer

    paid_order(db)
    sign_in_customer(client, settings)
    assert client.get("/staff/claims").status_code == 302


def test_queue_filters_and_counts(client, db, settings):
    add_staff(db)
    review = _claim(db, settings, order_ref="A-1")
    denied = _claim(db, settings, incident=date(2024, 6, 1), order_ref="A-2")
    sign_in_staff(client)
    page = client.get("/staff/claims").get_data(as_text=True)
    assert review.public_id in page and denied.public_id in page
    assert re.search(r'id="count-in_review">1<', page) and re.search(r'id="count-denied">1<', page)
    only_review = client.get("/staff/claims?status=in_review").get_data(as_text=True)
    assert review.public_id in only_review and denied.public_id not in only_review
    other_category = client.get("/staff/claims?category=furniture").get_data(as_text=True)
    assert review.public_id not in other_category
    assert re.search(r'id="count-in_review">0<', other_category)
    future = client.get("/staff/claims?from=2999-01-01").get_data(as_text=True)
    assert review.public_id not in future
    today = queries.queue(db, queries.QueueFilter(date_from=review.created_at.date()),
                         timezone="UTC")[0]
    assert {c.public_id for c, _ in today} == {review.public_id, denied.public_id}


def test_review_approve_then_finance_pays(client, db, settings):
    add_staff(db)
    add_staff(db, email="fin@store.example", role="finance")
    claim = _claim(db, settings)
    sign_in_staff(client)
    review = client.get(f"/staff/claims/{claim.public_id}").get_data(as_text=True)
    assert "Approve" in review and "Record the payout" not in review
    assert _post(client, claim, "approve", decision="repair", amount="25,000",
                 note="Repair shop A").status_code == 303
    assert _post(client, claim, "pay", method="bank_transfer").status_code == 403
    finance = client.application.test_client()
    sign_in_staff(finance, "fin@store.example")
    # Finance may decide too (support's permissions and more): an approved claim can't be
    # denied, by the transition table.
    assert _post(finance, claim, "deny", reason="no").status_code == 409
    assert _post(finance, claim, "pay", method="repair_vendor",
                 reference="RO-77").status_code == 303
    db.expire_all()
    paid = db.get(Claim, claim.id)
    payout = db.exec(select(Payout)).one()
    assert (paid.status, paid.decision, paid.approved_amount) == ("paid", "repair", 25000)
    assert (payout.amount, payout.method, payout.reference) == (25000, "repair_vendor", "RO-77")
    actors = [e.actor for e in queries.timeline(db, paid)]
    assert actors[-2:] == ["staff:alice@store.example", "staff:fin@store.example"]
    db.commit()
    page = finance.get(f"/staff/claims/{claim.public_id}").get_data(as_text=True)
    # No approve form any more (the status "Approved" is still named in the timeline).
    assert "RO-77" in page and ">Approve<" not in page and "/approve" not in page


def test_deny_and_ask_for_information(client, db, settings):
    add_staff(db)
    first, second = _claim(db, settings, order_ref="A-1"), _claim(db, settings, order_ref="A-2")
    sign_in_staff(client)
    empty = _post(client, first, "deny", reason=" ")
    assert empty.status_code == 422 and "give the customer a reason" in empty.get_data(
        as_text=True)
    assert _post(client, first, "deny", reason="Water damage, not a breakdown.").status_code \
        == 303
    assert _post(client, second, "request-info",
                 message="A photo of the serial number, please.").status_code == 303
    db.expire_all()
    assert db.get(Claim, first.id).deny_reason == "Water damage, not a breakdown."
    assert db.get(Claim, second.id).status == "info_requested"
    kinds = db.exec(select(MailMessage.kind).order_by(MailMessage.id)).all()
    assert kinds[-3:] == ["claim_denied", "claim_nps", "claim_info_requested"]
    db.commit()  # end the read so the app may write (SQLite)
    refused = _post(client, first, "approve", decision="repair", amount="100")
    assert refused.status_code == 409 and "cannot become approved" in refused.get_data(
        as_text=True)


def test_close_when_nothing_is_payable(client, db, settings):
    add_staff(db, role="admin")
    claim = _claim(db, settings)
    sign_in_staff(client)
    _post(client, claim, "approve", decision="reimburse", amount="1")
    db.expire_all()
    contract = db.get(Contract, claim.contract_id)
    contract.deductible = 5000
    db.add(contract)
    db.commit()
    refused = _post(client, claim, "pay", method="bank_transfer")
    assert refused.status_code == 409 and "nothing is payable" in refused.get_data(as_text=True)
    assert _post(client, claim, "close", reason="below the deductible").status_code == 303
    db.expire_all()
    assert db.get(Claim, claim.id).status == "closed"


def test_a_replacement_payout_fulfils_the_plan(client, db, settings):
    add_staff(db, role="admin")
    claim = _claim(db, settings)
    sign_in_staff(client)
    _post(client, claim, "approve", decision="replace", amount="120000")
    assert _post(client, claim, "pay", method="replacement",
                 reference="new unit SN-2").status_code == 303
    event = db.exec(select(ContractEvent).order_by(ContractEvent.id.desc())).first()
    assert (event.action, event.to_status, event.reason) == ("fulfilled", "fulfilled",
                                                             "product replaced")


def test_customer_history_for_a_support_chat(client, db, settings):
    add_staff(db)
    claim = _claim(db, settings, description=SCRIPT)
    paid_order(db, email="someone@else.example", order_ref="Z-9")
    sign_in_staff(client)
    page = client.get("/staff/customers?email=BUYER@example.com").get_data(as_text=True)
    assert "A-1001" in page and "Z-9" not in page
    assert claim.public_id in page and "Orders (1)" in page and "Plans (1)" in page
    assert "Mails (1)" in page and "審査中" in page  # the in-review mail, in Japanese
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and SCRIPT not in page


def test_user_text_is_escaped_on_staff_pages(client, db, settings):
    add_staff(db)
    claim = _claim(db, settings, description=SCRIPT, email="x<b>@example.com",
                   files=[uploads.Upload('"><script>alert(2)</script>.jpg', JPEG)])
    sign_in_staff(client)
    for path in (f"/staff/claims/{claim.public_id}", "/staff/claims",
                 "/staff/customers?email=x<b>@example.com"):
        html = client.get(path).get_data(as_text=True)
        assert "<script>alert" not in html and "x<b>@" not in html, path
    review = client.get(f"/staff/claims/{claim.public_id}").get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in review


def test_staff_download_attachments(client, db, settings):
    add_staff(db)
    claim = _claim(db, settings, files=[uploads.Upload("tv.jpg", JPEG)])
    (row,) = queries.files_of(db, claim)
    db.commit()
    sign_in_staff(client)
    with client.get(f"/staff/claims/{claim.public_id}/files/{row.public_id}") as download:
        assert download.data == JPEG and download.headers["Content-Type"] == "image/jpeg"
        assert download.headers["Content-Disposition"] == "attachment; filename=tv.jpg"
        assert download.headers["X-Content-Type-Options"] == "nosniff"
    missing = client.get(f"/staff/claims/{claim.public_id}/files/fl_nope",
                         headers={"Accept": "text/html"})
    assert missing.status_code == 404


@pytest.mark.parametrize("bad", ["", "abc", "-5", "1e9", "Infinity", "12.5"])
def test_bad_amounts_are_refused_readably(client, db, settings, bad):
    add_staff(db)
    claim = _claim(db, settings)
    sign_in_staff(client)
    response = _post(client, claim, "approve", decision="repair", amount=bad)
    assert response.status_code == 422 and 'id="approve-error"' in response.get_data(
        as_text=True)


def test_staff_never_see_a_live_customer_link(client, db, settings, staff_headers):
    add_staff(db)
    claim = _claim(db, settings, incident=date(2024, 6, 1))  # denied: status and NPS mails
    order, created = paid_order(db, email="buyer@example.com", order_ref="A-2")
    from warranty.contracts import notices as notifications

    notifications.notify_contracts_created(session=db, settings=settings, order=order,
                                           contracts=created)
    notifications.send_plans_link(session=db, settings=settings, email="buyer@example.com")
    db.commit()
    mails = db.exec(select(MailMessage)).all()
    assert {m.kind for m in mails} >= {"purchase", "plans_link", "claim_denied", "claim_nps"}
    tokens = [t for m in mails for t in re.findall(r"token=([^&\s]+)", m.body)]
    assert len(tokens) >= 4  # what the customer gets still works
    sign_in_staff(client)
    page = client.get("/staff/customers?email=buyer@example.com").get_data(as_text=True)
    api = client.get("/api/v1/customers/history?email=buyer@example.com",
                     headers=staff_headers).json
    bodies = [m["body"] for m in api["mails"]]
    assert len(bodies) == len(mails) and claim.public_id in page
    for shown in [page, *bodies]:
        assert not any(token in shown for token in tokens)
        assert "token=" not in shown and settings.base_url + "/my" not in shown
    assert page.count("[link removed]") >= 4 and all("[link removed]" in b for b in bodies)
    assert "Your claim" in page or "申請" in page  # the rest of each mail is still there
