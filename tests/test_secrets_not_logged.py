"""No secret reaches the logs: keys, tokens, webhook secrets and passwords, through a whole
purchase, its mail, a cancellation with its refund, a claim and staff sign-ins."""

from __future__ import annotations

import logging
from urllib.parse import parse_qs, urlsplit

from tests.factories import STAFF_PASSWORD, add_staff
from tests.http.web.pages import CSRF, csrf, sign_in_staff
from tests.notify.test_store_webhooks import SECRET as STORE_SECRET
from tests.payments.test_stripe_webhooks import post_event
from warranty.auth import links as magic_links
from warranty.http.app import create_app
from warranty.payments.client import make_client
from warranty.worker import run_once


def test_secrets_never_appear_in_the_logs(paid_without_webhooks, mail_settings, db,
                                          staff_headers, store_key, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    base_url, order_id, completed, _ = paid_without_webhooks
    settings = mail_settings.model_copy(update={
        "store_webhook_url": "http://127.0.0.1:9/hooks", "store_webhook_secret": STORE_SECRET,
        "smtp_password": "smtp-password-never-logged"})
    assert post_event(base_url, completed).json()["outcome"] == "paid"
    # Mail sent, store webhooks fail (logged).
    run_once(settings=settings, stripe_client=make_client(settings), limit=50)
    client = create_app(settings).test_client()
    contracts = client.get(f"/api/v1/contracts?order={order_id}", headers=staff_headers)
    contract_id = contracts.json["items"][0]["id"]
    quote = client.get(f"/api/v1/contracts/{contract_id}/cancellation-quote",
                       headers=staff_headers).json
    cancelled = client.post(f"/api/v1/contracts/{contract_id}/cancel", headers=staff_headers,
                            json={"amount": quote["amount"], "reason": "changed my mind"})
    assert cancelled.json["refund"]["status"] == "succeeded"
    customer_token = client.post("/api/v1/customer-tokens", headers=staff_headers,
                                 json={"email": "a@example.com"}).json["token"]
    link = magic_links.plans_link(settings, "a@example.com")
    link_token = parse_qs(urlsplit(link).query)["token"][0]
    page = client.get(link.removeprefix(settings.base_url))
    signed_in = client.post("/my/sign-in", data={"token": link_token,
                                                 "csrf_token": CSRF.search(page.text).group(1)})
    assert signed_in.status_code == 303
    customer_cookie = client.get_cookie("wty_customer").value
    claim = client.post("/api/v1/claims", headers={**store_key, "X-Customer-Token":
                                                  customer_token},
                        json={"contract_id": contracts.json["items"][1]["id"],
                              "incident_date": "2020-01-01", "failure_type": "breakdown",
                              "description": "it broke", "estimated_amount": 1000})
    assert claim.status_code in (201, 422)
    add_staff(db)
    sign_in_staff(client)
    staff_cookie = client.get_cookie("wty_staff", path="/staff").value
    wrong = client.post("/staff/login", data={"email": "alice@store.example",
                                              "password": "wrong-" + STAFF_PASSWORD,
                                              "csrf_token": csrf(client, "/staff/login")})
    assert wrong.status_code in (303, 401)
    client.get("/api/v1/contracts", headers={"Authorization": "Bearer not-the-token"})
    logged = caplog.text + "".join(capfd.readouterr())
    assert f"order {order_id} paid" in logged and "refund" in logged.lower()
    secrets = {"secret key": settings.secret_key, "API token": settings.api_token,
               "Stripe key": settings.stripe_api_key,
               "Stripe webhook secret": settings.stripe_webhook_secret,
               "store webhook secret": STORE_SECRET, "SMTP password": settings.smtp_password,
               "staff password": STAFF_PASSWORD, "customer token": customer_token,
               "sign-in link": link_token, "customer cookie": customer_cookie,
               "staff cookie": staff_cookie}
    leaked = [name for name, value in secrets.items() if value in logged]
    assert leaked == []
