"""Claims API: a store's own form (public key + customer token) and staff tools."""

import base64
from datetime import timedelta

import sqlalchemy as sa
from sqlmodel import select

from tests.factories import EXE, JPEG, paid_order
from tests.http.web.pages import PURCHASE
from warranty.auth import credentials
from warranty.auth import links as magic_links
from warranty.auth import sessions as auth_sessions
from warranty.claims.models import Claim, Payout
from warranty.contracts.models import Contract, ContractEvent
from warranty.db.engine import Session, get_engine


def customer_token(settings, email="buyer@example.com") -> str:
    """A customer token as POST /api/v1/customer-tokens issues it (committed)."""
    with Session(get_engine(settings.database_url)) as session:
        token, _ = auth_sessions.start(session=session, kind="customer_api", subject=email,
                                       scope=auth_sessions.FULL, lifetime=timedelta(hours=1),
                                       created_by="test", prefix="wct_")
        session.commit()
    return token


def _customer(settings, store_key, email="buyer@example.com"):
    """Headers of a store's form acting for a customer."""
    return {**store_key, "X-Customer-Token": customer_token(settings, email)}


def _body(contract, **overrides):
    """A valid claim body."""
    body = {"contract_id": contract.public_id, "incident_date": "2025-03-01",
            "failure_type": "breakdown", "description": "<b>No sound</b>",
            "estimated_amount": 30000, "lang": "en"}
    body.update(overrides)
    return body


def test_customer_files_a_claim_with_a_file_and_reads_it(client, db, settings, store_key):
    _, (contract,) = paid_order(db, purchase_date=PURCHASE)
    headers = _customer(settings, store_key)
    plans = client.get("/api/v1/customer/plans", headers=headers)
    assert plans.status_code == 200 and plans.json["plans"][0]["id"] == contract.public_id
    filed = client.post("/api/v1/claims", json=_body(contract), headers=headers)
    assert filed.status_code == 201, filed.json
    claim = filed.json
    assert claim["status"] == "in_review" and claim["description"] == "<b>No sound</b>"
    assert [e["by"] for e in claim["timeline"]] == ["customer", "rules"]
    assert all(e["actor"] is None for e in claim["timeline"])
    photo = {"filename": "tv.jpg", "content_base64": base64.b64encode(JPEG).decode()}
    added = client.post(f"/api/v1/claims/{claim['id']}/files", json=photo, headers=headers)
    assert added.status_code == 201 and added.json["content_type"] == "image/jpeg"
    exe = {"filename": "tv.jpg", "content_base64": base64.b64encode(EXE).decode()}
    refused = client.post(f"/api/v1/claims/{claim['id']}/files", json=exe, headers=headers)
    assert refused.status_code == 422 and refused.json["error"]["code"] == "file_type_refused"
    bad64 = client.post(f"/api/v1/claims/{claim['id']}/files",
                        json={"filename": "a.jpg", "content_base64": "!!"}, headers=headers)
    assert bad64.status_code == 422
    again = client.get(f"/api/v1/claims/{claim['id']}", headers=headers)
    assert [f["filename"] for f in again.json["files"]] == ["tv.jpg"]


def test_customer_token_and_public_key_are_both_needed(client, db, settings, store_key):
    _, (contract,) = paid_order(db, purchase_date=PURCHASE)
    token = _customer(settings, store_key)["X-Customer-Token"]
    no_key = client.post("/api/v1/claims", json=_body(contract),
                         headers={"X-Customer-Token": token})
    assert no_key.status_code == 401
    no_token = client.post("/api/v1/claims", json=_body(contract), headers=store_key)
    assert no_token.json["error"]["code"] == "missing_customer_token"
    forged = client.post("/api/v1/claims", json=_body(contract),
                         headers={**store_key, "X-Customer-Token": token + "x"})
    assert forged.status_code == 401
    assert forged.json["error"]["code"] == "invalid_customer_token"
    assert db.exec(select(Claim)).all() == []


def test_other_customers_plans_and_claims_are_404(client, db, settings, store_key,
                                                  staff_headers):
    _, (theirs,) = paid_order(db, purchase_date=PURCHASE, email="other@example.com")
    theirs_claim = client.post("/api/v1/claims", json=_body(theirs),
                               headers=_customer(settings, store_key, "other@example.com")).json
    mine = _customer(settings, store_key)
    assert client.post("/api/v1/claims", json=_body(theirs), headers=mine).status_code == 404
    for path in (f"/api/v1/claims/{theirs_claim['id']}",):
        assert client.get(path, headers=mine).status_code == 404
    photo = {"filename": "tv.jpg", "content_base64": base64.b64encode(JPEG).decode()}
    assert client.post(f"/api/v1/claims/{theirs_claim['id']}/files", json=photo,
                       headers=mine).status_code == 404
    resubmit = {"message": "mine now"}
    assert client.post(f"/api/v1/claims/{theirs_claim['id']}/resubmit", json=resubmit,
                       headers=mine).status_code == 404
    assert client.get("/api/v1/customer/plans", headers=mine).json["plans"] == []
    staff_view = client.get(f"/api/v1/claims/{theirs_claim['id']}", headers=staff_headers)
    assert staff_view.status_code == 200 and staff_view.json["timeline"][0]["actor"] == (
        "customer:other@example.com")


