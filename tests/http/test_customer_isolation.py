"""Every customer route, walked from the app's url_map, as another customer: 404 or 403.

A new customer route with an id in its path fails this test until it is added here.
"""

from __future__ import annotations

import base64
from datetime import date

from sqlmodel import func, select

from tests.factories import JPEG, paid_order
from tests.http.api.test_claims_api import _body, _customer
from tests.http.web.pages import PURCHASE, csrf, sign_in_customer
from warranty.claims import attachments as uploads
from warranty.claims import filing, queries
from warranty.claims.models import Claim, ClaimFile
from warranty.http.api.spec import REGISTRY
from warranty.notify.models import MailMessage

OWNER, OTHER = "owner@example.com", "other@example.com"
PHOTO = {"filename": "tv.jpg", "content_base64": base64.b64encode(JPEG).decode()}


def _owner_data(db, settings):
    """The owner's contract, a claim on it and a file of that claim (committed)."""
    _, (contract,) = paid_order(db, purchase_date=PURCHASE, email=OWNER, order_ref="OWN-1")
    claim = filing.file_claim(session=db, settings=settings, contract=contract,
                              customer_email=OWNER, incident_date=date(2025, 3, 1),
                              failure_type="breakdown", description="owner's own words",
                              estimated_amount=30000,
                              files=[uploads.Upload(filename="tv.jpg", data=JPEG)],
                              actor=f"customer:{OWNER}", today=date(2026, 1, 1))
    db.commit()
    (attachment,) = queries.files_of(db, claim)
    return contract, claim, attachment


def _customer_routes(app):
    """(rule, methods) of every customer page and every customer-authenticated endpoint."""
    api = {(ep.path, ep.method.upper()) for ep in REGISTRY if ep.auth == "customer"}
    for rule in app.url_map.iter_rules():
        methods = sorted(rule.methods - {"HEAD", "OPTIONS"})
        if rule.endpoint.startswith("customer."):
            yield rule, methods, False
        else:
            api_methods = [m for m in methods if (rule.rule, m) in api]
            if api_methods:
                yield rule, api_methods, True


def test_no_customer_route_reaches_another_customers_data(app, client, db, settings,
                                                          store_key):
    contract, claim, attachment = _owner_data(db, settings)
    paid_order(db, purchase_date=PURCHASE, email=OTHER, order_ref="OTH-1")
    ids = {"contract_id": contract.public_id, "claim_id": claim.public_id,
           "file_id": attachment.public_id}
    sign_in_customer(client, settings, OTHER)
    token = csrf(client, "/my/plans")
    other_api = _customer(settings, store_key, OTHER)
    resubmit = {"message": "mine now"}
    api_bodies = {"/api/v1/claims": _body(contract), "/api/v1/claims/<claim_id>/files": PHOTO,
                  "/api/v1/claims/<claim_id>/resubmit": resubmit}
    walked = []
    # Signing out last keeps the other customer signed in for every other route.
    routes = sorted(_customer_routes(app), key=lambda r: r[0].endpoint == "customer.logout")
    for rule, methods, is_api in routes:
        unknown = set(rule.arguments) - set(ids)
        assert not unknown, f"{rule.rule}: add an owner's value for {unknown} to this test"
        url = rule.build(ids, append_unknown=False)[1] if rule.arguments else rule.rule
        for method in methods:
            if is_api:
                res = client.open(url, method=method, headers=other_api,
                                  json=api_bodies.get(rule.rule) if method == "POST" else None)
            else:
                form = {"csrf_token": token, "incident_date": "2025-03-01",
                        "failure_type": "breakdown", "description": "mine now"}
                res = client.open(url, method=method, data=form if method == "POST" else None,
                                  headers={"Accept": "text/html"})
            walked.append((method, rule.rule, res.status_code))
            text = res.get_data(as_text=True)
            if rule.arguments or (is_api and method == "POST"):
                assert res.status_code in (403, 404), (method, rule.rule, res.status_code)
            # Whatever the route answers, none of the owner's data is in it (a 404 may echo
            # the id the caller sent, nothing more).
            assert OWNER not in text and "owner's own words" not in text, rule.rule
            if not rule.arguments and rule.rule not in api_bodies:
                assert claim.public_id not in text and contract.public_id not in text
    assert {r for _, r, _ in walked} >= {"/my/claims/<claim_id>",
                                         "/my/claims/<claim_id>/files/<file_id>",
                                         "/my/plans/<contract_id>/claims/new",
                                         "/api/v1/claims/<claim_id>", "/api/v1/customer/plans"}
    assert db.exec(select(func.count()).select_from(Claim)).one() == 1
    assert db.exec(select(func.count()).select_from(ClaimFile)).one() == 1
    db.refresh(claim)
    assert claim.description == "owner's own words"


