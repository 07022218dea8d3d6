"""The warranty command line."""

import json

import pytest
from click.testing import CliRunner
from sqlmodel import select

from devtools.cli import main
from warranty.catalog.models import Product
from warranty.pricing.models import RuleSet


@pytest.fixture
def run(database_url, monkeypatch):
    """Invoke the CLI against the test database."""
    monkeypatch.setenv("WARRANTY_ENV", "test")
    monkeypatch.setenv("WARRANTY_DATABASE_URL", database_url)
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(main, list(args), catch_exceptions=False)

    return invoke


def test_migrate_rules_and_import(run, db, tmp_path):
    assert run("migrate").exit_code == 0
    loaded = run("load-rules", "--builtin", "default-jpy")
    assert loaded.exit_code == 0 and "version 1" in loaded.output
    csv_file = tmp_path / "products.csv"
    csv_file.write_text("sku,title,category,price,manufacturer_warranty_months\n"
                        "TV-1,テレビ,tv,120000,12\nCAB-1,Cable,cables,500,\n",
                        encoding="utf-8")
    res = run("import-products", str(csv_file))
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["created"] == 2
    assert out["unmapped"] == [{"sku": "CAB-1", "category": "cables"}]
    tv = db.exec(select(Product).where(Product.sku == "TV-1")).one()
    assert tv.title == "テレビ" and tv.unit_price == 120000


def test_bad_files_give_clear_errors(run, db, tmp_path):
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("sku,title,category,price\nA,B,tv,12.5\n")
    res = run("import-products", str(bad_csv))
    assert res.exit_code == 1 and "CSV line 2: price" in res.output
    bad_rules = tmp_path / "rules.yaml"
    bad_rules.write_text("currency: jpy\ncategories: {tv: {plans: [], bands: []}}\n")
    res = run("load-rules", str(bad_rules))
    assert res.exit_code == 1 and "categories.tv.plans" in res.output
    assert run("load-rules", "--builtin", "example-usd").exit_code == 1  # store is JPY
    assert db.exec(select(RuleSet)).all() == []


def test_demo_data_and_tokens(run, db):
    res = run("demo-data")
    assert res.exit_code == 0
    assert json.loads(res.output)["products"] >= 10
    token = run("create-token", "alice", "--role", "finance").output.strip()
    assert token.startswith("wt_")


def test_revoked_tokens_answer_401(run, db, settings):
    from warranty.http.app import create_app

    token = run("create-token", "bob", "--role", "staff").output.strip()
    client = create_app(settings).test_client()
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/contracts", headers=headers).status_code == 200
    assert "1 token(s) named bob revoked" in run("revoke-token", "bob").output
    res = client.get("/api/v1/contracts", headers=headers)
    assert res.status_code == 401 and res.json["error"]["code"] == "token_revoked"
    again = CliRunner().invoke(main, ["revoke-token", "bob"])
    assert again.exit_code != 0 and "no live token" in again.output


def test_outbox_lists_what_needs_a_person_and_retries_dead_mail(run, db, mail_settings,
                                                                smtp_sink):
    from warranty.contracts import notices as notifications
    from warranty.notify.mail import run_mail
    from warranty.notify.models import MailMessage

    smtp_sink.refuse["gone@example.com"] = "550 5.1.1 no such mailbox"
    for to in ("gone@example.com", "ok@example.com"):
        notifications.queue_mail(session=db, to=to, subject="Your plan", body="b", kind="test")
    db.commit()
    assert run_mail(settings=mail_settings, limit=10) == 2
    listed = run("outbox")
    assert listed.exit_code == 0, listed.output
    report = json.loads(listed.output)
    assert set(report) == {"mail", "store_webhooks", "refunds", "stripe_events"}
    mail = report["mail"]
    assert (mail["waiting"], mail["retrying"], mail["given_up"]) == (0, 0, 1)
    (dead,) = mail["rows"]
    assert (dead["to"], dead["kind"], dead["attempts"]) == ("gone@example.com", "test", 1)
    assert "550 5.1.1 no such mailbox" in dead["last_error"]
    only = json.loads(run("outbox", "--queue", "refunds").output)
    assert list(only) == ["refunds"] and only["refunds"]["rows"] == []
    # The mailbox exists again: a person sends the mail once more.
    del smtp_sink.refuse["gone@example.com"]
    again = run("outbox", "retry", "mail", str(dead["id"]), "999999")
    assert again.exit_code == 0 and "1 mail row(s) queued again" in again.output
    assert "1 of the rows were not dead" in again.output
    assert run_mail(settings=mail_settings, limit=10) == 1
    assert [m.to for m in smtp_sink.wait_for(2)] == ["ok@example.com", "gone@example.com"]
    db.expire_all()
    assert db.get(MailMessage, dead["id"]).status == "sent"
    assert json.loads(run("outbox", "--queue", "mail").output)["mail"]["given_up"] == 0
    refused = run("outbox", "retry", "refunds", "1")
    assert refused.exit_code == 2  # refunds are not sent again by hand here
def test_finance_closes_months_from_the_command_line(run, db):
    from datetime import date

    from tests.report_history import plan_sale
    from warranty.periods.models import ClosedMonth

    plan_sale(db, price=3650, sold_on=date(2026, 1, 10))  # ¥10 a day from 2026-01-10
    listed = json.loads(run("periods").stdout)
    assert (listed["closed_through"], listed["next_to_close"]) == (None, "2026-01")
    closed = run("close-month", "2026-01", "--by", "books@store.example", "--note", "ok")
    assert closed.exit_code == 0, closed.output
    figures = json.loads(closed.stdout)["figures"]
    assert (figures["gross_sales"], figures["earned_revenue"]) == (3650, 220)
    row = db.exec(select(ClosedMonth)).one()
    assert (row.month, row.closed_by, row.note) == (date(2026, 1, 1),
                                                    "cli:books@store.example", "ok")
    db.commit()
    again = CliRunner().invoke(main, ["close-month", "2026-01", "--by", "x"])
    assert again.exit_code != 0 and "already closed" in again.output
    bad = CliRunner().invoke(main, ["close-month", "January", "--by", "x"])
    assert bad.exit_code != 0 and "YYYY-MM" in bad.output
    assert json.loads(run("periods").stdout)["closed_through"] == "2026-01"