def test_future_incident_and_bad_fields_are_422(client, db, settings, store_key):
    _, (contract,) = paid_order(db, purchase_date=PURCHASE)
    headers = _customer(settings, store_key)
    future = client.post("/api/v1/claims", json=_body(contract, incident_date="2999-01-01"),
                         headers=headers)
    assert future.status_code == 422
    assert future.json["error"]["details"][0] == {
        "at": "incident_date", "code": "in_future",
        "message": "the incident date cannot be in the future"}
    bad = client.post("/api/v1/claims", json=_body(contract, failure_type="flood",
                                                   estimated_amount=-1), headers=headers)
    assert bad.status_code == 422


def test_staff_review_and_finance_payout_over_the_api(client, db, settings, store_key,
                                                      staff_headers):
    _, (contract,) = paid_order(db, purchase_date=PURCHASE, plan_code="accident-36")
    claim = client.post("/api/v1/claims", json=_body(contract, failure_type="accident",
                                                     incident_date="2024-03-01"),
                        headers=_customer(settings, store_key)).json
    staff = {"Authorization": "Bearer "
             + credentials.issue_token(session=db, name="s", role="staff")}
    finance = {"Authorization": "Bearer " + credentials.issue_token(session=db, name="f",
                                                             role="finance")}
    db.commit()
    queue = client.get("/api/v1/claims?status=in_review", headers=staff)
    assert queue.status_code == 200 and queue.json["counts"]["in_review"] == 1
    assert [c["id"] for c in queue.json["claims"]] == [claim["id"]]
    # Finance holds every permission support has (and refunds, payouts, reports).
    assert client.get("/api/v1/claims", headers=finance).status_code == 200
    for extremes in ("date_from=0001-01-01&date_to=9999-12-31", "date_from=9999-12-31"):
        edge = client.get(f"/api/v1/claims?{extremes}", headers=staff)  # no overflow, no 500
        assert edge.status_code == 200
        assert len(edge.json["claims"]) == (1 if extremes.startswith("date_from=0001") else 0)
    info = client.post(f"/api/v1/claims/{claim['id']}/request-info",
                       json={"message": "Photo please"}, headers=staff)
    assert info.json["status"] == "info_requested"
    resubmit = client.post(f"/api/v1/claims/{claim['id']}/resubmit", headers=staff, json={
        "message": "photo sent"})
    assert resubmit.json["status"] == "in_review"
    assert [(m["author"], m["kind"], m["body"]) for m in resubmit.json["messages"]] == [
        ("staff", "info_request", "Photo please"), ("customer", "answer", "photo sent")]
    # The answer never rewrites the claim as filed.
    assert (resubmit.json["incident_date"], resubmit.json["failure_type"]) == (
        claim["incident_date"], claim["failure_type"])
    assert resubmit.json["description"] == claim["description"]
    old_shape = client.post(f"/api/v1/claims/{claim['id']}/resubmit", headers=staff, json={
        "incident_date": "2024-03-01", "failure_type": "accident", "description": "x"})
    assert old_shape.status_code == 422  # fields of the claim cannot be sent again
    approved = client.post(f"/api/v1/claims/{claim['id']}/approve", headers=staff,
                           json={"decision": "replace", "amount": 150000})
    assert approved.json["status"] == "approved"
    assert client.post(f"/api/v1/claims/{claim['id']}/payout", headers=staff,
                       json={"method": "replacement"}).status_code == 403
    paid = client.post(f"/api/v1/claims/{claim['id']}/payout", headers=finance,
                       json={"method": "replacement", "reference": "SN-2"})
    assert paid.status_code == 200, paid.json
    assert paid.json["payout"]["amount"] == 120000  # capped at 100% of the product price
    again = client.post(f"/api/v1/claims/{claim['id']}/payout", headers=finance,
                        json={"method": "replacement"})
    assert again.status_code == 409
    db.expire_all()
    assert db.get(Contract, contract.id).status == "fulfilled"
    assert len(db.exec(select(Payout)).all()) == 1
    assert db.exec(select(ContractEvent.action).order_by(ContractEvent.id.desc())).first() == (
        "fulfilled")