def test_an_order_reference_session_reaches_no_claim_or_file_even_of_its_own_address(
        app, client, db, settings):
    contract, claim, attachment = _owner_data(db, settings)
    _, (second,) = paid_order(db, purchase_date=PURCHASE, email=OWNER, order_ref="OWN-2")
    ids = {"contract_id": contract.public_id, "claim_id": claim.public_id,
           "file_id": attachment.public_id}
    # Whoever paid an order with the owner's address and chose its reference has this.
    assert client.post("/my/plans", data={"csrf_token": csrf(client), "email": OWNER,
                                          "order_ref": "OWN-2"}).status_code == 302
    token = csrf(client)
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("customer.") or not rule.arguments:
            continue
        url = rule.build(ids, append_unknown=False)[1]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            form = {"csrf_token": token, "incident_date": "2025-03-01",
                    "failure_type": "breakdown", "description": "mine now"}
            res = client.open(url, method=method, data=form if method == "POST" else None,
                              headers={"Accept": "text/html"})
            assert res.status_code == 403, (method, rule.rule, res.status_code)
            assert "owner's own words" not in res.get_data(as_text=True)
            assert res.data != JPEG
    page = client.get("/my/plans").get_data(as_text=True)
    assert second.public_id in page
    assert contract.public_id not in page and claim.public_id not in page
    assert db.exec(select(func.count()).select_from(Claim)).one() == 1


def test_after_a_transfer_the_contract_and_its_claims_follow_the_new_owner(
        app, client, db, settings, store_key, staff_headers):
    contract, claim, attachment = _owner_data(db, settings)
    old, new = app.test_client(), app.test_client()
    sign_in_customer(old, settings, OWNER)
    old_api = _customer(settings, store_key, OWNER)
    claim_page, file_url = (f"/my/claims/{claim.public_id}",
                            f"/my/claims/{claim.public_id}/files/{attachment.public_id}")
    assert old.get(claim_page).status_code == 200
    moved = client.post(f"/api/v1/contracts/{contract.public_id}/transfer",
                        headers=staff_headers, json={"email": "Heir@Example.com"})
    assert moved.status_code == 200, moved.json
    html = {"Accept": "text/html"}
    # The old owner: the plan and its claim are gone, from the pages and the API.
    assert old.get(claim_page, headers=html).status_code == 404
    assert old.get(file_url, headers=html).status_code == 404
    assert old.get(f"/my/plans/{contract.public_id}/claims/new",
                   headers=html).status_code == 404
    mine = old.get("/my/plans").get_data(as_text=True)
    assert contract.public_id not in mine and claim.public_id not in mine
    assert client.get(f"/api/v1/claims/{claim.public_id}", headers=old_api).status_code == 404
    assert client.get("/api/v1/customer/plans", headers=old_api).json["plans"] == []
    assert client.post("/my/plans", data={"csrf_token": csrf(client), "email": OWNER,
                                          "order_ref": "OWN-1"}).status_code == 422
    # The new owner: the plan, its claim and its file, showing the new owner.
    sign_in_customer(new, settings, "heir@example.com")
    theirs = new.get("/my/plans").get_data(as_text=True)
    assert contract.public_id in theirs and claim.public_id in theirs
    assert "heir@example.com" in theirs and OWNER not in theirs
    assert new.get(claim_page).status_code == 200
    with new.get(file_url) as download:
        assert download.data == JPEG
    new_api = _customer(settings, store_key, "heir@example.com")
    seen = client.get(f"/api/v1/claims/{claim.public_id}", headers=new_api).json
    assert seen["customer_email"] == "heir@example.com" and seen["filed_by"] is None
    assert OWNER not in str(seen)
    staff_view = client.get(f"/api/v1/claims/{claim.public_id}", headers=staff_headers).json
    assert (staff_view["customer_email"], staff_view["filed_by"]) == (
        "heir@example.com", OWNER)
    # The claim's next status mail goes to the owner who can open it.
    client.post(f"/api/v1/claims/{claim.public_id}/request-info", headers=staff_headers,
                json={"message": "A photo, please"})
    db.commit()
    mail = db.exec(select(MailMessage).where(MailMessage.kind == "claim_info_requested")).one()
    assert mail.to == "heir@example.com"
