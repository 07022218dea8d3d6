"""Storefront text never reaches a mail header as a new line: refused at intake (a 422 naming
the field), and a stored mail is built safely whatever it holds."""

from __future__ import annotations

import pytest
from sqlmodel import select

from tests.factories import paid_order
from warranty.notify.mail import UnsendableMail, build_message, run_mail
from warranty.notify.models import MailMessage
from warranty.orders.models import Order

URLS = {"success_url": "https://shop.example/ok", "cancel_url": "https://shop.example/cart"}
# CR/LF, a lone LF, a vertical tab, NEL and the Unicode line separator: each ends a line for
# some mail or CSV reader.
BREAKS = ["\r\nBcc: evil@attacker.example", "\nX-Evil: 1", "\x0bx", "\x85x", "\u2028x"]


def _cart(**changes) -> dict:
    """A cart of one product outside the catalog, without plans."""
    cart = {"order_ref": "A-1", "customer_email": "a@example.com", **URLS,
            "lines": [{"type": "product", "line_id": "p1", "sku": "CASE-1", "quantity": 1,
                       "unit_price": 1500, "title": "Case"}]}
    cart.update(changes)
    return cart


@pytest.mark.parametrize("tail", BREAKS)
@pytest.mark.parametrize(("field", "change"), [
    ("order_ref", lambda cart, bad: cart.update(order_ref="A-1" + bad)),
    ("customer_email", lambda cart, bad: cart.update(customer_email="a@example.com" + bad)),
    ("lines.0.product.title", lambda cart, bad: cart["lines"][0].update(title="Case" + bad)),
    ("lines.0.product.sku", lambda cart, bad: cart["lines"][0].update(sku="CASE-1" + bad)),
])
def test_checkout_refuses_line_breaks_naming_the_field(stripe_app, db, store_key, field, change,
                                                       tail):
    cart = _cart()
    change(cart, tail + " end")
    client = stripe_app.test_client()
    for path in ("/api/v1/checkout/sessions", "/api/v1/checkout/payment-intents"):
        body = cart if path.endswith("sessions") else {
            k: v for k, v in cart.items() if k not in URLS}
        res = client.post(path, json=body, headers=store_key)
        assert res.status_code == 422, res.json
        assert res.json["error"]["code"] == "invalid_request"
        (problem,) = res.json["error"]["details"]
        assert problem["at"] == field
        assert "one line" in problem["message"] or "email" in problem["message"]
    assert db.exec(select(Order)).all() == []


@pytest.mark.parametrize("tail", BREAKS)
def test_order_import_refuses_line_breaks_naming_the_field(client, db, staff_headers, tail):
    for field, value in (("order_ref", "EXT-1" + tail), ("email", "ann@example.com" + tail)):
        row = {"order_ref": "EXT-1", "email": "ann@example.com", "purchase_date": "2026-01-05",
               "total_amount": 1000, field: value}
        res = client.post("/api/v1/orders/import", json={"orders": [row]},
                          headers=staff_headers)
        assert res.status_code == 422, res.json
        assert res.json["error"]["details"][0]["at"] == f"orders.0.{field}"
    assert db.exec(select(Order)).all() == []


@pytest.mark.parametrize("email", ["new@example.com\r\nBcc: evil@attacker.example",
                                   "new@example.com, evil@attacker.example",
                                   "new\u2028x@example.com"])
def test_transfer_refuses_anything_but_one_address(client, db, staff_headers, email):
    _, (contract,) = paid_order(db, email="old@example.com")
    res = client.post(f"/api/v1/contracts/{contract.public_id}/transfer", headers=staff_headers,
                      json={"email": email})
    assert res.status_code == 422 and res.json["error"]["details"][0]["at"] == "email"
    assert db.exec(select(MailMessage)).all() == []


def test_a_stored_subject_with_line_breaks_goes_out_as_one_header(db, mail_settings, smtp_sink):
    # Written before intake refused it (or by hand): the worker still sends one plain header.
    db.add(MailMessage(to="buyer@example.com", kind="purchase", body="Thank you.",
                       subject="Your plans (A-1\r\nBcc: evil@attacker.example\r\nX-Evil: 1)"))
    db.commit()
    assert run_mail(settings=mail_settings, limit=10) == 1
    (mail,) = smtp_sink.wait_for(1, to="buyer@example.com")
    assert mail.rcpt_tos == ("buyer@example.com",)
    assert mail.message["Bcc"] is None and mail.message["X-Evil"] is None
    assert mail.subject == "Your plans (A-1  Bcc: evil@attacker.example  X-Evil: 1)"
    assert db.exec(select(MailMessage.status)).one() == "sent"


@pytest.mark.parametrize("to", ["buyer@example.com, evil@attacker.example",
                                "buyer@example.com\r\nBcc: evil@attacker.example",
                                "Buyer <buyer@example.com>", "nobody"])
def test_a_stored_recipient_that_is_not_one_address_is_never_built(mail_settings, to):
    row = MailMessage(id=1, to=to, subject="s", body="b", kind="purchase")
    with pytest.raises(UnsendableMail, match="not one mail address"):
        build_message(mail_settings, row)



def test_a_path_never_writes_a_line_of_its_own_into_the_log(settings, staff_headers, caplog):
    """The error log names the request's path: one with line breaks (``%0a``) stays on its
    line, so nobody forges a log entry (here: while the database cannot be reached)."""
    import logging

    from warranty.http.app import create_app

    down = create_app(settings.model_copy(update={
        "database_url": "sqlite:////nonexistent-folder/warranty.db"}))
    forged = "INFO:warranty.http.web.staff:staff sign-in: admin@store.example (admin)"
    with caplog.at_level(logging.INFO):
        res = down.test_client().get(f"/api/v1/claims/x%0a{forged}%0d%0a", headers=staff_headers)
    assert res.status_code == 503
    messages = [record.getMessage() for record in caplog.records]
    assert any("database unavailable" in m for m in messages), messages
    assert not [m for m in messages if "\n" in m or "\r" in m], messages
