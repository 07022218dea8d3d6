"""The worker command: one pass over every job, run from the command line."""

import json
from datetime import date

from click.testing import CliRunner
from sqlmodel import select

from tests.factories import paid_order
from warranty.cli import main
from warranty.contracts import notices as notifications
from warranty.contracts.models import Contract
from warranty.notify.models import MailMessage
from warranty.payments.client import make_client
from warranty.worker import run_once


def test_worker_once_sends_mail_and_expires_ended_plans(db, settings, smtp_sink, monkeypatch):
    smtp_sink.clear()
    order, created = paid_order(db, email="cli@example.com")
    notifications.notify_contracts_created(session=db, settings=settings, order=order,
                                           contracts=created)
    paid_order(db, order_ref="OLD", purchase_date=date(2020, 1, 10))
    db.commit()
    for name, value in {"WARRANTY_ENV": "test", "WARRANTY_DATABASE_URL": settings.database_url,
                        "WARRANTY_SECRET_KEY": settings.secret_key,
                        "WARRANTY_SMTP_PORT": str(smtp_sink.port)}.items():
        monkeypatch.setenv(name, value)
    res = CliRunner().invoke(main, ["worker", "--once"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert json.loads(res.output) == {"stripe_events": 0, "refunds": 0, "mail": 1,
                                      "webhooks": 0, "expiry": 1, "exports": 0}
    assert smtp_sink.wait_for(1, to="cli@example.com")[0].subject.startswith("Your protection")
    assert db.exec(select(MailMessage.status)).one() == "sent"
    assert sorted(db.exec(select(Contract.status)).all()) == ["active", "expired"]


def test_one_failing_job_does_not_stop_the_others(db, settings, smtp_sink):
    smtp_sink.clear()
    notifications.queue_mail(session=db, to="x@example.com", subject="s", body="b", kind="t")
    db.commit()
    broken = settings.model_copy(update={"smtp_port": smtp_sink.port,
                                         "store_webhook_url": "http://127.0.0.1:9/",
                                         "store_webhook_secret": "s" * 20,
                                         "timezone": "Not/AZone"})
    done = run_once(settings=broken, stripe_client=make_client(broken), limit=5)
    assert done == {"stripe_events": 0, "refunds": 0, "mail": 1, "webhooks": 0, "expiry": 0,
                    "exports": 0}
    assert smtp_sink.wait_for(1)[0].to == "x@example.com"
