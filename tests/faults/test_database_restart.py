"""The database restarted under a running app and worker: they reconnect, nothing is lost,
nothing is done twice."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
import requests
import sqlalchemy as sa
import stripe
from sqlmodel import func, select

from devtools.settings import demo_settings
from tests.conftest import API_TOKEN, PUBLIC_KEY, SECRET
from tests.factories import add_product, load_rules, paid_order
from tests.faults.conftest import gunicorn, terminate_backends, worker_process
from tests.notify.test_store_webhooks import SECRET as STORE_SECRET
from tests.payments.test_stripe_webhooks import post_event
from tests.stripe_helpers import WEBHOOK_SECRET, order_state, pay_hosted, wait_for
from warranty.contracts import notices as notifications
from warranty.contracts.models import Contract, ContractEvent
from warranty.core.dates import utcnow
from warranty.db.engine import Session, get_engine, migrate
from warranty.notify.models import MailMessage, OutboundWebhook
from warranty.notify.webhooks import run_webhooks
from warranty.orders.models import Order, OrderLine
from warranty.payments.client import make_client
from warranty.payments.models import StripeEvent
from warranty.worker import run_once


def _other_backends(engine) -> int:
    """Connections to the test database other than this one."""
    with engine.connect() as conn:
        return conn.exec_driver_sql(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()").scalar()


def test_app_and_worker_reconnect_after_every_connection_is_killed(
        paid_without_webhooks, postgres_only, mail_settings, database_url, smtp_sink):
    _, order_id, completed, _ = paid_without_webhooks
    with gunicorn(mail_settings, workers=2) as (base, _master):
        offers = f"{base}/api/v1/offers?sku=TV-1&key={PUBLIC_KEY}"
        # Until every gunicorn worker holds pooled connections of both kinds (threaded
        # workers take connections in any order, so keep asking until all four exist).
        for _ in range(100):
            assert requests.get(f"{base}/healthz", timeout=10).status_code == 200
            assert requests.get(offers, timeout=10).status_code == 200
            if _other_backends(postgres_only) >= 4:
                break
        assert terminate_backends(postgres_only) >= 4
        # pool_pre_ping finds the dead connections and opens new ones; the offers reader
        # (no pre-ping) reads again on a new connection: no error reaches the caller, and
        # the event Stripe delivers now is applied.
        for _ in range(4):
            assert len(requests.get(offers, timeout=10).json()["offers"]) == 2
            assert requests.get(f"{base}/healthz", timeout=10).json()["database"] == "ok"
        assert post_event(base, completed).json()["outcome"] == "paid"
        assert terminate_backends(postgres_only) >= 1
        assert post_event(base, completed).json()["outcome"] == "duplicate"
    order, contracts = order_state(database_url, order_id)
    assert order.status == "paid" and len(contracts) == 3
    with Session(get_engine(database_url)) as session:
        notifications.queue_mail(session=session, to="late@example.com", subject="s", body="b",
                                 kind="t")
        session.commit()
    terminate_backends(postgres_only)  # the worker's pool dies too
    assert run_once(settings=mail_settings,
                    stripe_client=make_client(mail_settings), limit=10)["mail"] == 2
    assert {m.to for m in smtp_sink.wait_for(2)} >= {"a@example.com", "late@example.com"}
    with Session(get_engine(database_url)) as session:
        statuses = session.exec(select(MailMessage.status, func.count())
                                .group_by(MailMessage.status)).all()
    assert statuses == [("sent", 2)]


# --- a real restart: a PostgreSQL server of the test's own, stopped and started ----------


@pytest.fixture
def restart_settings(private_postgres, stripe_standin, smtp_sink, receiver, tmp_path):
    """App and worker settings on a new database of the private server: the stand-in, the
    SMTP sink and the store's endpoint (answering 200); rules and a product loaded."""
    url = private_postgres.new_database()
    migrate(url)
    with Session(get_engine(url)) as session:
        load_rules(session)
        add_product(session)
    stripe_standin.reset()
    smtp_sink.clear()
    receiver[2][0] = 200
    settings = demo_settings(
        env="test", database_url=url, secret_key=SECRET, api_token=API_TOKEN,
        public_key=PUBLIC_KEY, upload_dir=str(tmp_path / "uploads"),
        stripe_api_base=stripe_standin.url, stripe_api_key="sk_test_standin",
        stripe_webhook_secret=WEBHOOK_SECRET, smtp_port=smtp_sink.port,
        store_webhook_url=receiver[0], store_webhook_secret=STORE_SECRET,
        retry_base_seconds=1.0, worker_interval_seconds=0.2, rate_limits_enabled=False,
        allowed_origins="https://shop.example")
    yield settings
    stripe_standin.reset()
    get_engine(url).dispose()


