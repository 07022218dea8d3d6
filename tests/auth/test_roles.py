"""Every API endpoint and every staff page, called by every kind of caller, against one
explicit table of who may call what.

A new endpoint (spec.REGISTRY) or staff page (any route under /staff) fails these tests until
it is added to EXPECTED_API or EXPECTED_PAGES with the least role that may use it.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest

from tests.factories import add_staff, paid_order
from tests.http.web.pages import PURCHASE, csrf, sign_in_customer, sign_in_staff
from warranty.auth import credentials
from warranty.auth import roles as auth_roles
from warranty.auth import sessions as auth_sessions
from warranty.claims import filing
from warranty.db.engine import Session, get_engine
from warranty.http.api.spec import REGISTRY
from warranty.http.app import create_app

# Who may call each endpoint: "anyone"; "storefront" (the public key); "customer" (the public
# key with a customer token, or a staff token of any role); or the least staff role
# (support < finance < admin) whose bearer token may.
EXPECTED_API = {
    "stripe.receive": "anyone",
    "offers.get_offers": "storefront",
    "offers.batch_offers": "storefront",
    "checkout.create_session": "storefront",
    "checkout.create_payment_intent": "storefront",
    "checkout.post_purchase_offers": "storefront",
    "checkout.create_post_purchase": "storefront",
    "checkout.post_purchase_links": "support",  # capability links: never the public key
    "contracts.plans_link": "storefront",
    "experiment.get_assignment": "storefront",
    "experiment.post_events": "storefront",
    "claims_api.customer_plans": "customer",
    "claims_api.file_claim": "customer",
    "claims_api.get_claim": "customer",
    "claims_api.add_file": "customer",
    "claims_api.resubmit": "customer",
    "catalog.get_product": "support",
    "rules.list_versions": "support",
    "rules.get_version": "support",
    "claims_api.claim_queue": "support",
    "claims_api.customer_history": "support",
    "claims_api.approve": "support",
    "claims_api.deny": "support",
    "claims_api.request_info": "support",
    "claims_api.close": "support",
    "contracts.search_contracts": "support",
    "contracts.get_contract": "support",
    "contracts.quote_cancellation": "support",
    "contracts.transfer": "support",
    "contracts.cancel": "finance",
    "contracts.product_returned": "finance",
    "claims_api.payout": "finance",
    "reports.get_report": "finance",
    "catalog.upsert": "admin",
    "rules.upload": "admin",
    "orders_import.import_orders": "admin",
    "claims_api.customer_token": "admin",
    "attention.list_attention": "support",
    "periods.list_periods": "finance",
    "periods.close_month": "finance",
    "attention.handle_attention": "finance",
}
# The same for staff pages: "anyone" (sign-in, sign-out) or the least role.
EXPECTED_PAGES = {
    "staff.login": "anyone",
    "staff.logout": "anyone",
    "staff.queue": "support",
    "staff.review": "support",
    "staff.claim_file": "support",
    "staff.customer": "support",
    "staff.certificate": "support",
    "staff.approve": "support",
    "staff.deny": "support",
    "staff.request_info": "support",
    "staff.close": "support",
    "staff.pay": "finance",
    "staff.attention_queue": "support",
    "staff.handle_attention": "finance",
    "staff_reports.confirm_close": "finance",
    "staff_reports.close_month": "finance",
    "staff_reports.dashboard": "finance",
    "staff_reports.export": "finance",
}
STAFF_ROLES = ("support", "finance", "admin")
CALLERS = ("nobody", "storefront", "customer", *STAFF_ROLES)


def allowed(expected: str, caller: str) -> bool:
    """Whether ``caller`` may use something the table marks ``expected``."""
    if expected == "anyone":
        return True
    if expected == "storefront":
        return caller in ("storefront", "customer")
    if expected == "customer":
        return caller in ("customer", *STAFF_ROLES)
    return caller in STAFF_ROLES and STAFF_ROLES.index(caller) >= STAFF_ROLES.index(expected)


def test_the_expected_tables_match_the_permission_table(app):
    """Each endpoint's declared audience gives exactly the roles the table expects."""
    from warranty.http.api.spec import staff_permission

    assert set(EXPECTED_API) == {ep.name for ep in REGISTRY}, "add new endpoints here"
    for ep in REGISTRY:
        expected = EXPECTED_API[ep.name]
        if ep.auth in ("none", "public"):
            assert expected == {"none": "anyone", "public": "storefront"}[ep.auth], ep.name
            continue
        roles = [r for r in STAFF_ROLES if auth_roles.may(r, staff_permission(ep.auth, ep.method))]
        least = "support" if expected == "customer" else expected
        assert roles == list(STAFF_ROLES[STAFF_ROLES.index(least):]), ep.name


