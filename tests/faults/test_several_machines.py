"""Two machines: two app servers and two workers on one PostgreSQL database and one Redis.

Each "machine" is an app server process of its own (gunicorn, its own port) and a
``warranty worker`` process; they share only the database URL and the rate-limit storage.
Purchases go through both servers, and the Stripe stand-in delivers every event to both.
"""

from __future__ import annotations

import contextlib
import uuid
from collections import Counter

import pytest
import redis
import requests
from prometheus_client.parser import text_string_to_metric_families
from sqlmodel import func, select

from tests.conftest import PUBLIC_KEY
from tests.factories import add_product, load_rules
from tests.faults.conftest import gunicorn, worker_process
from tests.notify.test_store_webhooks import SECRET as STORE_SECRET
from tests.stripe_helpers import WEBHOOK_SECRET, pay_hosted, wait_for
from warranty.contracts.models import Contract, ContractEvent
from warranty.notify.models import MailMessage, OutboundWebhook
from warranty.orders.models import Order

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
LOCK_KEY = "warranty-test:several-machines"
PURCHASES = 8
SHARED_LIMIT = 20  # per minute, per client address, for the experiment assignment endpoint


@pytest.fixture
def redis_db():
    """A Redis database no other run of this test uses meanwhile (1..15, claimed with a
    lock key that expires), emptied of rate-limit counts; skipped when Redis is down."""
    try:
        redis.Redis(host=REDIS_HOST, port=REDIS_PORT, socket_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.skip(f"needs Redis at {REDIS_HOST}:{REDIS_PORT}: {exc}")
    token = uuid.uuid4().hex
    for number in range(1, 16):
        client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=number, socket_timeout=2)
        if client.set(LOCK_KEY, token, nx=True, ex=900):
            break
        client.close()
    else:
        pytest.fail("every Redis database 1..15 is held by another run of this test")
    try:
        for key in client.scan_iter(match="*warranty*"):
            if key.decode() != LOCK_KEY:
                client.delete(key)
        yield number
    finally:
        for key in client.scan_iter(match="*warranty*"):
            if key.decode() != LOCK_KEY:
                client.delete(key)
        if client.get(LOCK_KEY) == token.encode():
            client.delete(LOCK_KEY)
        client.close()


def _requests_served(base: str, token: str) -> Counter:
    """(endpoint, status) → requests that server answered, from its Prometheus metrics."""
    text = requests.get(f"{base}/metrics", headers={"Authorization": f"Bearer {token}"},
                        timeout=10).text
    served = Counter()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "warranty_http_requests_total":
                served[(sample.labels["endpoint"], sample.labels["status"])] += sample.value
    return served


def _purchase(offers_from: str, checkout_on: str, n: int) -> tuple[str, str]:
    """Offers from one server, the checkout on the other, paid on the stand-in's page."""
    headers = {"X-Warranty-Key": PUBLIC_KEY}
    offers = requests.get(f"{offers_from}/api/v1/offers?sku=TV-1", headers=headers, timeout=30)
    assert offers.status_code == 200, offers.text
    email = f"machine-shopper{n}@example.com"
    started = requests.post(f"{checkout_on}/api/v1/checkout/sessions", headers=headers,
                            timeout=30, json={
        "order_ref": f"M-{n}", "customer_email": email,
        "success_url": "https://shop.example/ok", "cancel_url": "https://shop.example/no",
        "lines": [{"type": "product", "line_id": "p", "sku": "TV-1", "quantity": 2,
                   "unit_price": 120000},
                  {"type": "plan", "for_line": "p", "quantity": 2,
                   "offer_token": offers.json()["offers"][0]["offer_token"]}]})
    assert started.status_code == 201, started.text
    assert pay_hosted(started.json()["checkout_url"]).status_code == 303
    return started.json()["order_id"], email


def test_two_machines_do_each_thing_once_and_share_the_rate_limit(
        postgres_only, redis_db, mail_settings, db, stripe_standin, smtp_sink, receiver):
    load_rules(db)
    add_product(db)
    receiver[2][0] = 200
    settings = mail_settings.model_copy(update={
        "store_webhook_url": receiver[0],
        "store_webhook_secret": STORE_SECRET, "worker_interval_seconds": 0.2,
        "rate_limits_enabled": True,
        "ratelimit_storage_uri": f"redis://{REDIS_HOST}:{REDIS_PORT}/{redis_db}"})
    limit = {"WARRANTY_RATE_LIMIT_OFFERS": f"{SHARED_LIMIT}/minute"}
    with contextlib.ExitStack() as machines:
        (one, _), (two, _) = (machines.enter_context(gunicorn(settings, workers=1, **limit))
                              for _ in range(2))
        for _ in range(2):
            machines.enter_context(worker_process(settings))
        for name, base in (("one", one), ("two", two)):  # Stripe sends each event to both
            stripe_standin.register_webhook(name, f"{base}/stripe/webhook", WEBHOOK_SECRET)
        purchases = [_purchase(*((one, two) if n % 2 else (two, one)), n)
                     for n in range(PURCHASES)]

        def settled():
            db.expire_all()
            paid = db.exec(select(func.count()).select_from(Order)
                           .where(Order.status == "paid")).one()
            waiting = db.exec(select(func.count()).select_from(MailMessage)
                              .where(MailMessage.status != "sent")).one() + db.exec(
                select(func.count()).select_from(OutboundWebhook)
                .where(OutboundWebhook.status != "delivered")).one()
            return paid == PURCHASES and not waiting and len(smtp_sink.messages()) >= PURCHASES

        wait_for(settled, timeout=60)
        # Both machines took part: each took half the checkouts and answered every event.
        for base in (one, two):
            served = _requests_served(base, settings.api_token)
            assert served[("/api/v1/checkout/sessions", "201")] == PURCHASES // 2
            assert served[("/stripe/webhook", "200")] >= 2 * PURCHASES

        # The shared limit: one client's requests, alternating between the two servers, are
        # counted together; memory:// counts would have let 2 × SHARED_LIMIT through.
        answers = [requests.get(f"{base}/api/v1/experiment/assignment?visitor_id=v_shared",
                                headers={"X-Warranty-Key": PUBLIC_KEY}, timeout=10)
                   for base in [one, two] * SHARED_LIMIT]
    statuses = [a.status_code for a in answers]
    assert statuses == [200] * SHARED_LIMIT + [429] * SHARED_LIMIT
    assert all(int(a.headers["Retry-After"]) > 0 for a in answers[SHARED_LIMIT:])
    assert answers[-1].json()["error"]["code"] == "too_many_requests"

    db.expire_all()
    contracts = db.exec(select(Contract)).all()
    created = db.exec(select(func.count()).select_from(ContractEvent)
                      .where(ContractEvent.action == "created")).one()
    per_order = Counter(c.order_id for c in contracts)
    assert sorted(per_order.values()) == [2] * PURCHASES and created == 2 * PURCHASES
    # Each mail once, each store webhook once, whichever worker sent it.
    assert Counter(m.to for m in smtp_sink.messages()) == Counter(e for _, e in purchases)
    hooks = db.exec(select(OutboundWebhook)).all()
    assert len(hooks) == 2 * PURCHASES and {h.status for h in hooks} == {"delivered"}
    delivered = Counter(headers["Warranty-Event-Id"] for headers, _ in receiver[1])
    assert delivered == Counter(h.event_id for h in hooks)