def _until_answered(call, failures: list, deadline: float) -> requests.Response:
    """Call again while the service can't answer (5xx, refused); keeps what went wrong."""
    while True:
        try:
            res = call()
            if res.status_code < 500:
                return res
            failures.append((res.status_code, res.json()["error"]["code"]))
        except requests.ConnectionError:
            failures.append("refused")
        assert time.monotonic() < deadline, failures[-5:]
        time.sleep(0.3)


def _purchase(base: str, n: int, failures: list, deadline: float) -> tuple[str, str]:
    """One shopper's purchase of two TVs with two plans, paid on the stand-in's page."""
    headers = {"X-Warranty-Key": PUBLIC_KEY}
    offers = _until_answered(lambda: requests.get(f"{base}/api/v1/offers?sku=TV-1",
                                                  headers=headers, timeout=30),
                             failures, deadline)
    cart = {"order_ref": f"R-{n}", "customer_email": f"shopper{n}@example.com",
            "success_url": "https://shop.example/ok", "cancel_url": "https://shop.example/no",
            "lines": [{"type": "product", "line_id": "p", "sku": "TV-1", "quantity": 2,
                       "unit_price": 120000},
                      {"type": "plan", "for_line": "p", "quantity": 2,
                       "offer_token": offers.json()["offers"][0]["offer_token"]}]}
    started = _until_answered(lambda: requests.post(f"{base}/api/v1/checkout/sessions",
                                                    json=cart, headers=headers, timeout=30),
                              failures, deadline)
    assert started.status_code == 201, started.text
    assert pay_hosted(started.json()["checkout_url"]).status_code == 303
    return started.json()["order_id"], f"shopper{n}@example.com"


def _drain(settings, engine: sa.Engine) -> None:
    """With the worker processes stopped: time passes (every pending mail and webhook is
    due) and one worker runs until nothing is left."""
    for _ in range(20):
        with engine.begin() as conn:
            for model in (MailMessage, OutboundWebhook):
                conn.execute(sa.update(model).where(model.status == "pending")
                             .values(next_attempt_at=utcnow()))
        done = run_once(settings=settings, stripe_client=make_client(settings), limit=100)
        if not done["mail"] and not done["webhooks"]:
            return
    raise AssertionError("the outboxes did not drain")