def test_staff_deny_close_history_and_customer_tokens(client, db, settings, store_key,
                                                      staff_headers):
    _, (contract,) = paid_order(db, purchase_date=PURCHASE)
    issued = client.post("/api/v1/customer-tokens", json={"email": "Buyer@example.com"},
                         headers=staff_headers)
    assert issued.status_code == 201
    headers = {**store_key, "X-Customer-Token": issued.json["token"]}
    first = client.post("/api/v1/claims", json=_body(contract), headers=headers).json
    second = client.post("/api/v1/claims", json=_body(contract), headers=headers).json
    denied = client.post(f"/api/v1/claims/{first['id']}/deny", json={"reason": "Misuse"},
                         headers=staff_headers)
    assert denied.json["status"] == "denied" and denied.json["deny_reason"] == "Misuse"
    assert client.post(f"/api/v1/claims/{first['id']}/deny", json={"reason": "again"},
                       headers=staff_headers).status_code == 409
    client.post(f"/api/v1/claims/{second['id']}/approve", headers=staff_headers,
                json={"decision": "repair", "amount": 1000})
    closed = client.post(f"/api/v1/claims/{second['id']}/close", headers=staff_headers,
                         json={"reason": "customer withdrew"})
    assert closed.json["status"] == "closed"
    history = client.get("/api/v1/customers/history?email=buyer@example.com",
                         headers=staff_headers)
    assert history.status_code == 200
    assert [o["store_order_ref"] for o in history.json["orders"]] == ["A-1001"]
    assert len(history.json["plans"][0]["claims"]) == 2
    kinds = [m["kind"] for m in history.json["mails"]]
    assert kinds.count("claim_nps") == 2 and "claim_denied" in kinds
    assert client.get("/api/v1/customer/plans", headers=staff_headers).status_code == 422
    by_staff = client.get("/api/v1/customer/plans?email=buyer@example.com",
                          headers=staff_headers)
    assert by_staff.json["email"] == "buyer@example.com"


def test_api_posts_need_no_csrf_token(client, db, settings, store_key):
    _, (contract,) = paid_order(db, purchase_date=PURCHASE)
    client.get("/my/plans")  # a browser session with a CSRF token exists, unused
    response = client.post("/api/v1/claims", json=_body(contract),
                           headers=_customer(settings, store_key))
    assert response.status_code == 201


def test_openapi_documents_the_customer_auth(client):
    doc = client.get("/openapi.json").json
    op = doc["paths"]["/api/v1/claims"]["post"]
    assert op["security"] == [{"publicKey": [], "customerToken": []}, {"bearer": []}]
    assert doc["components"]["securitySchemes"]["customerToken"]["name"] == "X-Customer-Token"
    assert doc["paths"]["/api/v1/claims/{claim_id}/payout"]["post"]["security"] == [
        {"bearer": []}]


def test_customer_tokens_are_admin_only_recorded_short_lived_and_revocable(
        app, client, db, settings, store_key, monkeypatch, caplog):
    import logging

    from click.testing import CliRunner

    from tests.http.web.pages import sign_in_customer
    from warranty.auth.models import AuthSession
    from warranty.cli import main
    from warranty.core.dates import utcnow

    caplog.set_level(logging.INFO)
    _, (contract,) = paid_order(db, purchase_date=PURCHASE)
    support = {"Authorization": "Bearer " + credentials.issue_token(session=db, name="desk",
                                                             role="support")}
    admin = {"Authorization": "Bearer " + credentials.issue_token(session=db, name="shop-backend",
                                                           role="admin")}
    db.commit()
    refused = client.post("/api/v1/customer-tokens", json={"email": "buyer@example.com"},
                          headers=support)
    assert refused.status_code == 403
    issued = client.post("/api/v1/customer-tokens", json={"email": "Buyer@example.com"},
                         headers=admin)
    assert issued.status_code == 201 and issued.json["expires_in_seconds"] == 3600
    token = issued.json["token"]
    assert token.startswith("wct_")
    headers = {**store_key, "X-Customer-Token": token}
    assert client.get("/api/v1/customer/plans", headers=headers).json["plans"][0]["id"] == (
        contract.public_id)
    db.commit()
    row = db.exec(select(AuthSession).where(AuthSession.kind == "customer_api")).one()
    assert (row.subject, row.created_by) == ("buyer@example.com", "token:shop-backend")
    assert token not in row.token_hash and token not in caplog.text
    assert f"customer token {row.id} issued by token:shop-backend" in caplog.text
    db.commit()  # end the read (SQLite)
    # A mailed sign-in link is not a customer token.
    link_token = magic_links.plans_link(settings, "buyer@example.com").split("token=")[1]
    assert client.get("/api/v1/customer/plans", headers={
        **store_key, "X-Customer-Token": link_token}).status_code == 401
    # Revoked (with the customer's browser sessions) from the command line ...
    browser = app.test_client()
    sign_in_customer(browser, settings)
    for name, value in {"WARRANTY_ENV": "test", "WARRANTY_DATABASE_URL": settings.database_url,
                        "WARRANTY_SECRET_KEY": settings.secret_key}.items():
        monkeypatch.setenv(name, value)
    res = CliRunner().invoke(main, ["revoke-customer-sessions", "BUYER@example.com"])
    assert res.exit_code == 0 and "2 customer session(s)" in res.output, res.output
    gone = client.get("/api/v1/customer/plans", headers=headers)
    assert gone.status_code == 401 and gone.json["error"]["code"] == "invalid_customer_token"
    assert "Test TV" not in browser.get("/my/plans").get_data(as_text=True)
    # ... and over by themselves after their lifetime.
    later = client.post("/api/v1/customer-tokens", json={"email": "buyer@example.com"},
                        headers=admin).json["token"]
    db.exec(sa.update(AuthSession).values(expires_at=utcnow()))
    db.commit()
    assert client.get("/api/v1/customer/plans", headers={
        **store_key, "X-Customer-Token": later}).status_code == 401