@pytest.fixture
def world(settings, db, store_key):
    """An app without rate limits, a claim and its file, and headers for every caller."""
    app = create_app(settings.model_copy(update={"rate_limits_enabled": False}))
    _, (contract,) = paid_order(db, purchase_date=PURCHASE)
    claim = filing.file_claim(session=db, settings=settings, contract=contract,
                              customer_email="buyer@example.com", incident_date=date(2025, 3, 1),
                              failure_type="breakdown", description="x", estimated_amount=None,
                              files=[], actor="customer:x", today=date(2026, 1, 1))
    db.commit()
    headers = {"nobody": {}, "storefront": dict(store_key)}
    with Session(get_engine(settings.database_url)) as session:
        token, _ = auth_sessions.start(session=session, kind="customer_api",
                                       subject="buyer@example.com", scope="full",
                                       lifetime=timedelta(hours=1), created_by="test")
        for role in STAFF_ROLES:
            headers[role] = {"Authorization": "Bearer " + credentials.issue_token(
                session=session, name=role, role=role)}
        session.commit()
    headers["customer"] = {**store_key, "X-Customer-Token": token}
    ids = {"contract_id": contract.public_id, "claim_id": claim.public_id, "file_id": "fl_x",
           "order_id": "ord_x", "line_no": 1, "sku": "TV-1", "version": 1, "name": "finance",
           "item_id": "att_x", "month": "2026-01"}
    return app, headers, ids


def _url(rule, ids) -> str:
    """A concrete URL for a route, with the world's ids."""
    return rule.build({k: v for k, v in ids.items() if k in rule.arguments},
                      append_unknown=False)[1]


def test_every_endpoint_for_every_caller(world):
    app, headers, ids = world
    client = app.test_client()
    by_name = {ep.name: ep for ep in REGISTRY}
    rules = {r.endpoint: r for r in app.url_map.iter_rules() if r.endpoint in by_name}
    answers = {}
    for name, ep in sorted(by_name.items()):
        url = _url(rules[name], ids)
        for caller in CALLERS:
            # An empty body: an allowed caller gets a validation error, never a change.
            res = client.open(url, method=ep.method.upper(), headers=headers[caller],
                              json={} if ep.method == "post" else None)
            answers[name, caller] = res.status_code
    wrong = {(name, caller): code for (name, caller), code in answers.items()
             if allowed(EXPECTED_API[name], caller) == (code in (401, 403))}
    assert wrong == {}, f"answers that break the roles table: {wrong}"
    # Refusals say why: 401 without the right credentials, 403 for a role short of it.
    for (name, caller), code in answers.items():
        if code in (401, 403) and caller in STAFF_ROLES and EXPECTED_API[name] in STAFF_ROLES:
            assert code == 403, (name, caller)


def test_every_staff_page_for_every_caller(world, settings, db):
    app, _, ids = world
    for role in STAFF_ROLES:
        add_staff(db, email=f"{role}@store.example", role=role)
    staff_rules = [r for r in app.url_map.iter_rules() if r.rule.startswith("/staff")]
    assert {r.endpoint for r in staff_rules} == set(EXPECTED_PAGES), "add new pages here"
    wrong = {}
    for caller in CALLERS:
        client = app.test_client()
        environ = {}
        if caller in STAFF_ROLES:
            sign_in_staff(client, f"{caller}@store.example")
        elif caller == "customer":
            sign_in_customer(client, settings)
        elif caller == "storefront":
            environ = {"HTTP_X_WARRANTY_KEY": "pk_test_store"}
        token = csrf(client, "/staff/login")
        # Signing out last keeps the caller signed in for every other page.
        for rule in sorted(staff_rules, key=lambda r: r.endpoint == "staff.logout"):
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                res = client.open(_url(rule, ids), method=method, environ_base=environ,
                                  data={"csrf_token": token} if method == "POST" else None)
                to_login = (res.status_code == 302
                            and res.headers["Location"].startswith("/staff/login"))
                refused = to_login or res.status_code == 403
                if refused == allowed(EXPECTED_PAGES[rule.endpoint], caller):
                    wrong[rule.rule, method, caller] = res.status_code
                if res.status_code == 403:
                    assert caller in STAFF_ROLES, (rule.rule, caller)  # others: sign in
                    assert re.search(r"needs the (finance|admin)", res.get_data(as_text=True))
    assert wrong == {}, f"staff pages that break the roles table: {wrong}"
