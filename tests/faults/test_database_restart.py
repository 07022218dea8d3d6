"""The database restarted under a running app and worker: they reconnect, nothing is lost."""

from __future__ import annotations

import requests
from sqlmodel import Session, func, select

from tests.e2e.test_stripe_webhooks import post_event
from tests.faults.conftest import gunicorn, terminate_backends
from tests.stripe_helpers import order_state
from warranty import notifications
from warranty.db import get_engine
from warranty.models import MailMessage
from warranty.worker import run_once


def test_app_and_worker_reconnect_after_every_connection_is_killed(
        paid_without_webhooks, postgres_only, mail_settings, database_url, smtp_sink):
    _, order_id, completed, _ = paid_without_webhooks
    with gunicorn(mail_settings, workers=2) as (base, _master):
        for _ in range(4):  # every gunicorn worker holds a pooled connection
            assert requests.get(f"{base}/healthz", timeout=10).status_code == 200
        assert terminate_backends(postgres_only) >= 2
        # pool_pre_ping finds the dead connections and opens new ones: no error reaches
        # the caller, and the event Stripe delivers now is applied.
        for _ in range(4):
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
    assert run_once(settings=mail_settings, limit=10)["mail"] == 2
    assert {m.to for m in smtp_sink.wait_for(2)} >= {"a@example.com", "late@example.com"}
    with Session(get_engine(database_url)) as session:
        statuses = session.exec(select(MailMessage.status, func.count())
                                .group_by(MailMessage.status)).all()
    assert statuses == [("sent", 2)]