def test_a_real_postgresql_restart_under_checkout_webhook_and_outbox_traffic(
        private_postgres, restart_settings, stripe_standin, smtp_sink, receiver):
    settings = restart_settings
    engine = get_engine(settings.database_url)
    failures: list = []
    purchases: list[tuple[str, str]] = []
    restarted, starts = threading.Event(), private_postgres.starts
    deadline = time.monotonic() + 240
    with gunicorn(settings, workers=2) as (base, _master), worker_process(settings), \
            worker_process(settings):
        stripe_standin.register_webhook("warranty", f"{base}/stripe/webhook", WEBHOOK_SECRET)

        def shopper(first: int) -> None:
            # Shop until both restarts are over, then once more on the recovered server.
            for n in range(first, first + 60):
                purchases.append(_purchase(base, n, failures, deadline))
                if restarted.is_set():
                    return
                time.sleep(0.2)

        def restarts() -> None:
            for _ in range(2):
                done = len(purchases)  # traffic flows: checkouts, webhooks, the outboxes
                wait_for(lambda done=done: len(purchases) >= done + 3, timeout=60)
                private_postgres.stop("immediate")  # every backend dies at once, as a crash
                time.sleep(2.0)
                private_postgres.start()  # crash recovery, then it accepts connections
            restarted.set()

        threads = [threading.Thread(target=shopper, args=(100 * k,)) for k in range(3)]
        threads.append(threading.Thread(target=restarts))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
        assert restarted.is_set() and private_postgres.starts == starts + 2
        time.sleep(2)  # the stand-in sends its webhooks a second after each payment
        # Stripe retries deliveries that failed (the stand-in does not): deliver every event
        # of the run again, the ones that went through included.
        for event in stripe.Event.list(limit=100).auto_paging_iter():
            if event.type in ("checkout.session.completed", "payment_intent.succeeded"):
                redelivered = post_event(base, event.to_dict())
                assert redelivered.status_code == 200, redelivered.text
    _drain(settings, engine)

    # Some calls did hit the outages, and every one of them was a 503, never a 500.
    assert failures and all(f == "refused" or f == (503, "database_unavailable")
                            for f in failures), failures
    paid_ids = {order_id for order_id, _ in purchases}
    with Session(engine) as session:
        orders = session.exec(select(Order)).all()
        lines = Counter(session.exec(select(OrderLine.order_id)).all())
        contracts = session.exec(select(Contract)).all()
        created = session.exec(select(func.count()).select_from(ContractEvent)
                               .where(ContractEvent.action == "created")).one()
        events = session.exec(select(StripeEvent)).all()
        mails = session.exec(select(MailMessage)).all()
        hooks = session.exec(select(OutboundWebhook)).all()
    # No half-written order: every order has its two lines. Every purchase is paid with its
    # two contracts; checkouts cut off by a restart (retried by the shopper) never got paid.
    assert all(lines[order.id] == 2 for order in orders)
    assert {o.public_id for o in orders if o.status == "paid"} == paid_ids
    assert all(o.status in ("pending", "failed") for o in orders if o.public_id not in paid_ids)
    per_order = Counter(c.order_id for c in contracts)
    assert sorted(per_order.values()) == [2] * len(paid_ids) and created == len(contracts)
    assert all(e.processed_at is not None for e in events)
    # Each mail once, each store webhook once.
    assert sorted(m.to for m in mails) == sorted(email for _, email in purchases)
    assert {m.status for m in mails} == {"sent"}
    received = Counter(mail.to for mail in smtp_sink.messages())
    assert received == Counter(email for _, email in purchases)
    assert len(hooks) == len(contracts) and {h.status for h in hooks} == {"delivered"}
    delivered = Counter(headers["Warranty-Event-Id"] for headers, _ in receiver[1])
    assert delivered == Counter(h.event_id for h in hooks)


def test_a_webhook_delivered_while_the_database_restarts_is_recorded_not_sent_again(
        private_postgres, restart_settings, receiver):
    """The store accepts the event, the database goes down before the worker records it,
    and comes back: the worker waits and records it instead of delivering it again."""
    settings = restart_settings
    engine = get_engine(settings.database_url)
    with Session(engine) as session:
        order, made = paid_order(session)
        notifications.notify_contracts_created(session=session, settings=settings,
                                               order=order, contracts=made)
        session.commit()
    got, answer_now = receiver[1], threading.Event()
    receiver[2][0] = lambda: answer_now.wait(60) and 200  # the store answers when we say so
    hold = threading.Thread(target=run_webhooks, kwargs={"settings": settings, "limit": 10})
    hold.start()
    wait_for(lambda: got, timeout=30)
    private_postgres.stop("immediate")
    answer_now.set()  # the store says 200 now: delivered, with no database to record it
    time.sleep(2)
    private_postgres.start()
    hold.join(timeout=90)
    assert not hold.is_alive()
    with Session(engine) as session:
        hooks = session.exec(select(OutboundWebhook)).all()
    assert [(h.status, h.attempts) for h in hooks] == [("delivered", 1)]
    assert len(got) == 1
