"""Outbound webhooks to the store: signed, retried with backoff, dead after N attempts."""

import hashlib
import hmac
import json
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sqlalchemy as sa
from sqlmodel import select

from tests.conftest import POLL_SECONDS
from tests.factories import paid_order
from warranty.contracts import notices as notifications
from warranty.core.dates import utcnow
from warranty.db import outbox as jobs
from warranty.notify.models import OutboundWebhook
from warranty.notify.webhooks import run_webhooks
from warranty.orders.models import Order

SECRET = "whsec_store_test_0123456789"


@pytest.fixture
def receiver():
    """The store's endpoint on a free port: answers ``status[0]`` (or what calling it returns,
    which may wait), keeps (headers, body)."""
    got, status = [], [500]

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.append((dict(self.headers), body))
            self.send_response(status[0]() if callable(status[0]) else status[0])
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(POLL_SECONDS,), daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/warranty-events", got, status
    server.shutdown()
    server.server_close()


@pytest.fixture
def hook_settings(settings, receiver):
    """Settings that deliver to the receiver."""
    return settings.model_copy(update={"store_webhook_url": receiver[0],
                                       "store_webhook_secret": SECRET})


def queue_created(db, settings):
    """An order with two contracts and their contract.created events (committed)."""
    order, created = paid_order(db, quantity=2, plan_quantity=2)
    notifications.notify_contracts_created(session=db, settings=settings, order=order,
                                           contracts=created)
    db.commit()
    return order, created


def verify(headers: dict, body: bytes, secret: str = SECRET, tolerance: int = 300) -> dict:
    """What a store does (the README's snippet): check the signature, then parse."""
    parts = dict(item.split("=", 1) for item in headers["Warranty-Signature"].split(","))
    expected = hmac.new(secret.encode(), f"{parts['t']}.".encode() + body,
                        hashlib.sha256).hexdigest()
    assert hmac.compare_digest(expected, parts["v1"])
    assert abs(time.time() - int(parts["t"])) < tolerance
    return json.loads(body)


def test_delivered_signed_after_retries_while_the_store_fails(db, hook_settings, receiver):
    _, got, status = receiver
    order, created = queue_created(db, hook_settings)
    before = utcnow()
    assert run_webhooks(settings=hook_settings, limit=10) == 2
    rows = db.exec(select(OutboundWebhook).order_by(OutboundWebhook.id)).all()
    assert [(r.status, r.attempts) for r in rows] == [("pending", 1), ("pending", 1)]
    assert rows[0].last_error == "store answered HTTP 500"
    assert 29 <= (rows[0].next_attempt_at - before).total_seconds() <= 31
    db.commit()
    assert run_webhooks(settings=hook_settings, limit=10) == 0  # backing off
    db.exec(sa.update(OutboundWebhook).values(next_attempt_at=utcnow()))  # time passes
    db.commit()
    eager = hook_settings.model_copy(update={"retry_base_seconds": 0})
    assert run_webhooks(settings=eager, limit=10) == 2  # the store still fails
    status[0] = 204
    assert run_webhooks(settings=eager, limit=10) == 2
    assert run_webhooks(settings=eager, limit=10) == 0
    db.expire_all()
    rows = db.exec(select(OutboundWebhook).order_by(OutboundWebhook.id)).all()
    assert [(r.status, r.attempts) for r in rows] == [("delivered", 3), ("delivered", 3)]
    delivered = got[-2:]
    events = [verify(headers, body) for headers, body in delivered]
    assert [e["type"] for e in events] == ["contract.created", "contract.created"]
    assert {e["data"]["contract"]["id"] for e in events} == {c.public_id for c in created}
    assert events[0]["data"]["contract"]["store_order_ref"] == order.store_order_ref
    assert delivered[0][0]["Warranty-Event-Id"] == events[0]["id"] == rows[0].event_id
    # Every try carried the same event id, so the store can deduplicate.
    assert len({h["Warranty-Event-Id"] for h, _ in got}) == 2 and len(got) == 6


def test_a_forged_or_altered_delivery_fails_verification(db, hook_settings, receiver):
    _, got, status = receiver
    status[0] = 200
    queue_created(db, hook_settings)
    run_webhooks(settings=hook_settings, limit=1)
    headers, body = got[0]
    verify(headers, body)
    with pytest.raises(AssertionError):
        verify(headers, body.replace(b"buyer", b"thief"))
    with pytest.raises(AssertionError):
        verify(headers, body, secret="another-secret-entirely")


