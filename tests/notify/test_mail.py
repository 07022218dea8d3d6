"""Customer mail: stored first, sent to the SMTP sink by the worker, nothing lost."""

import threading
from datetime import date
from urllib.parse import parse_qs, urlparse

import sqlalchemy as sa
from sqlmodel import select

from tests.factories import paid_order
from warranty.auth import links as magic_links
from warranty.contracts import notices as notifications
from warranty.core.dates import utcnow
from warranty.http.app import create_app
from warranty.notify.mail import run_mail
from warranty.notify.models import MailMessage


def test_purchase_mail_names_plans_dates_terms_and_link(db, mail_settings, smtp_sink):
    order, created = paid_order(db, email="Buyer@Example.com", quantity=2, plan_quantity=2,
                                purchase_date=date(2026, 1, 10), order_ref="A-2001")
    store = mail_settings.model_copy(update={"claim_filing_days_after_term": 90})
    notifications.notify_contracts_created(session=db, settings=store, order=order,
                                           contracts=created)
    db.commit()
    assert run_mail(settings=mail_settings, limit=10) == 1
    (mail,) = smtp_sink.wait_for(1, to="Buyer@Example.com")
    assert "A-2001" in mail.subject
    body = mail.body
    for contract in created:
        assert contract.public_id in body
    assert body.count("Standard (mechanical and electrical breakdown)") == 2
    assert "¥6,000" in body and "2026-01-10 – 2029-01-09" in body
    assert "Breakdown cover from / 故障の補償開始: 2027-01-10" in body
    assert "Cancel within 30 days of purchase" in body and "¥0" in body
    assert ("Incidents during the term can be claimed up to 90 days after the term ends. / "
            "保証期間中の事故・故障は、保証期間の終了後90日まで申請できます。") in body
    link = next(line for line in body.splitlines() if "/my/sign-in?token=" in line)
    token = parse_qs(urlparse(link).query)["token"][0]
    assert magic_links.email_from_plans_token(mail_settings, token) == "buyer@example.com"
    row = db.exec(select(MailMessage)).one()
    assert (row.status, row.kind, row.attempts) == ("sent", "purchase", 1)


def test_mail_waits_while_smtp_is_down_then_goes_once(db, mail_settings, smtp_sink):
    order, created = paid_order(db)
    notifications.notify_contracts_created(session=db, settings=mail_settings, order=order,
                                           contracts=created)
    db.commit()
    down = mail_settings.model_copy(update={"smtp_port": 9, "retry_base_seconds": 0})
    assert run_mail(settings=down, limit=10) == 1
    row = db.exec(select(MailMessage)).one()
    assert row.status == "pending" and row.attempts == 1 and "SMTP failed" in row.last_error
    db.commit()
    assert smtp_sink.messages() == []
    assert run_mail(settings=mail_settings, limit=10) == 1
    assert run_mail(settings=mail_settings, limit=10) == 0
    assert len(smtp_sink.wait_for(1)) == 1
    db.expire_all()
    assert db.exec(select(MailMessage.status, MailMessage.attempts)).one() == ("sent", 2)


def test_mail_is_dead_after_the_maximum_attempts(db, mail_settings):
    order, created = paid_order(db)
    notifications.notify_contracts_created(session=db, settings=mail_settings, order=order,
                                           contracts=created)
    db.commit()
    down = mail_settings.model_copy(update={"smtp_port": 9, "retry_base_seconds": 0,
                                            "mail_max_attempts": 2})
    assert [run_mail(settings=down, limit=10) for _ in range(3)] == [1, 1, 0]
    assert db.exec(select(MailMessage.status)).one() == "dead"