def test_dead_after_the_maximum_attempts(db, hook_settings, receiver):
    settings = hook_settings.model_copy(update={"retry_base_seconds": 0,
                                                "webhook_max_attempts": 3})
    queue_created(db, settings)
    for _ in range(3):
        assert run_webhooks(settings=settings, limit=10) == 2
    assert run_webhooks(settings=settings, limit=10) == 0
    rows = db.exec(select(OutboundWebhook)).all()
    assert [(r.status, r.attempts) for r in rows] == [("dead", 3), ("dead", 3)]


def test_events_wait_stored_while_no_store_url_is_set(db, settings, hook_settings, receiver):
    _, got, status = receiver
    status[0] = 200
    queue_created(db, settings)
    assert run_webhooks(settings=settings, limit=10) == 0
    assert run_webhooks(settings=hook_settings, limit=10) == 2
    assert len(got) == 2


def test_unreachable_store_is_retried(db, hook_settings):
    down = hook_settings.model_copy(update={"store_webhook_url": "http://127.0.0.1:9/x"})
    queue_created(db, down)
    assert run_webhooks(settings=down, limit=10) == 2
    row = db.exec(select(OutboundWebhook)).first()
    assert row.status == "pending" and row.last_error.startswith("delivery failed")


def test_no_second_event_for_contracts_already_notified(db, settings):
    order, _ = queue_created(db, settings)
    notifications.notify_contracts_created(session=db, settings=settings,
                                           order=db.get(Order, order.id), contracts=[])
    db.commit()
    assert len(db.exec(select(OutboundWebhook)).all()) == 2


def test_backoff_doubles_up_to_the_cap(settings):
    capped = settings.model_copy(update={"retry_base_seconds": 10, "retry_cap_seconds": 60})
    assert [jobs.backoff_seconds(n, capped) for n in range(0, 6)] == [0, 10, 20, 40, 60, 60]
    assert jobs.backoff_seconds(10_000, capped) == 60
    assert timedelta(seconds=jobs.backoff_seconds(3, settings)) == timedelta(seconds=120)


def test_an_event_that_cannot_be_serialised_is_dead_and_the_others_go(db, hook_settings,
                                                                      receiver):
    _, got, status = receiver
    status[0] = 200
    queue_created(db, hook_settings)
    # A lone surrogate is valid in stored JSON (as an escape) but has no UTF-8 form.
    bad = OutboundWebhook(type="contract.created", payload={"id": "evt_bad", "data": {
        "contract": {"product_title": "TV \ud800"}}})
    db.add(bad)
    db.commit()
    bad.next_attempt_at = utcnow().replace(year=2020)  # the longest due: first in the pass
    db.add(bad)
    db.commit()
    assert run_webhooks(settings=hook_settings, limit=10) == 3
    db.expire_all()
    rows = {r.event_id: r for r in db.exec(select(OutboundWebhook)).all()}
    dead = rows.pop(bad.event_id)
    assert (dead.status, dead.attempts) == ("dead", 1)
    assert dead.last_error.startswith("payload cannot be serialised: ")
    assert {(r.status, r.attempts) for r in rows.values()} == {("delivered", 1)}
    assert sorted(h["Warranty-Event-Id"] for h, _ in got) == sorted(rows)
    assert run_webhooks(settings=hook_settings, limit=10) == 0


def test_a_fulfilled_contract_reaches_the_store_signed(db, hook_settings, receiver,
                                                       store_key, staff_headers):
    from tests.http.api.test_claims_api import _body, _customer
    from tests.http.web.pages import PURCHASE
    from warranty.http.app import create_app

    _, got, status = receiver
    status[0] = 204
    client = create_app(hook_settings).test_client()
    _, (contract,) = paid_order(db, purchase_date=PURCHASE, plan_code="accident-36")
    claim = client.post("/api/v1/claims", headers=_customer(hook_settings, store_key),
                        json=_body(contract, failure_type="accident",
                                   incident_date="2024-03-01")).json
    approved = client.post(f"/api/v1/claims/{claim['id']}/approve", headers=staff_headers,
                           json={"decision": "replace", "amount": 150000})
    assert approved.status_code == 200, approved.json
    paid = client.post(f"/api/v1/claims/{claim['id']}/payout", headers=staff_headers,
                       json={"method": "replacement", "reference": "SN-2"})
    assert paid.status_code == 200, paid.json
    while run_webhooks(settings=hook_settings, limit=10):
        pass
    events = [verify(headers, body) for headers, body in got]
    fulfilled = [event for event in events if event["type"] == "contract.fulfilled"]
    assert len(fulfilled) == 1, [event["type"] for event in events]
    data = fulfilled[0]["data"]
    assert data["contract"]["id"] == contract.public_id
    assert data["contract"]["status"] == "fulfilled"
    assert (data["reason"], data["claim"]) == ("product replaced", claim["id"])