def test_concurrent_workers_send_each_mail_once(db, mail_settings, smtp_sink):
    for n in range(12):
        notifications.queue_mail(session=db, to=f"c{n}@example.com", subject=f"m{n}",
                                 body="hello", kind="test")
    db.commit()
    start = threading.Barrier(3)

    def work():
        start.wait()
        while run_mail(settings=mail_settings, limit=2):
            pass

    threads = [threading.Thread(target=work) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    subjects = sorted(m.subject for m in smtp_sink.wait_for(12))
    assert subjects == sorted(f"m{n}" for n in range(12))
    assert db.exec(select(sa.func.count()).where(MailMessage.status == "sent")).one() == 12


def test_plans_link_is_mailed_only_to_addresses_with_plans(db, mail_settings, smtp_sink,
                                                           store_key):
    paid_order(db, email="has.plans@example.com")
    api = create_app(mail_settings).test_client()
    for email in ("nobody@example.com", " HAS.PLANS@example.com "):
        res = api.post("/api/v1/customers/plans-link", headers=store_key, json={"email": email})
        assert res.status_code == 202 and res.json["status"] == "accepted"
    again = api.post("/api/v1/customers/plans-link", headers=store_key,
                     json={"email": "has.plans@example.com"})
    assert again.status_code == 202  # within the cooldown: no second mail
    rows = db.exec(select(MailMessage)).all()
    assert [(r.to, r.kind) for r in rows] == [("has.plans@example.com", "plans_link")]
    db.commit()
    run_mail(settings=mail_settings, limit=10)
    (mail,) = smtp_sink.wait_for(1)
    token = parse_qs(urlparse(mail.body.split("\n\n")[1].splitlines()[1]).query)["token"][0]
    assert magic_links.email_from_plans_token(mail_settings, token) == "has.plans@example.com"
    # After the cooldown another request mails again.
    db.exec(sa.update(MailMessage).values(created_at=utcnow().replace(year=2020)))
    db.commit()
    api.post("/api/v1/customers/plans-link", headers=store_key,
             json={"email": "has.plans@example.com"})
    assert db.exec(select(sa.func.count()).select_from(MailMessage)).one() == 2


def test_plans_link_errors_are_json(client, store_key):
    cases = [({}, {"json": {"email": "a@example.com"}}, 401, "missing_public_key"),
             (store_key, {"json": {"email": "not-an-email"}}, 422, "invalid_request"),
             (store_key, {"json": {"email": "a@b.c" + "x" * 400}}, 422, "invalid_request"),
             (store_key, {"json": {}}, 422, "invalid_request"),
             (store_key, {"json": ["a@example.com"]}, 422, "invalid_request"),
             (store_key, {"data": "{", "content_type": "application/json"}, 400,
              "invalid_json"),
             (store_key, {"data": "email=a@example.com"}, 415, "unsupported_media_type")]
    for headers, kwargs, status, code in cases:
        res = client.post("/api/v1/customers/plans-link", headers=headers, **kwargs)
        assert (res.status_code, res.json["error"]["code"]) == (status, code), kwargs


def _stored(db, *mails):
    """Store mails as rows (to, subject), as the service does, and commit; returns them."""
    rows = [notifications.queue_mail(session=db, to=to, subject=subject, body="hello",
                                     kind="test") for to, subject in mails]
    db.commit()
    return rows


def _states(db) -> dict[str, tuple]:
    """Each stored mail's (status, attempts, last_error), by its address."""
    db.expire_all()
    states = {row.to: (row.status, row.attempts, row.last_error)
              for row in db.exec(select(MailMessage)).all()}
    db.commit()
    return states


def test_a_mail_that_cannot_be_built_is_dead_and_the_others_still_go(db, mail_settings,
                                                                     smtp_sink):
    # A stored recipient that is not one address (older rows may hold one) can never be sent.
    _stored(db, ("first@example.com", "one"), ("bad@example.com, all@example.com", "two"),
            ("last@example.com", "three"))
    assert run_mail(settings=mail_settings, limit=10) == 3
    assert sorted(m.subject for m in smtp_sink.wait_for(2)) == ["one", "three"]
    states = _states(db)
    assert states["first@example.com"][:2] == states["last@example.com"][:2] == ("sent", 1)
    status, attempts, error = states["bad@example.com, all@example.com"]
    assert (status, attempts) == ("dead", 1)
    assert error.startswith("cannot build the message: UnsendableMail: the recipient is not one")
    assert run_mail(settings=mail_settings, limit=10) == 0  # dead stays dead: no stall
    assert len(smtp_sink.messages()) == 2


def test_smtp_refusals_for_good_are_dead_and_for_now_are_retried(db, mail_settings, smtp_sink):
    smtp_sink.refuse["gone@example.com"] = "550 5.1.1 no such mailbox"
    smtp_sink.refuse["busy@example.com"] = "450 4.2.1 mailbox busy, try later"
    smtp_sink.reject["SPAM"] = "554 5.7.1 message refused as spam"
    _stored(db, ("gone@example.com", "a"), ("busy@example.com", "b"),
            ("spam@example.com", "SPAM offer"), ("ok@example.com", "e"))
    assert run_mail(settings=mail_settings, limit=10) == 4
    assert [m.to for m in smtp_sink.wait_for(1)] == ["ok@example.com"]
    states = _states(db)
    assert states["ok@example.com"][:2] == ("sent", 1)
    assert states["gone@example.com"][:2] == ("dead", 1)
    assert "550" in states["gone@example.com"][2] and "no such mailbox" in \
        states["gone@example.com"][2]
    assert states["spam@example.com"][:2] == ("dead", 1)
    assert states["spam@example.com"][2].startswith("SMTP answered 554")
    # 4xx: for now only. It waits out its backoff, then goes once the mailbox takes it.
    assert states["busy@example.com"][:2] == ("pending", 1)
    assert "450" in states["busy@example.com"][2]
    del smtp_sink.refuse["busy@example.com"]
    db.exec(sa.update(MailMessage).values(next_attempt_at=utcnow()))  # time passes
    db.commit()
    assert run_mail(settings=mail_settings, limit=10) == 1
    assert _states(db)["busy@example.com"] == ("sent", 2, None)
    assert sorted(m.to for m in smtp_sink.wait_for(2)) == ["busy@example.com",
                                                           "ok@example.com"]


def test_the_server_dropping_the_connection_leaves_the_rest_for_the_next_pass(
        db, mail_settings, smtp_sink):
    smtp_sink.refuse["first@example.com"] = "421 4.3.2 shutting down"  # and closes
    _stored(db, ("first@example.com", "a"), ("second@example.com", "b"))
    assert run_mail(settings=mail_settings, limit=10) == 1
    states = _states(db)
    assert states["first@example.com"][:2] == ("pending", 1)
    assert states["second@example.com"] == ("pending", 0, None)  # not claimed, not spent
    assert run_mail(settings=mail_settings, limit=10) == 1  # the first one is backing off
    assert [m.to for m in smtp_sink.wait_for(1)] == ["second@example.com"]
